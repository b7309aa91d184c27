import Foundation
import Logging
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import SRIOVHypervisor
import Synchronization
import Testing
@testable import SRIOVDaemon

/// A guest shared by both "hosts" (like the test VM's namespace): which VFs
/// it holds, which path its bond uses, its standby's link; calls can be made
/// to fail. `leverless`: it answers as the QMP adapter without a guest agent
/// does (no steering lever, the standby's link unknown); its bond still
/// prefers a VF that is present.
final class FakeGuest: FailoverAdapter, @unchecked Sendable {
    let leverless: Bool
    init(leverless: Bool = false) { self.leverless = leverless }

    struct State {
        /// What `preflight` refuses, if anything.
        var refusal: FailoverError?
        var attached: Set<PCIAddress> = []
        /// nil: the standby.
        var active: PCIAddress?
        var standbyUp = true
        var failing: Set<String> = []
        /// Calls that take a second (a guest slow to answer an unplug).
        var slow: Set<String> = []
        var calls: [String] = []
    }
    let state = Mutex(State())
    var name: String { leverless ? "fake-qmp" : "fake" }

    func preflight(mac: MACAddress?) async throws(FailoverError) {
        try await call("preflight")
        if let refusal = state.withLock({ $0.refusal }) { throw refusal }
    }

    private func call(_ what: String) async throws(FailoverError) {
        let (fails, slow) = state.withLock { s in
            s.calls.append(what)
            return (s.failing.contains(what), s.slow.contains(what))
        }
        if slow { try? await Task.sleep(for: .seconds(1)) }
        if fails { throw FailoverError(adapter: "fake", action: what, reason: "made to fail") }
    }

    func attach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await call("attach")
        return state.withLock { $0.attached.insert(vf.pci).inserted }
    }

    func detach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await call("detach")
        return state.withLock { s in
            if s.active == vf.pci { s.active = nil }
            return s.attached.remove(vf.pci) != nil
        }
    }

    func isAttached(_ vf: FailoverVF) async throws(FailoverError) -> Bool? {
        state.withLock { $0.attached.contains(vf.pci) }
    }

    func standbyIsUp() async throws(FailoverError) -> Bool? { leverless ? nil : state.withLock { $0.standbyUp } }

    func setStandby(up: Bool, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        try await call("standby")
        state.withLock { $0.standbyUp = up }
        return LeverOutcome(lever: "standby \(up)")
    }

    func steer(to target: SteerTarget, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        try await call("steer-\(target.rawValue)")
        try state.withLock { (s: inout State) throws(FailoverError) in
            if target == .vf {
                guard s.attached.contains(vf.pci) else {
                    throw FailoverError(adapter: "fake", action: "steer", reason: "\(vf.pci) is not attached")
                }
                s.active = vf.pci
            } else {
                s.active = nil
            }
        }
        return leverless ? .none("no lever (as QMP without an agent)") : LeverOutcome(lever: "fake active \(target.rawValue)")
    }

    func waitUntilReady(_ vf: FailoverVF, deadline: Duration) async throws(FailoverError) -> String {
        try await call("wait")
        return "ready"
    }
}

@Suite("Migration engine (two daemons on one fake host, one fake guest)")
struct MigrationServiceTests {
    static let pfA = try! PCIAddress.parse("0000:01:00.0", field: "pf")
    static let pfB = try! PCIAddress.parse("0000:02:00.0", field: "pf")
    let host = Self.twoPFs()
    let guest = FakeGuest()
    let dirA = NSTemporaryDirectory() + "sriovd-mig-a-\(UUID().uuidString)"
    let dirB = NSTemporaryDirectory() + "sriovd-mig-b-\(UUID().uuidString)"
    let source: MigrationService
    let destination: MigrationService
    let mac = try! MACAddress.parse("52:54:00:77:00:01", field: "mac")
    let failover = FailoverSpec.netns(namespace: "guest", bond: "bond0", standby: "veth-g")

    init() throws {
        source = try Self.service(host: host, guest: guest, dir: dirA)
        destination = try Self.service(host: host, guest: guest, dir: dirB)
    }

    /// Two "hosts" share one fake host: PF A (the source) and PF B, two VFs each.
    static func twoPFs() -> FakeHost {
        FakeHost([
            FakeHost.PF(address: pfA, autoprobe: false, vfs: 2),
            FakeHost.PF(address: pfB, autoprobe: false, vfs: 2),
        ])
    }

