import Logging
import SRIOVCore
import SRIOVHost
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

private typealias F = ReconcileFixture

private let pfA = F.address("0000:01:00.0")
private let pfB = F.address("0000:02:00.0")

private func executor(_ host: FakeHost, _ store: StateStore, _ logs: ReconcileLogRecorder = .init()) -> ReconcileExecutor {
    let controller = VFController(
        host: host, store: store, logger: Logger(label: "reconcile-test-controller") { _ in SwiftLogNoOpLogHandler() },
        verifyAttempts: 1, verifyInterval: .milliseconds(1))
    return ReconcileExecutor(controller: controller, inventory: host, logger: logs.logger)
}

private func outcomes(_ report: ReconcileReport) -> [String] {
    report.results.map { r in "\(r.change.op) \(r.change.vf.map { "\($0.index)" } ?? "\(r.change.pf)") \(r.outcome.name)" }
}

@Suite("Reconcile executor")
struct ReconcileExecutorTests {
    @Test("a pass applies autoprobe, then the count, re-reads the host, then each new VF's settings and driver")
    func appliesBothPhasesInOrder() async throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 2
            drivers_autoprobe = false
            vf_driver = "vfio-pci"
            vf_defaults = { trust = true, spoof_check = false }
            """)
        let host = FakeHost(pf: "0000:01:00.0", vfs: 0, autoprobe: true)
        try await withReconcileStateStore { (store: StateStore) async throws in
            let report = await executor(host, store).reconcile(config)
            let vf0 = F.vfAddress(0, of: pfA)
            let vf1 = F.vfAddress(1, of: pfA)
            #expect(host.operations == [
                "autoprobe 0000:01:00.0 false", "numvfs 0000:01:00.0 2",
                "write \(vf0) spoofCheck,trust", "bind \(vf0) vfio-pci",
                "write \(vf1) spoofCheck,trust", "bind \(vf1) vfio-pci",
            ])
            #expect(report.results.allSatisfy { $0.outcome == .applied })
            #expect(report.results.count == 6)
            #expect(report.notices.isEmpty)
            #expect(host.vf(1, of: "0000:01:00.0")?.settings.trust == true)
            #expect(host.vf(1, of: "0000:01:00.0")?.driver == "vfio-pci")
            // Declared settings are the VFs' baseline: they are not "in use" afterwards.
            #expect(try store.allOriginals().isEmpty)
        }
    }

    @Test("a second pass over a reconciled host changes nothing")
    func reconcilingIsIdempotent() async throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 3
            vf_driver = "none"
            vf_defaults = { trust = true, vlan = 10, qos = 2 }
            """)
        let host = FakeHost(pf: "0000:01:00.0", vfs: 1)
        try await withReconcileStateStore { (store: StateStore) async throws in
            let first = await executor(host, store).reconcile(config)
            #expect(!first.results.isEmpty)
            let before = host.operations.count
            let second = await executor(host, store).reconcile(config)
            #expect(second.results.isEmpty)
            #expect(second.summary == "nothing to change")
            #expect(host.operations.count == before)
        }
    }

    @Test("one failure does not stop the others; a PF whose count change failed gets no VF changes")
    func oneFailureDoesNotStopOthers() async throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 2
            vf_defaults = { trust = true }

            [[pf]]
            pci = "0000:02:00.0"
            num_vfs = 3
            vf_defaults = { trust = true, spoof_check = false }
            """)
        let host = FakeHost([.init(address: pfA), .init(address: pfB)])
        host.state.withLock {
            $0.failingNumVFs = [pfA]
            $0.failingSettings = [F.vfAddress(1, of: pfB): [.trust]]
        }
        try await withReconcileStateStore { (store: StateStore) async throws in
            let report = await executor(host, store).reconcile(config)
            #expect(outcomes(report) == [
                "pf.numvfs 0000:01:00.0 failed", "pf.numvfs 0000:02:00.0 applied",
                "vf.configure 0 applied", "vf.configure 1 failed", "vf.configure 2 applied",
            ])
            #expect(report.notices.map(\.kind) == [.waitingForVFCount(pf: pfA, numVFs: 2, current: 0)])
            #expect(!host.operations.contains { $0.hasPrefix("write 0000:01:") })
            // Declared settings stand on their own: VF 1's spoof check stays applied though its trust failed.
            #expect(host.vf(1, of: "0000:02:00.0")?.settings.spoofCheck == false)
            #expect(host.vf(2, of: "0000:02:00.0")?.settings.spoofCheck == false)
            guard case .failed(let reason) = report.results[0].outcome else { Issue.record("not failed"); return }
            #expect(reason.contains("Device or resource busy"))
            #expect(report.failed)
            #expect(report.summary == "3 applied, 2 failed")
        }
    }

    @Test("a setting the driver cannot do is reported as unsupported; the VF's other settings apply")
    func unsupportedSettingReported() async throws {
        let config = try F.configuration(
            "[[pf]]\npci = \"0000:01:00.0\"\nvf_defaults = { link_state = \"enable\", trust = true }\n")
        let host = FakeHost(pf: "0000:01:00.0", vfs: 1)
        host.state.withLock { $0.unsupported = [.linkState] }
        try await withReconcileStateStore { (store: StateStore) async throws in
            let report = await executor(host, store).reconcile(config)
            #expect(report.results.map(\.outcome) == [.unsupported([.linkState])])
            #expect(report.results[0].settings.map(\.setting) == [.trust, .linkState])
            #expect(report.results[0].settings.map(\.outcome) == [.applied, .unsupported])
            #expect(host.vf(0, of: "0000:01:00.0")?.settings.trust == true)
        }
    }

    @Test("a VF configured through the API is not touched, and keeps its recorded original")
    func inUseVFNotTouched() async throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            vf_driver = "vfio-pci"
            vf_defaults = { trust = true }

            [[vf]]
            pf = "0000:01:00.0"
            index = 1
            mac = "52:54:00:00:00:01"
            """)
        let host = FakeHost(pf: "0000:01:00.0", vfs: 2)
        let busy = F.vfAddress(1, of: pfA)
        try await withReconcileStateStore { (store: StateStore) async throws in
            try store.recordChange(vf: busy, pf: pfA, index: 1, before: F.freshSettings, changed: [.vlan])
            let report = await executor(host, store).reconcile(config)
            #expect(outcomes(report) == ["vf.configure 0 applied", "vf.bind 0 applied"])
            #expect(report.notices.map(\.kind) == [.vfInUse(VFLocation(vf: busy, pf: pfA, index: 1))])
            #expect(!host.operations.contains { $0.contains("\(busy)") })
            #expect(try store.original(of: busy)?.changed == [.vlan])
        }
    }

    @Test("a VF the API takes after planning is skipped, not overwritten")
    func vfTakenAfterPlanningIsSkipped() async throws {
        let host = FakeHost(pf: "0000:01:00.0", vfs: 1)
        let vf = VFLocation(vf: F.vfAddress(0, of: pfA), pf: pfA, index: 0)
        let plan = ReconcilePlan(phase: .vf, changes: [
            ReconcileChange(pf: pfA, vf: vf, action: .configureVF(VFConfig(trust: true), current: F.freshSettings)),
            ReconcileChange(pf: pfA, vf: vf, action: .bindVF(.vfio, current: "igbvf")),
        ])
        try await withReconcileStateStore { (store: StateStore) async throws in
            try store.recordChange(vf: vf.vf, pf: pfA, index: 0, before: F.freshSettings, changed: [.mac])
            let results = await executor(host, store).apply(plan)
            #expect(results.map(\.outcome.name) == ["skipped", "skipped"])
            #expect(host.operations.isEmpty)
            #expect(try store.original(of: vf.vf) != nil)
        }
    }

    @Test("each change is logged as one record with op, pf, vf and outcome")
    func logsOneRecordPerChange() async throws {
        let config = try F.configuration("[[pf]]\npci = \"0000:01:00.0\"\nnum_vfs = 1\nvf_defaults = { trust = true }\n")
        let host = FakeHost(pf: "0000:01:00.0")
        let logs = ReconcileLogRecorder()
        try await withReconcileStateStore { (store: StateStore) async throws in
            _ = await executor(host, store, logs).reconcile(config)
            let records = logs.all.filter { $0.metadata["outcome"] != nil }
            #expect(records.map { $0.metadata["op"] } == ["pf.numvfs", "vf.configure"])
            #expect(records.map { $0.metadata["pf"] } == ["0000:01:00.0", "0000:01:00.0"])
            #expect(records.map { $0.metadata["vf"] } == [nil, "\(F.vfAddress(0, of: pfA))"])
            #expect(records.map { $0.metadata["outcome"] } == ["applied", "applied"])
            #expect(records.allSatisfy { $0.level == .info })
        }
    }

    @Test("once the task is cancelled, the remaining changes are skipped, not started")
    func stopsBetweenChangesWhenCancelled() async throws {
        let host = FakeHost(pf: "0000:01:00.0")
        let plan = ReconcilePlan(phase: .pf, changes: [
            ReconcileChange(pf: pfA, action: .setDriversAutoprobe(false, current: true)),
            ReconcileChange(pf: pfA, action: .setNumVFs(2, current: 0)),
        ])
        try await withReconcileStateStore { (store: StateStore) async throws in
            let run = executor(host, store)
            let results = await Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return await run.apply(plan)
            }.value
            #expect(results.map(\.outcome) == [.skipped("sriovd is shutting down"), .skipped("sriovd is shutting down")])
            #expect(host.operations.isEmpty)
        }
    }
}
