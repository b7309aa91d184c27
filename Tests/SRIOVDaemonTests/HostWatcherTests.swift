import Foundation
import Logging
import Prometheus
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import SRIOVHypervisor
import Synchronization
import Testing
@testable import SRIOVDaemon

/// Kernel events fed by the test.
final class FakeKernelEvents: KernelEventSource {
    let stream: AsyncStream<KernelEvent>
    let continuation: AsyncStream<KernelEvent>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: KernelEvent.self) }

    func events() throws -> AsyncStream<KernelEvent> { stream }

    func send(_ event: KernelEvent) { continuation.yield(event) }

    /// A PCI uevent for `slot`.
    func device(_ action: String, _ slot: PCIAddress, driver: String? = nil) {
        send(.device(DeviceEvent(action: action, devpath: "/devices/pci0000:00/\(slot)", subsystem: "pci", driver: driver, slot: slot)))
    }

    /// RTM_NEWLINK of the PF's netdev.
    func link(_ pf: PCIAddress) {
        send(.link(LinkEvent(ifindex: 3, name: "eth0", removed: false, parentDevice: pf.description, adminUp: true)))
    }
}

/// The running configuration, changed by tests.
final class ConfigBox: Sendable {
    private let value = Mutex(SRIOVConfiguration())
    var current: SRIOVConfiguration { value.withLock { $0 } }
    func change(_ body: (inout SRIOVConfiguration) -> Void) { value.withLock { body(&$0) } }
}

/// Every event published, in order.
final class EventLog: Sendable {
    private let list = Mutex<[StateEvent]>([])
    func record(_ event: StateEvent) { list.withLock { $0.append(event) } }
    var events: [StateEvent] { list.withLock { $0 } }
    var kinds: [String] { events.map(\.kind) }
    func of(_ kind: String) -> [StateEvent] { events.filter { $0.kind == kind } }
}

@Suite("Watcher: PF driver reloads healed, drift corrected or reported (fake host, fake kernel events)")
struct HostWatcherTests {
    static let pf = try! PCIAddress.parse("0000:01:00.0", field: "pf")
    let host = FakeHost([FakeHost.PF(address: HostWatcherTests.pf, autoprobe: true, vfs: 3)])
    let kernel = FakeKernelEvents()
    let log = EventLog()
    let guest = FakeGuest()
    let store: StateStore
    let assignments: AssignmentService
    let config = ConfigBox()
    let mac1 = try! MACAddress.parse("52:54:00:10:00:01", field: "mac")
    let mac2 = try! MACAddress.parse("52:54:00:10:00:02", field: "mac")

    init() throws {
        store = try StateStore(directory: NSTemporaryDirectory() + "sriovd-watch-\(UUID().uuidString)")
        let logger = Logger(label: "t")
        let bus = EventBus(recorders: [log.record])
        let controller = VFController(
            host: host, store: store, logger: logger, verifyAttempts: 2, verifyInterval: .milliseconds(1), events: bus)
        let config = self.config
        let guest = self.guest
        assignments = AssignmentService(
            controller: controller, store: store, inventory: host, configuration: { config.current },
            logger: logger, adapters: { _ in guest })
    }

    func watcher(attempts: Int = 3, interval: Duration = .zero, events: Bool = true) -> HostWatcher {
        var policy = WatchPolicy(interval: interval)
        policy.debounce = .milliseconds(1)
        policy.healAttempts = attempts
        policy.healBackoff = [.milliseconds(5)]
        let config = self.config
        return HostWatcher(
            assignments: assignments, inventory: host, configuration: { config.current }, source: events ? kernel : nil,
            policy: policy, logger: Logger(label: "t"))
    }

    /// Runs the watcher while `body` runs.
    func watching(
        attempts: Int = 3, interval: Duration = .zero, events: Bool = true, _ body: () async throws -> Void
    ) async throws {
        let watcher = watcher(attempts: attempts, interval: interval, events: events)
        let task = Task { try await watcher.run() }
        defer { task.cancel() }
        try await Task.sleep(for: .milliseconds(50))
        try await body()
    }

