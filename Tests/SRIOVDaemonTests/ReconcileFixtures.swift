import Foundation
import Logging
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import Synchronization
@testable import SRIOVDaemon

/// Hand-built inventory values for the reconciliation tests.
enum ReconcileFixture {
    static func address(_ text: String) -> PCIAddress {
        try! PCIAddress.parse(text, field: "test")
    }

    /// VF `index` of `pf`, where igb puts it (FakeHost's layout).
    static func vfAddress(_ index: Int, of pf: PCIAddress) -> PCIAddress {
        FakeHost.vfAddress(index, of: pf)
    }

    /// What igb reports for a fresh VF.
    static let freshSettings = FakeHost.freshSettings

    static func vf(
        _ index: Int, of pf: PCIAddress, driver: String? = "igbvf", settings: VFSettings = freshSettings
    ) -> VirtualFunction {
        VirtualFunction(index: index, pciAddress: vfAddress(index, of: pf), pf: pf, driver: driver, settings: settings)
    }

    static func pf(
        _ text: String, vendorID: UInt16 = 0x8086, deviceID: UInt16 = 0x10c9, totalVFs: Int = 7,
        autoprobe: Bool = true, vfs: Int = 0, driver: String? = "igbvf", settings: VFSettings = freshSettings
    ) -> PhysicalFunctionDetail {
        let a = address(text)
        return PhysicalFunctionDetail(
            pf: PhysicalFunction(
                pciAddress: a, vendorID: vendorID, deviceID: deviceID, driver: "igb", totalVFs: totalVFs,
                numVFs: vfs, driversAutoprobe: autoprobe),
            vfs: (0..<vfs).map { vf($0, of: a, driver: driver, settings: settings) })
    }

    static func configuration(_ toml: String) throws -> SRIOVConfiguration {
        try SRIOVConfiguration.parse(toml, fileName: "test.toml")
    }
}

/// Log records kept in memory, to check what was logged and with which fields.
final class ReconcileLogRecorder: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var all: [Record] { records.withLock { $0 } }

    func append(_ record: Record) { records.withLock { $0.append(record) } }

    func clear() { records.withLock { $0.removeAll() } }

    var logger: Logger {
        var logger = Logger(label: "reconcile-test") { _ in ReconcileLogHandler(recorder: self) }
        logger.logLevel = .trace
        return logger
    }
}

struct ReconcileLogHandler: LogHandler {
    let recorder: ReconcileLogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[k] = "\(v)" }
        recorder.append(.init(level: event.level, message: "\(event.message)", metadata: fields))
    }
}

/// A fresh state directory, removed after `body`.
func withReconcileStateStore<T>(_ body: (StateStore) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-reconcile-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(try StateStore(directory: directory))
}
