import Foundation
import Logging
import SRIOVCore
import SRIOVHost
import Synchronization
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

extension FakeHost {
    /// One igb PF at 0000:01:00.0 with three fresh VFs bound to no driver,
    /// its driver taking RSS query (as ixgbe does; igb does not).
    static func threeVFs() -> FakeHost {
        let host = FakeHost(pf: "0000:01:00.0", vfs: 3, autoprobe: false)
        host.state.withLock { s in
            s.unsupported = [.linkState]
            for i in 0..<3 { s.vfs[i]?.rssQuery = false }
        }
        return host
    }
}

@Suite("VF controller")
struct VFControllerTests {
    let host = FakeHost.threeVFs()
    let controller: VFController
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "sriovd-ctl-\(UUID().uuidString)"
        controller = VFController(
            host: host, store: try StateStore(directory: dir), logger: Logger(label: "test"),
            verifyAttempts: 5, verifyInterval: .milliseconds(1))
    }

    func mac(_ s: String) -> MACAddress { try! MACAddress.parse(s, field: "mac") }

    @Test("settings are applied one group at a time and read back; unsupported ones do not block the rest")
    func appliesAndReportsUnsupported() async throws {
        let config = VFConfig(
            mac: mac("52:54:00:00:00:11"), vlan: try VLANID(100), qos: try VLANQoS(3), spoofCheck: false,
            trust: true, linkState: .enable)
        let report = try await controller.configure(vf: host.address(1), config)
        let outcomes = Dictionary(uniqueKeysWithValues: report.results.map { ($0.setting, $0.outcome) })
        #expect(outcomes[.mac] == .applied)
        #expect(outcomes[.vlan] == .applied)
        #expect(outcomes[.spoofCheck] == .applied)
        #expect(outcomes[.trust] == .applied)
        #expect(outcomes[.linkState] == .unsupported)
        #expect(!report.failed)
        #expect(report.settings.mac == mac("52:54:00:00:00:11"))
        #expect(report.settings.vlan?.value == 100 && report.settings.qos?.value == 3)
    }

    @Test("RSS query is set, read back and restored where the driver has it; reported unsupported where not")
    func rssQuery() async throws {
        let on = try await controller.configure(vf: host.address(0), VFConfig(rssQuery: true))
        #expect(on.results.map(\.setting) == [.rssQuery])
        #expect(on.results.first?.outcome == .applied)
        #expect(on.settings.rssQuery == true)
        _ = try await controller.restore(vf: host.address(0))
        #expect(host.state.withLock { $0.vfs[0]!.rssQuery } == false)

        // igb: no ndo_set_vf_rss_query_en, so EOPNOTSUPP; the rest still applies.
        host.state.withLock { _ = $0.unsupported.insert(.rssQuery) }
        let igb = try await controller.configure(vf: host.address(1), VFConfig(trust: true, rssQuery: true))
        let outcomes = Dictionary(uniqueKeysWithValues: igb.results.map { ($0.setting, $0.outcome) })
        #expect(outcomes[.rssQuery] == .unsupported)
        #expect(outcomes[.trust] == .applied)
        #expect(!igb.failed)
    }

    @Test("bad input is refused before anything is written")
    func refusesBadInput() async throws {
        await #expect(throws: ControllerError.self) {
            try await controller.configure(vf: host.address(0), VFConfig(mac: .zero))
        }
        await #expect(throws: ControllerError.self) {
            try await controller.configure(vf: host.address(0), VFConfig(qos: try VLANQoS(2)))
        }
        #expect(host.state.withLock { $0.writes.isEmpty })
    }

    @Test("an unknown VF is not found")
    func unknownVF() async throws {
        let unknown = try PCIAddress.parse("0000:05:00.0", field: "x")
        do {
            _ = try await controller.configure(vf: unknown, VFConfig(trust: true))
            Issue.record("no error")
        } catch {
            guard case .notFound = error else { Issue.record("\(error)"); return }
        }
    }

    @Test("a failing setting undoes the ones this request applied")
    func rollsBack() async throws {
        host.state.withLock { $0.failing = [.trust] }
        let report = try await controller.configure(
            vf: host.address(0), VFConfig(mac: mac("52:54:00:00:00:22"), vlan: try VLANID(7), trust: true))
        #expect(report.failed)
        let outcomes = Dictionary(uniqueKeysWithValues: report.results.map { ($0.setting, $0.outcome) })
        #expect(outcomes[.trust] == .failed)
        #expect(outcomes[.mac] == .rolledBack)
        #expect(outcomes[.vlan] == .rolledBack)
        let now = host.state.withLock { $0.vfs[0]! }
        #expect(now.mac == .zero)
        #expect(now.vlan == VLANID.none)
    }

    @Test("a MAC the driver applies late is waited for, within the bound")
    func waitsForAsyncMAC() async throws {
        host.state.withLock { $0.macLag = 3 }
        let report = try await controller.configure(vf: host.address(2), VFConfig(mac: mac("52:54:00:00:00:33")))
        #expect(!report.failed)
        #expect(report.settings.mac == mac("52:54:00:00:00:33"))
        host.state.withLock { $0.macLag = 50 }
        let late = try await controller.configure(vf: host.address(2), VFConfig(mac: mac("52:54:00:00:00:34")))
        #expect(late.failed)
        #expect(late.results.first { $0.setting == .mac }?.detail?.contains("still reports") == true)
    }

    @Test("settings already in place are not written again")
    func unchanged() async throws {
        let report = try await controller.configure(vf: host.address(0), VFConfig(spoofCheck: true, trust: false))
        #expect(report.results.allSatisfy { $0.outcome == .unchanged })
        #expect(host.state.withLock { $0.writes.isEmpty })
    }

    @Test("restore puts back exactly what was changed, from the first original")
    func restoresOriginal() async throws {
        host.state.withLock { $0.vfs[1]!.trust = true; $0.vfs[1]!.mac = self.mac("52:54:00:00:00:99") }
        _ = try await controller.configure(vf: host.address(1), VFConfig(mac: mac("52:54:00:00:00:44"), vlan: try VLANID(5)))
        _ = try await controller.configure(vf: host.address(1), VFConfig(vlan: try VLANID(6), spoofCheck: false))
        // Changed behind sriovd's back after: not sriovd's to restore.
        host.state.withLock { $0.vfs[1]!.maxTxRate = 100 }
        let report = try await controller.restore(vf: host.address(1))
        #expect(!report.failed)
        let now = host.state.withLock { $0.vfs[1]! }
        #expect(now.mac == mac("52:54:00:00:00:99"))
        #expect(now.vlan == VLANID.none)
        #expect(now.spoofCheck == true)
        #expect(now.trust == true)
        #expect(now.maxTxRate == 100)
        #expect(try StateStore(directory: dir).original(of: host.address(1)) == nil)
        let lastWrite = try #require(host.state.withLock { $0.writes.last })
        #expect(lastWrite.trust == nil && lastWrite.maxTxRate == nil, "only changed groups are written back")
    }

    @Test("the original survives a restart of the controller")
    func originalIsDurable() async throws {
        _ = try await controller.configure(vf: host.address(0), VFConfig(trust: true))
        let again = VFController(host: host, store: try StateStore(directory: dir), logger: Logger(label: "t"))
        _ = try await again.restore(vf: host.address(0))
        #expect(host.state.withLock { $0.vfs[0]!.trust } == false)
    }

    @Test("scrub leaves no MAC or VLAN and turns spoof check on, trust and RSS query off")
    func scrubs() async throws {
        _ = try await controller.configure(
            vf: host.address(2),
            VFConfig(mac: mac("52:54:00:00:00:55"), vlan: try VLANID(9), spoofCheck: false, trust: true, rssQuery: true))
        let report = try await controller.scrub(vf: host.address(2))
        #expect(!report.failed)
        let now = host.state.withLock { $0.vfs[2]! }
        #expect(now.mac == .zero && now.vlan == VLANID.none && now.spoofCheck == true && now.trust == false)
        #expect(now.rssQuery == false)
        #expect(report.results.contains { $0.setting == .linkState && $0.outcome == .unsupported })
    }

    @Test("VF count: above total refused, lowering over an in-use VF refused unless forced")
    func numVFs() async throws {
        do {
            try await controller.setNumVFs(pf: host.pf, count: 8, driversAutoprobe: nil, force: false)
            Issue.record("accepted 8")
        } catch {
            guard case .invalid(let e) = error else { Issue.record("\(error)"); return }
            #expect(e.field == "numVFs")
        }
        _ = try await controller.configure(vf: host.address(2), VFConfig(trust: true))
        do {
            try await controller.setNumVFs(pf: host.pf, count: 1, driversAutoprobe: nil, force: false)
            Issue.record("lowered over an in-use VF")
        } catch {
            guard case .conflict(let detail) = error else { Issue.record("\(error)"); return }
            #expect(detail.contains("VF 2"))
        }
        #expect(host.state.withLock { $0.numVFsWrites.isEmpty })
        // Refused with autoprobe in the same request: autoprobe is not changed either.
        do {
            try await controller.setNumVFs(pf: host.pf, count: 1, driversAutoprobe: true, force: false)
            Issue.record("lowered over an in-use VF")
        } catch {
            guard case .conflict = error else { Issue.record("\(error)"); return }
        }
        #expect(host.state.withLock { $0.autoprobe } == false)
        #expect(!host.operations.contains { $0.hasPrefix("autoprobe") })
        try await controller.setNumVFs(pf: host.pf, count: 1, driversAutoprobe: false, force: true)
        #expect(host.state.withLock { $0.numVFsWrites } == [1])
        #expect(host.state.withLock { $0.autoprobe } == false)
    }

    @Test("binding to vfio-pci and back")
    func binding() async throws {
        #expect(try await controller.bind(vf: host.address(0), to: .vfio) == "vfio-pci")
        #expect(try await controller.bind(vf: host.address(0), to: .host) == "igbvf")
        #expect(try await controller.bind(vf: host.address(0), to: .none) == nil)
    }

    @Test("concurrent changes to one VF are serialized; each reads back what it wrote")
    func serialized() async throws {
        try await withThrowingTaskGroup(of: VFController.VFReport.self) { group in
            for i in 1...20 {
                group.addTask {
                    try await controller.configure(vf: host.address(0), VFConfig(vlan: try VLANID(i)))
                }
            }
            for try await report in group {
                #expect(!report.failed)
            }
        }
    }
}