    static func service(host: FakeHost, guest: FakeGuest, dir: String) throws -> MigrationService {
        try service(host: host, dir: dir, adapters: { _ in guest })
    }

    /// One daemon's migration engine, with its own state folder.
    static func service(
        host: FakeHost, dir: String, adapters: @escaping @Sendable (FailoverSpec) -> any FailoverAdapter,
        crashPoints: CrashPoints = .none
    ) throws -> MigrationService {
        let store = try StateStore(directory: dir)
        let logger = Logger(label: "t")
        let controller = VFController(
            host: host, store: store, logger: logger, verifyAttempts: 3, verifyInterval: .milliseconds(1))
        let assignments = AssignmentService(
            controller: controller, store: store, inventory: host, configuration: { SRIOVConfiguration() },
            logger: logger, adapters: adapters, crashPoints: crashPoints)
        return MigrationService(assignments: assignments, settle: .milliseconds(1))
    }

    func nic(_ pf: PCIAddress, vlan: Int = 100) throws -> MigrationNIC {
        MigrationNIC(
            nic: "net0", pf: pf, driver: .host, config: VFConfig(mac: mac, vlan: try VLANID(vlan)), failover: failover)
    }

    func assignOnSource() async throws -> Assignment {
        let outcome = try await source.assignments.assign(try nic(Self.pfA).request(vm: "vm1"))
        guard case .created(let a) = outcome else { throw Failure("not created") }
        return a
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    func vlanOn(_ vf: PCIAddress) -> Int? {
        host.state.withLock { s in
            for (pf, p) in s.pfs { for (i, v) in p.vfs where FakeHost.vfAddress(i, of: pf) == vf { return v.settings.vlan.map { Int($0.value) } } }
            return nil
        }
    }

    func macOn(_ vf: PCIAddress) -> MACAddress? {
        host.state.withLock { s in
            for (pf, p) in s.pfs { for (i, v) in p.vfs where FakeHost.vfAddress(i, of: pf) == vf { return v.settings.mac } }
            return nil
        }
    }

    @Test("a failover NIC is attached and made the guest's active path when assigned")
    func assignAttaches() async throws {
        let a = try await assignOnSource()
        #expect(guest.state.withLock { $0.attached } == [a.vf])
        #expect(guest.state.withLock { $0.active } == a.vf)
        #expect(a.failover == failover)
    }

    @Test("incoming -> prepare -> complete: the guest moves to the standby, then to a VF of the other PF")
    func fullCycle() async throws {
        let a = try await assignOnSource()
        let body = MigrationIncomingBody(nics: [try nic(Self.pfB)])
        let incoming = try await destination.incoming(vm: "vm1", body)
        #expect(incoming.state == .incoming && incoming.role == .destination)
        let reserved = try #require(try destination.store.assignment(NICKey(vm: "vm1", nic: "net0")))
        #expect(reserved.pf == Self.pfB && reserved.config.mac == mac, "the assignment records the guest's MAC")
        #expect(macOn(reserved.vf) == .zero, "but the reserved VF does not carry it while the source VF does")
        #expect(vlanOn(reserved.vf) == 100, "the rest is programmed")
        #expect(host.state.withLock { $0.drivers[reserved.vf] } == "igbvf")
        #expect(!guest.state.withLock { $0.attached.contains(reserved.vf) }, "reserved, not attached")
        #expect(incoming.timeline.first { $0.step == "reserve" }?.detail?.contains("without its MAC") == true)
        #expect(guest.state.withLock { $0.calls.contains("preflight") }, "the guest was checked first")
        // A drift check or a restart does not put the MAC on the reservation.
        #expect(destination.assignments.expectedSettings(reserved).mac == nil)

        let prepared = try await source.prepare(vm: "vm1")
        #expect(prepared.state == .prepared && prepared.role == .source)
        #expect(prepared.timeline.map(\.step) == ["standby-up", "steer", "link-state", "clear-mac", "detach", "release"])
        #expect(prepared.timeline.first { $0.step == "link-state" }?.result == "skipped", "igb has no VF link state")
        var passed = prepared.nics
        passed[0].pf = Self.pfB
        #expect(passed == body.nics, "prepare answers the body incoming takes")
        #expect(guest.state.withLock { $0.active } == nil, "on the standby")
        #expect(!guest.state.withLock { $0.attached.contains(a.vf) })
        #expect(try source.store.assignment(NICKey(vm: "vm1", nic: "net0")) == nil, "the source VF is free")
        let calls = guest.state.withLock { $0.calls }
        #expect(Array(calls.drop(while: { $0 != "standby" }).prefix(3)) == ["standby", "steer-standby", "detach"])

        let before = host.state.withLock { $0.operations.count }
        let completed = try await destination.complete(vm: "vm1")
        #expect(completed.state == .completed)
        #expect(guest.state.withLock { $0.active } == reserved.vf)
        #expect(macOn(reserved.vf) == mac, "complete set the MAC")
        #expect(completed.timeline.filter { $0.operation == "complete" }.map(\.step) == ["mac", "attach", "wait", "steer", "standby-restore"])
        let macStep = try #require(completed.timeline.first { $0.step == "mac" })
        #expect(macStep.result == "ok" && macStep.detail?.contains("mac \(mac)") == true && macStep.detail?.contains("bound again") == true)
        // The MAC written, then igbvf re-probed to take it, before the attach.
        let operations = host.state.withLock { Array($0.operations.dropFirst(before)) }
        #expect(
            operations.filter { $0.contains(reserved.vf.description) } == [
                "write \(reserved.vf) mac", "bind \(reserved.vf) none", "bind \(reserved.vf) host",
            ], "\(operations)")
        #expect(destination.assignments.expectedSettings(reserved).mac == mac, "once completed, drift checks expect the MAC")
        #expect(completed.timeline.allSatisfy { $0.durationMs != nil })
        #expect(try destination.show(vm: "vm1").state == .completed)
        #expect(try source.show(vm: "vm1").state == .prepared)

        // The VM may come back: a new record on the source.
        let back = try await source.incoming(vm: "vm1", MigrationIncomingBody(nics: [try nic(Self.pfA)]))
        #expect(back.id != prepared.id && back.state == .incoming)
    }

