import Foundation
import Logging
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import Testing

@testable import SRIOVDaemon

/// The original settings of a VF are on disk before its first change, and
/// written again only when a change touches a group they do not cover yet.
@Suite("Original record")
struct OriginalRecordTests {
    let host = FakeHost.threeVFs()
    let store: StateStore
    let controller: VFController

    init() throws {
        store = try StateStore(directory: NSTemporaryDirectory() + "sriovd-orig-\(UUID().uuidString)")
        controller = VFController(
            host: host, store: store, logger: Logger(label: "test"), verifyAttempts: 3, verifyInterval: .milliseconds(1))
    }

    /// Rows changed by the store's writer connection since it opened.
    func rowsWritten() -> Int {
        store.database.writeWithoutTransaction { $0.totalChangesCount }
    }

    @Test("a change within the groups already recorded commits nothing; a new group is added to the record")
    func repeatChangesSkipTheCommit() async throws {
        let vf = host.address(0)
        let fresh = try #require(host.vf(0)?.settings)
        _ = try await controller.configure(vf: vf, VFConfig(spoofCheck: false, trust: true))
        #expect(try store.original(of: vf)?.changed == [.spoofCheck, .trust])
        let first = rowsWritten()

        let again = try await controller.configure(vf: vf, VFConfig(trust: false))
        #expect(!again.failed)
        #expect(rowsWritten() == first, "the original was written again although it covered trust")

        _ = try await controller.configure(vf: vf, VFConfig(vlan: try VLANID(5)))
        #expect(rowsWritten() > first)
        let original = try #require(try store.original(of: vf))
        #expect(original.changed == [.spoofCheck, .trust, .vlan])
        #expect(original.settings == fresh, "the record keeps the settings from before the first change")

        let restored = try await controller.restore(vf: vf)
        #expect(!restored.failed)
        #expect(host.vf(0)?.settings == fresh)
    }
}