/// A door tasks wait at until it is opened.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}

@Suite("VF controller: a PF's VF count and work on its VFs")
struct VFControllerPFLockTests {
    let host = FakeHost.threeVFs()
    let controller: VFController
    let dir = NSTemporaryDirectory() + "sriovd-pflock-\(UUID().uuidString)"

    init() throws {
        controller = VFController(
            host: host, store: try StateStore(directory: dir), logger: Logger(label: "test"),
            verifyAttempts: 5, verifyInterval: .milliseconds(1))
    }

    @Test("a VF-count change waits for work on one of the PF's VFs, and work asked for after it waits for it")
    func countChangeWaitsForVFWork() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gate = Gate()
        let (entered, enter) = AsyncStream.makeStream(of: PCIAddress.self)
        host.onWrite { vf in
            enter.yield(vf.vf)
            await gate.wait()
        }
        let (controller, host) = (self.controller, self.host)
        let first = Task { try await controller.configure(vf: host.address(0), VFConfig(trust: true)) }
        var writes = entered.makeAsyncIterator()
        #expect(await writes.next() == host.address(0))

        // The write on VF 0 is under way (held in the host): the count change must wait.
        let count = Task { try await controller.setNumVFs(pf: host.pf, count: 2, driversAutoprobe: nil, force: true) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(!host.operations.contains { $0.hasPrefix("numvfs") }, "the count changed while a VF write was under way")
        // Work asked for now waits behind the count change.
        let later = Task { try await controller.configure(vf: host.address(1), VFConfig(spoofCheck: false)) }
        try await Task.sleep(for: .milliseconds(300))

        host.onWrite(nil)
        await gate.open()
        _ = try await first.value
        try await count.value
        _ = try await later.value
        enter.finish()

        let ops = host.operations
        let write0 = try #require(ops.firstIndex { $0 == "write \(host.address(0)) trust" })
        let numvfs = try #require(ops.firstIndex { $0 == "numvfs \(host.pf) 2" })
        let write1 = try #require(ops.firstIndex { $0 == "write \(host.address(1)) spoofCheck" })
        #expect(write0 < numvfs && numvfs < write1, "\(ops)")
    }
}