    @Test("a step failing in prepare rolls back: the guest is on its VF again, the failing step named")
    func prepareRollsBack() async throws {
        let a = try await assignOnSource()
        guest.state.withLock { $0.failing = ["detach"] }
        await #expect(throws: ControllerError.self) { try await source.prepare(vm: "vm1") }
        guest.state.withLock { $0.failing = [] }
        let m = try source.show(vm: "vm1")
        #expect(m.state == .failed)
        #expect(m.error?.step == "detach" && m.error?.nic == "net0")
        #expect(guest.state.withLock { $0.active } == a.vf)
        #expect(macOn(a.vf) == mac, "the MAC cleared in prepare is back")
        #expect(try source.store.assignment(a.key)?.state == .assigned)
        #expect(m.timeline.contains { $0.operation == "rollback" && $0.step == "steer" && $0.result == "ok" })
        // A new prepare may follow.
        _ = try await source.prepare(vm: "vm1")
    }

    @Test("no free VF on the destination: a conflict, nothing reserved, no record")
    func incomingRefused() async throws {
        for (i, name) in ["a", "b"].enumerated() {
            _ = try await destination.assignments.assign(
                AssignmentRequest(vm: "other", nic: name, pf: Self.pfB, driver: .vfio, config: VFConfig(vlan: try VLANID(i + 1))))
        }
        await #expect(throws: ControllerError.self) {
            try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [try nic(Self.pfB), {
                var n = try nic(Self.pfB); n.nic = "net1"; return n
            }()]))
        }
        #expect(try destination.store.assignments().filter { $0.vm == "vm1" }.isEmpty)
        #expect(throws: ControllerError.notFound("no migration of VM vm1 on this host")) { try destination.show(vm: "vm1") }
    }

    @Test("incoming refuses bad bodies naming the field, before anything is done")
    func incomingValidation() async throws {
        var noFailover = try nic(Self.pfB)
        noFailover.failover = nil
        var wrongDriver = try nic(Self.pfB)
        wrongDriver.driver = .vfio
        var noMAC = try nic(Self.pfB)
        noMAC.config.mac = nil
        let cases: [(MigrationIncomingBody, String)] = [
            (MigrationIncomingBody(nics: []), "nics"),
            (MigrationIncomingBody(nics: [noFailover]), "nics[0].failover"),
            (MigrationIncomingBody(nics: [wrongDriver]), "nics[0].driver"),
            (MigrationIncomingBody(nics: [noMAC]), "nics[0].mac"),
            (MigrationIncomingBody(nics: [try nic(Self.pfB), try nic(Self.pfB)]), "nics[1].nic"),
        ]
        for (body, field) in cases {
            do {
                _ = try await destination.incoming(vm: "vm1", body)
                Issue.record("accepted: \(body)")
            } catch {
                guard case .invalid(let v) = error else { Issue.record("\(error)"); continue }
                #expect(v.field == field)
            }
        }
        #expect(try destination.store.assignments().isEmpty)
    }

    @Test("abort: the source gets the same VF back and its traffic; the destination frees its reservation")
    func aborts() async throws {
        let a = try await assignOnSource()
        _ = try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [try nic(Self.pfB)]))
        _ = try await source.prepare(vm: "vm1")
        let aborted = try await source.abort(vm: "vm1")
        #expect(aborted.state == .aborted)
        let again = try #require(try source.store.assignment(a.key))
        #expect(again.vf == a.vf, "the same VF while it is free")
        #expect(guest.state.withLock { $0.active } == a.vf)
        let freed = try await destination.abort(vm: "vm1")
        #expect(freed.state == .aborted)
        #expect(try destination.store.assignments().isEmpty)
        await #expect(throws: ControllerError.self) { try await destination.complete(vm: "vm1") }
    }

    @Test("a migration is one operation at a time; a second prepare while prepared is refused")
    func oneAtATime() async throws {
        _ = try await assignOnSource()
        _ = try await source.prepare(vm: "vm1")
        await #expect(throws: ControllerError.self) { try await source.prepare(vm: "vm1") }
        await #expect(throws: ControllerError.self) { try await source.complete(vm: "vm1") }
    }

    @Test("while a VM's prepare waits on its guest, another operation of that VM is refused 409, and other VMs are served")
    func othersServedMeanwhile() async throws {
        _ = try await assignOnSource()
        guest.state.withLock { $0.slow = ["detach"] }
        let preparing = Task { try await source.prepare(vm: "vm1") }
        let deadline = ContinuousClock.now + .seconds(10)
        while !guest.state.withLock({ $0.calls.contains("detach") }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        do {
            _ = try await source.abort(vm: "vm1")
            Issue.record("an abort ran beside the prepare")
        } catch {
            guard case .conflict(let why) = error else { Issue.record("\(error)"); return }
            #expect(why.contains("running"), "\(why)")
        }
        // Another VM gets a VF of the same PF meanwhile.
        let other = try await source.assignments.assign(
            AssignmentRequest(vm: "vm2", nic: "net0", pf: Self.pfA, driver: .vfio, config: VFConfig(vlan: try VLANID(7))))
        guard case .created = other else { throw Failure("vm2 not served: \(other)") }
        #expect(try source.show(vm: "vm1").state == .preparing, "the prepare was still running")
        #expect(try await preparing.value.state == .prepared)
    }

    @Test("a crash during prepare is rolled back at start; one during complete is finished")
    func recovery() async throws {
        let a = try await assignOnSource()
        _ = try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [try nic(Self.pfB)]))
        // The source died after detach and release, before it recorded `prepared`.
        let record = try #require(try source.store.beginMigration(
            vm: "vm1", role: .source, state: .preparing, nics: [try nic(Self.pfA)],
            context: ["net0": .init(vf: a.vf.description, standbyWasUp: true)], pending: "prepare"))
        _ = guest.state.withLock { s in s.active = nil; s.attached.remove(a.vf) }
        _ = try await source.assignments.release(a.key)
        let restarted = try Self.service(host: host, guest: guest, dir: dirA)
        await restarted.recover()
        let m = try restarted.show(vm: "vm1")
        #expect(m.id == record.migration.id && m.state == .failed)
        #expect(try restarted.store.assignment(a.key)?.vf == a.vf)
        #expect(guest.state.withLock { $0.active } == a.vf, "the guest is on a VF again")

        // The destination died during complete: finished at start.
        try destination.store.updateMigration(id: try destination.show(vm: "vm1").id, state: .completing, pending: .some("complete"))
        let restartedB = try Self.service(host: host, guest: guest, dir: dirB)
        await restartedB.recover()
        #expect(try restartedB.show(vm: "vm1").state == .completed)
        let reserved = try #require(try restartedB.store.assignment(a.key))
        #expect(guest.state.withLock { $0.active } == reserved.vf)
        #expect(macOn(reserved.vf) == mac, "the interrupted complete's mac step was done at start")
        #expect(try restartedB.show(vm: "vm1").timeline.contains { $0.operation == "recover" && $0.step == "mac" && $0.result == "ok" })
    }
}
