import Foundation
import Logging
import SRIOVCore
import SRIOVHost
import Synchronization
@testable import SRIOVDaemon

/// Hand-built inventory values for the reconciliation tests.
enum ReconcileFixture {
    static func address(_ text: String) -> PCIAddress {
        try! PCIAddress.parse(text, field: "test")
    }

    /// VF `index` of `pf`: device 0x10 + index / 8 on the PF's bus.
    static func vfAddress(_ index: Int, of pf: PCIAddress) -> PCIAddress {
        PCIAddress(domain: pf.domain, bus: pf.bus, device: UInt8(0x10 + index / 8), function: UInt8(index % 8))
    }

    /// What igb reports for a fresh VF.
    static let freshSettings = VFSettings(
        mac: .zero, vlan: VLANID.none, qos: .zero, vlanProto: .dot1Q, spoofCheck: true, trust: false,
        linkState: .auto, minTxRate: 0, maxTxRate: 0)

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

/// PFs and their VFs in memory, answering both as the controller's host and
/// as the inventory, so a reconciliation can be checked end to end. Failures
/// and unsupported settings are injected per test; every write is recorded,
/// in order, in `operations`.
final class ReconcileFakeHost: VFHost, InventorySource, Sendable {
    struct FakePF {
        var address: PCIAddress
        var vendorID: UInt16 = 0x8086
        var deviceID: UInt16 = 0x10c9
        var totalVFs = 7
        var autoprobe = true
        var vfs: [Int: FakeVF] = [:]
    }

    struct FakeVF {
        var settings = ReconcileFixture.freshSettings
        var driver: String?
    }

    struct State {
        var pfs: [PCIAddress: FakePF] = [:]
        /// Writing `sriov_numvfs` of these PFs fails.
        var failingNumVFs: Set<PCIAddress> = []
        /// Writing these groups of these VFs fails.
        var failingSettings: [PCIAddress: Set<VFSettingGroup>] = [:]
        /// The driver has no operation for these groups (every VF).
        var unsupported: Set<VFSettingGroup> = []
        /// `autoprobe 0000:01:00.0 false`, `numvfs 0000:01:00.0 3`,
        /// `write 0000:01:10.0 spoofCheck,trust`, `bind 0000:01:10.0 vfio-pci`.
        var operations: [String] = []
    }

    let state = Mutex(State())

    init(_ pfs: [FakePF]) {
        state.withLock { s in
            for pf in pfs { s.pfs[pf.address] = pf }
        }
    }

    /// One igb-like PF with `vfs` fresh VFs bound to igbvf.
    convenience init(pf text: String, vfs: Int = 0, autoprobe: Bool = true) {
        var pf = FakePF(address: ReconcileFixture.address(text), autoprobe: autoprobe)
        for i in 0..<vfs { pf.vfs[i] = FakeVF(driver: "igbvf") }
        self.init([pf])
    }

    var operations: [String] { state.withLock { $0.operations } }

    func vf(_ index: Int, of pf: String) -> FakeVF? {
        state.withLock { $0.pfs[ReconcileFixture.address(pf)]?.vfs[index] }
    }

    func pf(_ text: String) -> FakePF? {
        state.withLock { $0.pfs[ReconcileFixture.address(text)] }
    }

    private func find(_ vf: PCIAddress, in s: State) -> (pf: PCIAddress, index: Int)? {
        for (address, pf) in s.pfs {
            for index in pf.vfs.keys where ReconcileFixture.vfAddress(index, of: address) == vf {
                return (address, index)
            }
        }
        return nil
    }

    // MARK: VFHost

    func locate(vf: PCIAddress) async -> VFLocation? {
        state.withLock { s in find(vf, in: s).map { VFLocation(vf: vf, pf: $0.pf, index: $0.index) } }
    }

    func settings(of vf: VFLocation) async throws -> VFSettings {
        guard let settings = state.withLock({ $0.pfs[vf.pf]?.vfs[vf.index]?.settings }) else {
            throw CocoaError(.fileNoSuchFile)
        }
        return settings
    }

    func write(_ config: VFConfig, to vf: VFLocation) async -> [VFSettingGroup: WriteOutcome] {
        state.withLock { s in
            let groups = VFSettingGroup.groups(in: config).sorted()
            s.operations.append("write \(vf.vf) \(groups.map(\.rawValue).joined(separator: ","))")
            var out: [VFSettingGroup: WriteOutcome] = [:]
            guard var v = s.pfs[vf.pf]?.vfs[vf.index]?.settings else {
                for group in groups { out[group] = .failed("No such device") }
                return out
            }
            for group in groups {
                if s.unsupported.contains(group) {
                    out[group] = .unsupported("Operation not supported")
                    continue
                }
                if s.failingSettings[vf.vf]?.contains(group) == true {
                    out[group] = .failed("Invalid argument")
                    continue
                }
                v.apply(group, of: config)
                out[group] = .applied
            }
            s.pfs[vf.pf]?.vfs[vf.index]?.settings = v
            return out
        }
    }

