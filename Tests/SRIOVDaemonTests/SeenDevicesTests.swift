import Foundation
import Logging
import SRIOVCore
import SRIOVHost
import Synchronization
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

@Suite("State store: the PFs and VFs seen")
struct SeenDevicesTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-seen-\(UUID().uuidString)").path
    let pf1 = PCIAddress(bus: 1, device: 0, function: 0)
    let pf2 = PCIAddress(bus: 2, device: 0, function: 0)

    func at(_ seconds: Double) -> Date { Date(timeIntervalSince1970: 1_800_000_000 + seconds) }

    @Test("a listing is recorded; an unchanged one writes nothing; a change, a removal and a return are dated")
    func pfLifecycle() throws {
        let store = try StateStore(directory: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var pfs = try FakeHost.twoPFs().details.map(\.pf)

        let first = try store.recordPFs(pfs, at: at(0))
        #expect(Set(first.appeared) == [pf1, pf2])
        #expect(try store.recordPFs(pfs, at: at(10)).isEmpty)
        #expect(try store.seenPFs().map(\.changedAt) == [at(0), at(0)], "nothing written for an unchanged listing")

        pfs[0].numVFs = 5
        pfs[0].netdev = "renamed0"
        #expect(try store.recordPFs(pfs, at: at(20)).changed == [pf1])
        let changed = try #require(try store.seenPFs().first { $0.pci == pf1 })
        #expect(changed.numVFs == 5 && changed.netdev == "renamed0")
        #expect(changed.firstSeen == at(0) && changed.changedAt == at(20) && changed.goneSince == nil)

        // PF 2 removed: marked gone with its VFs, the rows kept.
        try store.recordVFs(try FakeHost.twoPFs().details[1].vfs, of: pf2, at: at(25))
        #expect(try store.recordPFs([pfs[0]], at: at(30)).gone == [pf2])
        let gone = try #require(try store.seenPFs().first { $0.pci == pf2 })
        #expect(gone.goneSince == at(30) && gone.driver == "igb" && gone.totalVFs == 7)
        #expect(try store.seenVFs().filter { $0.pf == pf2 }.allSatisfy { $0.goneSince == at(30) })
        #expect(try store.recordPFs([pfs[0]], at: at(35)).isEmpty, "gone once, not again")

        // And back.
        #expect(try store.recordPFs(pfs, at: at(40)).returned == [pf2])
        let back = try #require(try store.seenPFs().first { $0.pci == pf2 })
        #expect(back.goneSince == nil && back.firstSeen == at(0) && back.changedAt == at(40))
    }

    @Test("VFs of one PF: a listing scoped to that PF marks only its own missing VFs gone")
    func vfScopes() throws {
        let store = try StateStore(directory: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let details = try FakeHost.twoPFs().details
        let all = details.flatMap(\.vfs)
        #expect(try store.recordVFs(all, at: at(0)).appeared.count == 5)
        let vf = try #require(try store.seenVFs().first { $0.pci == all[0].pciAddress })
        #expect(vf.pf == pf1 && vf.vfIndex == 0 && vf.driver == "igbvf" && vf.mac == all[0].settings.mac)

        // PF 1 down to one VF; PF 2's VFs are not in that listing and stay present.
        let changes = try store.recordVFs(Array(details[0].vfs.prefix(1)), of: pf1, at: at(10))
        #expect(Set(changes.gone) == Set(details[0].vfs.dropFirst().map(\.pciAddress)))
        let rows = try store.seenVFs()
        #expect(rows.filter { $0.pf == pf2 }.allSatisfy { $0.goneSince == nil })
        #expect(rows.filter { $0.goneSince != nil }.count == 2)

        // A VF bound to vfio-pci: its driver and netdev change.
        var rebound = details[0].vfs[0]
        rebound.driver = "vfio-pci"
        rebound.netdev = nil
        #expect(try store.recordVFs([rebound], of: pf1, at: at(20)).changed == [rebound.pciAddress])
        let row = try #require(try store.seenVFs().first { $0.pci == rebound.pciAddress })
        #expect(row.driver == "vfio-pci" && row.netdev == nil && row.changedAt == at(20))
    }

    @Test("what was seen survives a restart, and a PF missing at the next start is logged as gone")
    func restartSeesWhatChangedWhileDown() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let details = try FakeHost.twoPFs().details
        let host = try FakeHost.twoPFs()
        do {
            let inventory = RecordingInventory(host, store: try StateStore(directory: dir), logger: Logger(label: "t"))
            await inventory.recordAll()
        }
        host.state.withLock { _ = $0.pfs.removeValue(forKey: pf2) }  // PF 2 removed while sriovd was down

        let logs = ReconcileLogRecorder()
        let store = try StateStore(directory: dir)
        #expect(try store.seenPFs().count == 2)
        let inventory = RecordingInventory(host, store: store, logger: logs.logger)
        #expect(await inventory.recordAll() == 1, "the PF count sriovd reports when ready")
        let gone = logs.all.filter { $0.metadata["MESSAGE_ID"] == MessageID.pfGone.id }
        #expect(gone.map { $0.metadata["pf"] } == [pf2.description])
        #expect(gone.first?.level == .warning)
        #expect(!logs.all.contains { $0.metadata["MESSAGE_ID"] == MessageID.pfAppeared.id }, "PF 1 is not new")
        #expect(try store.seenPFs().first { $0.pci == pf2 }?.goneSince != nil)
        #expect(try store.seenVFs().filter { $0.pf == pf2 }.allSatisfy { $0.goneSince != nil })
        // The reads themselves are answered as the host gives them.
        #expect(try await inventory.physicalFunctions().map(\.pciAddress) == [pf1])
    }

    @Test("reads through the recording inventory write only when something changed")
    func readsWriteOnlyOnChange() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let host = try FakeHost.twoPFs()
        let store = try StateStore(directory: dir)
        let inventory = RecordingInventory(host, store: store, logger: Logger(label: "t"))
        await inventory.recordAll()
        let before = try store.seenVFs()
        for _ in 0..<3 { _ = try await inventory.virtualFunctions(pf: nil) }
        _ = try await inventory.physicalFunction(pf1)
        #expect(try store.seenVFs() == before)

        host.state.withLock { $0.pfs[pf1]?.vfs[1]?.driver = "vfio-pci" }
        _ = try await inventory.physicalFunction(pf1)
        let vf = try #require(try store.seenVFs().first { $0.pci == before.first { $0.pf == pf1 && $0.vfIndex == 1 }?.pci })
        #expect(vf.driver == "vfio-pci")
    }
}