    func eventually(_ what: String, timeout: Duration = .seconds(5), _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("timed out waiting for \(what); events: \(log.kinds)")
    }

    func state(_ vm: String) throws -> AssignmentState? { try store.assignment(NICKey(vm: vm, nic: "net0"))?.state }

    func assignTwo() async throws -> (vfio: Assignment, host: Assignment) {
        let a = try await assignments.assign(
            AssignmentRequest(vm: "vm1", nic: "net0", pf: Self.pf, driver: .vfio, config: VFConfig(mac: mac1, vlan: try VLANID(100))))
        let b = try await assignments.assign(
            AssignmentRequest(
                vm: "vm2", nic: "net0", pf: Self.pf, driver: .host,
                config: VFConfig(mac: mac2, vlan: try VLANID(200), trust: false),
                failover: .netns(namespace: "guest", bond: "bond0", standby: "veth-g")))
        guard case .created(let x) = a, case .created(let y) = b else { throw CancellationError() }
        return (x, y)
    }

    func settings(_ index: Int) -> VFSettings? { host.vf(index)?.settings }

    @Test("a driver reload: both assignments degraded at once, then healed with their settings, drivers and guest back")
    func reloadHealed() async throws {
        let (vfio, hostNIC) = try await assignTwo()
        try await watching {
            host.unloadDriver(pf: Self.pf)
            kernel.device("unbind", Self.pf, driver: "igb")
            try await eventually("both degraded") { try state("vm1") == .degraded && state("vm2") == .degraded }
            let degraded = try #require(try store.assignment(NICKey(vm: "vm1", nic: "net0")))
            #expect(degraded.reason?.contains("no driver bound") == true, "\(degraded.reason ?? "")")
            #expect(log.of("pf.lost").count == 1)

            guest.state.withLock { $0.attached = [] }  // the netdev went with the VF
            host.loadDriver(pf: Self.pf)
            kernel.device("bind", Self.pf, driver: "igb")
            try await eventually("both healed") {
                try state("vm1") == .assigned && state("vm2") == .assigned && log.of("assignment.healed").count == 2
            }
        }
        #expect(host.vf(vfio.vfIndex)?.settings.mac == mac1)
        #expect(host.vf(vfio.vfIndex)?.settings.vlan == (try VLANID(100)))
        #expect(host.vf(vfio.vfIndex)?.driver == "vfio-pci")
        #expect(host.vf(hostNIC.vfIndex)?.settings.vlan == (try VLANID(200)))
        #expect(host.vf(hostNIC.vfIndex)?.driver == "igbvf")
        #expect(host.state.withLock { $0.pfs[Self.pf]?.vfs.count } == 3, "the count it had")
        #expect(guest.state.withLock { $0.attached } == [hostNIC.vf], "the failover NIC re-attached")
        #expect(guest.state.withLock { $0.active } == hostNIC.vf, "and made the active path")
        #expect(try store.assignment(NICKey(vm: "vm1", nic: "net0"))?.reason == nil)

        let order = log.kinds.filter { $0.hasPrefix("pf.lost") || $0.hasPrefix("pf.back") || $0.hasPrefix("assignment.") }
        #expect(order == [
            "assignment.created", "assignment.created", "pf.lost", "assignment.degraded", "assignment.degraded", "pf.back",
            "assignment.healed", "assignment.healed",
        ])
        let healed = log.of("assignment.healed").compactMap { event -> HealReport? in
            if case .assignmentHealed(_, let report) = event.change { return report }
            return nil
        }
        #expect(healed.map { $0.steps.map(\.name) } == [["numvfs", "program", "bind"], ["numvfs", "program", "bind", "attach"]])
        #expect(healed.allSatisfy { $0.attempt == 1 && $0.sinceLossMs != nil })
    }

    @Test("healing is bounded: a PF that refuses its VF count leaves the assignments failed, with the reason")
    func healGivesUp() async throws {
        _ = try await assignTwo()
        try await watching(attempts: 2) {
            host.unloadDriver(pf: Self.pf)
            kernel.device("unbind", Self.pf)
            try await eventually("degraded") { try state("vm1") == .degraded }
            host.state.withLock { $0.failingNumVFs = [Self.pf] }
            host.loadDriver(pf: Self.pf)
            kernel.device("bind", Self.pf, driver: "igb")
            try await eventually("failed") {
                try state("vm1") == .failed && state("vm2") == .failed && log.of("assignment.failed").count == 2
            }
        }
        let failed = try #require(try store.assignment(NICKey(vm: "vm1", nic: "net0")))
        #expect(failed.reason?.contains("gave up after 2 attempts") == true, "\(failed.reason ?? "")")
        #expect(failed.reason?.contains("busy") == true)
        #expect(log.of("assignment.failed").count == 2)
        #expect(host.state.withLock { $0.numVFsWrites.suffix(2) } == [3, 3], "two attempts, no more")
    }

    @Test("a PF gone for good leaves its assignments degraded, not deleted; they can still be released")
    func goneForGood() async throws {
        _ = try await assignTwo()
        try await watching {
            host.unloadDriver(pf: Self.pf)
            kernel.device("unbind", Self.pf)
            try await eventually("degraded") { try state("vm1") == .degraded && state("vm2") == .degraded }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try state("vm1") == .degraded)
        do {
            _ = try await assignments.update(NICKey(vm: "vm1", nic: "net0"), VFConfig(vlan: try VLANID(5)))
            Issue.record("a degraded assignment was changed")
        } catch {
            #expect("\(error)".contains("degraded"))
        }
        let released = try await assignments.release(NICKey(vm: "vm1", nic: "net0"))
        #expect(released.state == .released)
        #expect(try state("vm1") == nil)
    }

    @Test("drift under correct: VLAN and trust changed behind sriovd's back are put back, one event each")
    func driftCorrected() async throws {
        let (_, b) = try await assignTwo()
        try await watching {
            host.state.withLock { s in
                s.pfs[Self.pf]?.vfs[b.vfIndex]?.settings.vlan = try! VLANID(5)
                s.pfs[Self.pf]?.vfs[b.vfIndex]?.settings.trust = true
            }
            kernel.link(Self.pf)
            try await eventually("corrected") {
                settings(b.vfIndex)?.vlan == (try VLANID(200)) && settings(b.vfIndex)?.trust == false
                    && log.of("vf.drift").count == 2
            }
        }
        let drifts = log.of("vf.drift").compactMap { event -> VFDrift? in
            if case .vfDrift(let d) = event.change { return d }
            return nil
        }
        #expect(Set(drifts.map(\.setting)) == [.vlan, .trust])
        #expect(drifts.allSatisfy { $0.action == .corrected && $0.source == .assignment && $0.trigger == "event" })
        #expect(drifts.first { $0.setting == .vlan }?.expected == "vlan 200")
        #expect(drifts.first { $0.setting == .vlan }?.found == "vlan 5")
        #expect(log.of("vf.drift").allSatisfy { $0.subject.vm == "vm2" && $0.subject.vfIndex == b.vfIndex })
    }

    @Test("trust turned on is drift even when the assignment did not ask for trust (its value at hand-over is kept)")
    func trustBaseline() async throws {
        let (a, _) = try await assignTwo()
        try await watching {
            host.state.withLock { $0.pfs[Self.pf]?.vfs[a.vfIndex]?.settings.trust = true }
            kernel.link(Self.pf)
            try await eventually("corrected") { settings(a.vfIndex)?.trust == false && log.of("vf.drift").count == 1 }
        }
        #expect(log.of("vf.drift").count == 1)
    }

    @Test("drift under report: reported once, left as found")
    func driftReported() async throws {
        config.change { $0.daemon.drift = .report }
        let (_, b) = try await assignTwo()
        try await watching {
            host.state.withLock { $0.pfs[Self.pf]?.vfs[b.vfIndex]?.settings.vlan = try! VLANID(5) }
            kernel.link(Self.pf)
            try await eventually("reported") { !log.of("vf.drift").isEmpty }
            kernel.link(Self.pf)
            kernel.link(Self.pf)
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(settings(b.vfIndex)?.vlan == (try VLANID(5)), "not corrected")
        let drifts = log.of("vf.drift")
        #expect(drifts.count == 1, "reported once: \(drifts.count)")
        if case .vfDrift(let d) = drifts.first?.change { #expect(d.action == .reported) }
    }

    @Test("without kernel events (a PF that is down sends none) the timer finds the drift")
    func timerFindsDrift() async throws {
        let (_, b) = try await assignTwo()
        try await watching(interval: .milliseconds(30), events: false) {
            host.state.withLock { $0.pfs[Self.pf]?.vfs[b.vfIndex]?.settings.vlan = try! VLANID(9) }
            try await eventually("corrected by the timer") {
                settings(b.vfIndex)?.vlan == (try VLANID(200)) && !log.of("vf.drift").isEmpty
            }
        }
        if case .vfDrift(let d) = log.of("vf.drift").first?.change { #expect(d.trigger == "timer") }
    }

    @Test("declared VFs: a timer pass corrects their drift under correct, reports it once under report")
    func declaredDriftOnTimer() async throws {
        config.change { c in
            c.pfs = [SRIOVConfiguration.PF(match: .pciAddress(Self.pf), numVFs: 3)]
            c.vfs = [SRIOVConfiguration.VF(pf: Self.pf, index: 2, config: VFConfig(vlan: try! VLANID(300)))]
        }
        let executor = ReconcileExecutor(
            controller: assignments.controller, inventory: host, logger: Logger(label: "t"), reported: DriftMemory())
        _ = await ReconcileTrigger.$current.withValue("start") { await executor.reconcile(config.current) }
        #expect(settings(2)?.vlan == (try VLANID(300)))
        #expect(log.of("vf.drift").isEmpty, "applying the declaration at start is not drift")

        host.state.withLock { $0.pfs[Self.pf]?.vfs[2]?.settings.vlan = try! VLANID(8) }
        _ = await ReconcileTrigger.$current.withValue("interval") { await executor.reconcile(config.current) }
        #expect(settings(2)?.vlan == (try VLANID(300)))
        #expect(log.of("vf.drift").count == 1)

        config.change { $0.daemon.drift = .report }
        host.state.withLock { $0.pfs[Self.pf]?.vfs[2]?.settings.vlan = try! VLANID(8) }
        for _ in 0..<2 {
            let report = await ReconcileTrigger.$current.withValue("interval") { await executor.reconcile(config.current) }
            #expect(report.count("skipped") == 1)
        }
        #expect(settings(2)?.vlan == (try VLANID(8)), "left as found")
        let drifts = log.of("vf.drift").compactMap { event -> VFDrift? in
            if case .vfDrift(let d) = event.change { return d }
            return nil
        }
        #expect(drifts.map(\.action) == [.corrected, .reported], "reported once")
        #expect(drifts.allSatisfy { $0.source == .declared && $0.expected == "vlan 300" && $0.found == "vlan 8" })
    }

    @Test("events for other devices are ignored; a kernel overrun reads every PF")
    func routing() async throws {
        let (_, b) = try await assignTwo()
        try await watching {
            host.state.withLock { $0.pfs[Self.pf]?.vfs[b.vfIndex]?.settings.vlan = try! VLANID(7) }
            kernel.send(.link(LinkEvent(ifindex: 9, name: "veth0", removed: false, parentDevice: nil, adminUp: true)))
            kernel.device("add", try PCIAddress.parse("0000:05:00.0", field: "x"))
            try await Task.sleep(for: .milliseconds(100))
            #expect(log.of("vf.drift").isEmpty)
            kernel.send(.overrun(source: "rtnetlink"))
            try await eventually("corrected after the overrun") { settings(b.vfIndex)?.vlan == (try VLANID(200)) }
        }
    }

    @Test("an event naming an assigned VF checks its PF")
    func vfEventChecksPF() async throws {
        let (_, b) = try await assignTwo()
        try await watching {
            host.state.withLock { $0.pfs[Self.pf]?.vfs[b.vfIndex]?.settings.vlan = try! VLANID(7) }
            kernel.device("change", b.vf)
            try await eventually("corrected") { settings(b.vfIndex)?.vlan == (try VLANID(200)) }
        }
    }

    @Test("metrics count drift by setting and action, heals by result")
    func metricsCounts() async throws {
        let registry = PrometheusCollectorRegistry()
        let counts = EventCounts(factory: MetricsExposition.factory(registry))
        let d = VFDrift(setting: .vlan, expected: "vlan 1", found: "vlan 2", source: .assignment, action: .corrected,
                        detail: nil, trigger: "event")
        let bus = EventBus(recorders: [counts.record])
        bus.publish(.vfDrift(d))
        bus.publish(.vfDrift(d))
        let (a, _) = try await assignTwo()
        bus.publish(.assignmentHealed(a, HealReport(attempt: 1, steps: [("numvfs", 12), ("program", 3)], sinceLossMs: 900)))
        bus.publish(.assignmentFailed(a, attempts: 5))
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#"sriovd_drift_total{setting="vlan",action="corrected"} 2"#), "\(text)")
        #expect(text.contains(#"sriovd_heals_total{result="healed"} 1"#))
        #expect(text.contains(#"sriovd_heals_total{result="failed"} 1"#))
        #expect(text.contains("sriovd_heal_duration_seconds_count 1"))
        bus.publish(.migrationStep(MigrationStep(
            operation: "prepare", nic: "net0", step: "steer", startedAt: Date(), offsetMs: 1, durationMs: 20, result: "ok",
            lever: "bond")))
        var after: [UInt8] = []
        registry.emit(into: &after)
        let text2 = String(decoding: after, as: UTF8.self)
        #expect(text2.contains(#"sriovd_migration_step_duration_seconds_count{operation="prepare",step="steer",result="ok"} 1"#), "\(text2)")
        #expect(text2.contains(#"sriovd_migration_switch_duration_seconds_count{operation="prepare"} 1"#))
    }
}

@Suite("Kernel event parsing")
struct KernelEventParsingTests {
    @Test("a kernel uevent: action, devpath, subsystem, driver, PCI slot")
    func uevent() throws {
        let text = "bind@/devices/pci0000:00/0000:00:03.0\0ACTION=bind\0DEVPATH=/devices/pci0000:00/0000:00:03.0\0"
            + "SUBSYSTEM=pci\0DRIVER=igb\0PCI_CLASS=20000\0PCI_SLOT_NAME=0000:00:03.0\0SEQNUM=2345\0"
        let event = try #require(DeviceEvent.parse(Array(text.utf8)))
        #expect(event.action == "bind")
        #expect(event.subsystem == "pci")
        #expect(event.driver == "igb")
        #expect(event.slot == (try PCIAddress.parse("0000:00:03.0", field: "x")))
        #expect(event.devpath == "/devices/pci0000:00/0000:00:03.0")
    }

    @Test("udev's re-broadcasts and garbage are not kernel uevents")
    func notUevents() {
        #expect(DeviceEvent.parse(Array("libudev\0\u{1}\u{2}".utf8)) == nil)
        #expect(DeviceEvent.parse([]) == nil)
        #expect(DeviceEvent.parse(Array("no at sign\0ACTION=add\0".utf8)) == nil)
    }

    @Test("a remove of a VF: no driver, its slot")
    func removeEvent() throws {
        let text = "remove@/devices/pci0000:00/0000:00:03.0/0000:00:10.0\0ACTION=remove\0DEVPATH=/devices/pci0000:00/0000:00:03.0/0000:00:10.0\0SUBSYSTEM=pci\0PCI_SLOT_NAME=0000:00:10.0\0"
        let event = try #require(DeviceEvent.parse(Array(text.utf8)))
        #expect(event.action == "remove" && event.driver == nil)
        #expect(event.slot?.description == "0000:00:10.0")
    }
}