    func driver(of device: PCIAddress) async -> String? {
        state.withLock { s in find(device, in: s).flatMap { s.pfs[$0.pf]?.vfs[$0.index]?.driver } }
    }

    func bind(_ device: PCIAddress, to driver: VFDriverChoice) async throws {
        state.withLock { s in
            s.operations.append("bind \(device) \(driver.rawValue)")
            guard let (pf, index) = find(device, in: s) else { return }
            switch driver {
            case .vfio: s.pfs[pf]?.vfs[index]?.driver = "vfio-pci"
            case .host: s.pfs[pf]?.vfs[index]?.driver = "igbvf"
            case .none: s.pfs[pf]?.vfs[index]?.driver = nil
            }
        }
    }

    func reset(_ device: PCIAddress) async throws -> Bool { true }

    func totalVFs(pf: PCIAddress) async -> Int? { state.withLock { $0.pfs[pf]?.totalVFs } }

    func numVFs(pf: PCIAddress) async -> Int? { state.withLock { $0.pfs[pf]?.vfs.count } }

    func virtualFunctions(pf: PCIAddress) async -> [(index: Int, address: PCIAddress)] {
        state.withLock { $0.pfs[pf]?.vfs.keys.sorted() ?? [] }.map { (index: $0, address: ReconcileFixture.vfAddress($0, of: pf)) }
    }

    struct InjectedFailure: Error, CustomStringConvertible {
        var description: String
    }

    func setNumVFs(pf: PCIAddress, to count: Int, timeout: Duration) async throws {
        try state.withLock { s in
            s.operations.append("numvfs \(pf) \(count)")
            if s.failingNumVFs.contains(pf) { throw InjectedFailure(description: "Device or resource busy") }
            guard var p = s.pfs[pf] else { return }
            p.vfs = [:]
            for i in 0..<count { p.vfs[i] = FakeVF(driver: p.autoprobe ? "igbvf" : nil) }
            s.pfs[pf] = p
        }
    }

    func setDriversAutoprobe(pf: PCIAddress, enabled: Bool) async throws {
        state.withLock { s in
            s.operations.append("autoprobe \(pf) \(enabled)")
            s.pfs[pf]?.autoprobe = enabled
        }
    }

    // MARK: InventorySource

    private func describe(_ p: FakePF) -> PhysicalFunctionDetail {
        PhysicalFunctionDetail(
            pf: PhysicalFunction(
                pciAddress: p.address, vendorID: p.vendorID, deviceID: p.deviceID, driver: "igb", totalVFs: p.totalVFs,
                numVFs: p.vfs.count, driversAutoprobe: p.autoprobe),
            vfs: p.vfs.keys.sorted().map { i in
                VirtualFunction(
                    index: i, pciAddress: ReconcileFixture.vfAddress(i, of: p.address), pf: p.address,
                    driver: p.vfs[i]!.driver, settings: p.vfs[i]!.settings)
            })
    }

    func physicalFunctions() async throws -> [PhysicalFunction] {
        state.withLock { s in s.pfs.values.sorted { $0.address < $1.address }.map { describe($0).pf } }
    }

    func physicalFunction(_ address: PCIAddress) async throws -> PhysicalFunctionDetail? {
        state.withLock { s in s.pfs[address].map(describe) }
    }

    func virtualFunctions(pf: PCIAddress?) async throws -> [VirtualFunction] {
        state.withLock { s in
            s.pfs.values.filter { pf == nil || $0.address == pf }.sorted { $0.address < $1.address }
                .flatMap { describe($0).vfs }
        }
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

extension VFSettings {
    /// What a driver that takes it does with one setting group of `config`
    /// (the kernel's defaults for the parts of the VLAN tag not given).
    mutating func apply(_ group: VFSettingGroup, of config: VFConfig) {
        switch group {
        case .mac: mac = config.mac
        case .vlan:
            vlan = config.vlan ?? VLANID.none
            qos = config.qos ?? .zero
            vlanProto = config.vlanProto ?? .dot1Q
        case .spoofCheck: spoofCheck = config.spoofCheck
        case .trust: trust = config.trust
        case .rssQuery: rssQuery = config.rssQuery
        case .linkState: linkState = config.linkState
        case .txRate:
            if let m = config.minTxRate { minTxRate = m }
            if let m = config.maxTxRate { maxTxRate = m }
        }
    }
}
