import Foundation
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import SRIOVHypervisor
import Testing
@testable import SRIOVDaemon

/// What the engine says when the guest does not match a request (preflight)
/// and when a rollback or an abort cannot undo everything: nothing is
/// swallowed, the record and the answer list what was undone and what was not.
@Suite("Migration refusals and rollbacks that tell the truth (two daemons on one fake host, one fake guest)")
struct MigrationRollbackTests {
    static let pfA = MigrationServiceTests.pfA
    static let pfB = MigrationServiceTests.pfB
    let world: MigrationServiceTests

    var host: FakeHost { world.host }
    var guest: FakeGuest { world.guest }
    var source: MigrationService { world.source }
    var destination: MigrationService { world.destination }
    var key: NICKey { NICKey(unchecked: "vm1", nic: "net0") }

    init() throws { world = try MigrationServiceTests() }

    func net1(_ pf: PCIAddress) throws -> MigrationNIC {
        var n = try world.nic(pf, vlan: 101)
        n.nic = "net1"
        n.config.mac = try MACAddress.parse("52:54:00:77:00:02", field: "mac")
        return n
    }

    func refusal(_ field: String) -> FailoverError {
        .refusal(adapter: "fake", field: field, found: "what the guest has instead")
    }

    // MARK: Preflight

    @Test("a guest that does not match is refused at incoming as a 400 naming nics[i].<field>, before anything is reserved: no record")
    func incomingPreflightRefused() async throws {
        let body = MigrationIncomingBody(nics: [try world.nic(Self.pfB)])
        for field in ["failover.bond", "failover.standby", "mac"] {
            guest.state.withLock { $0.refusal = refusal(field) }
            do {
                _ = try await destination.incoming(vm: "vm1", body)
                Issue.record("accepted a guest whose \(field) does not match")
            } catch {
                guard case .invalid(let v) = error else { Issue.record("\(error)"); continue }
                #expect(v.field == "nics[0].\(field)")
                #expect(v.description.contains("what the guest has instead"), "\(v)")
            }
            #expect(try destination.store.assignments().isEmpty, "nothing reserved")
            #expect(throws: ControllerError.self) { try destination.show(vm: "vm1") }
            #expect(host.state.withLock { $0.writes.isEmpty }, "nothing programmed")
        }
    }

    @Test("a guest that does not match is refused at assign with failover as a 400 naming the field; nothing reserved or programmed")
    func assignPreflightRefused() async throws {
        guest.state.withLock { $0.refusal = refusal("mac") }
        let request = try world.nic(Self.pfA).request(vm: "vm1")
        do {
            _ = try await source.assignments.assign(request)
            Issue.record("assigned to a guest whose bond has another MAC")
        } catch {
            guard case .invalid(let v) = error else { Issue.record("\(error)"); return }
            #expect(v.field == "mac")
        }
        #expect(try source.store.assignments().isEmpty)
        #expect(host.state.withLock { $0.writes.isEmpty && $0.operations.isEmpty })
        #expect(guest.state.withLock { $0.calls } == ["preflight"])
    }

    @Test("an adapter that cannot look (the hook) passes preflight without a word")
    func defaultPreflight() async throws {
        let hook = HookFailover(hook: HookCommand(path: "/nonexistent", deadline: .seconds(1)))
        try await hook.preflight(mac: world.mac)
    }

    // MARK: Incoming

    @Test("incoming fails on its second NIC and releasing the first fails: 500, the record stays failed with what is still reserved; abort frees it")
    func incomingRollbackFails() async throws {
        // PF B's two VFs: one taken by another VM, so net1 finds none after net0.
        _ = try await destination.assignments.assign(
            AssignmentRequest(vm: "other", nic: "a", pf: Self.pfB, driver: .vfio, config: VFConfig(vlan: try VLANID(9))))
        guest.state.withLock { $0.failing = ["detach"] }  // a release asks the guest to let go first
        let body = MigrationIncomingBody(nics: [try world.nic(Self.pfB), try net1(Self.pfB)])
        do {
            _ = try await destination.incoming(vm: "vm1", body)
            Issue.record("incoming succeeded without a VF for net1")
        } catch {
            guard case .hostFailure(let why) = error else { Issue.record("\(error)"); return }
            #expect(why.contains("not undone: net0 release"), "\(why)")
            #expect(why.contains("abort releases what is left"), "\(why)")
        }
        let m = try destination.show(vm: "vm1")
        #expect(m.state == .failed && m.error?.step == "reserve" && m.error?.nic == "net1")
        let rollback = try #require(m.rollback)
        #expect(rollback.undone.isEmpty)
        #expect(rollback.notUndone.map(\.nic) == ["net0"] && rollback.notUndone.first?.step == "release")
        #expect(rollback.notUndone.first?.reason?.contains("made to fail") == true)
        let step = try #require(m.timeline.first { $0.operation == "rollback" && $0.step == "release" })
        #expect(step.result == "failed" && step.durationMs != nil, "the failed rollback step is journaled and timed")
        #expect(try destination.store.assignment(key) != nil, "the reservation left has a record")

        guest.state.withLock { $0.failing = [] }
        let aborted = try await destination.abort(vm: "vm1")
        #expect(aborted.state == .aborted && aborted.rollback == nil)
        #expect(try destination.store.assignment(key) == nil)
    }

    @Test("incoming fails on its second NIC and the first is released: the refusal is the answer, and no record is left")
    func incomingRollbackClean() async throws {
        _ = try await destination.assignments.assign(
            AssignmentRequest(vm: "other", nic: "a", pf: Self.pfB, driver: .vfio, config: VFConfig(vlan: try VLANID(9))))
        let body = MigrationIncomingBody(nics: [try world.nic(Self.pfB), try net1(Self.pfB)])
        do {
            _ = try await destination.incoming(vm: "vm1", body)
            Issue.record("incoming succeeded without a VF for net1")
        } catch {
            guard case .conflict = error else { Issue.record("\(error)"); return }
        }
        #expect(throws: ControllerError.self) { try destination.show(vm: "vm1") }
        #expect(try destination.store.assignments().filter { $0.vm == "vm1" }.isEmpty)
    }

    // MARK: Complete

    @Test("complete fails, and its rollback cannot take the VF out of the guest: failed, with steer undone, detach and clear-mac not")
    func completeRollbackFails() async throws {
        _ = try await world.assignOnSource()
        _ = try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [try world.nic(Self.pfB)]))
        _ = try await source.prepare(vm: "vm1")
        guest.state.withLock { $0.failing = ["wait", "detach"] }
        do {
            _ = try await destination.complete(vm: "vm1")
            Issue.record("complete succeeded")
        } catch {
            #expect(error.description.contains("not undone: net0 detach"), "\(error)")
            #expect(!error.description.contains("the VFs are out of the guest"), "\(error)")
        }
        let m = try destination.show(vm: "vm1")
        #expect(m.state == .failed && m.error?.step == "wait")
        let rollback = try #require(m.rollback)
        #expect(rollback.undone.map(\.step) == ["steer"])
        #expect(rollback.notUndone.map(\.step) == ["detach", "clear-mac"])
        #expect(rollback.notUndone.last?.reason?.contains("not tried") == true)
        let reserved = try #require(try destination.store.assignment(key))
        #expect(world.macOn(reserved.vf) == world.mac, "the guest still holds the VF: its MAC stays")
        let failed = m.timeline.filter { $0.operation == "rollback" && $0.result == "failed" }
        #expect(failed.map(\.step) == ["detach"] && failed.allSatisfy { $0.durationMs != nil })

        // Fixed: complete again finishes.
        guest.state.withLock { $0.failing = [] }
        let completed = try await destination.complete(vm: "vm1")
        #expect(completed.state == .completed && completed.rollback == nil)
        #expect(guest.state.withLock { $0.active } == reserved.vf)
    }

    @Test("complete fails and rolls back cleanly: the VF is out of the guest and its MAC cleared again, so the source may take the VM back")
    func completeRollbackClean() async throws {
        let a = try await world.assignOnSource()
        _ = try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [try world.nic(Self.pfB)]))
        _ = try await source.prepare(vm: "vm1")
        guest.state.withLock { $0.failing = ["wait"] }
        await #expect(throws: ControllerError.self) { try await destination.complete(vm: "vm1") }
        let m = try destination.show(vm: "vm1")
        #expect(m.rollback?.isComplete == true && m.rollback?.undone.map(\.step) == ["steer", "detach", "clear-mac"])
        let reserved = try #require(try destination.store.assignment(key))
        #expect(world.macOn(reserved.vf) == .zero)
        #expect(destination.assignments.expectedSettings(reserved).mac == nil, "a failed complete's reservation is MAC-less again")
        guest.state.withLock { $0.failing = [] }
        _ = try await source.abort(vm: "vm1")
        #expect(guest.state.withLock { $0.active } == a.vf)
        #expect(world.macOn(a.vf) == world.mac && world.macOn(reserved.vf) == .zero, "one VF carries the MAC")
    }

    // MARK: Prepare and abort

    @Test("prepare fails and its rollback cannot re-attach: failed, the rollback's steps named undone and not undone")
    func prepareRollbackFails() async throws {
        _ = try await world.assignOnSource()
        guest.state.withLock { $0.failing = ["detach", "attach"] }
        do {
            _ = try await source.prepare(vm: "vm1")
            Issue.record("prepare succeeded")
        } catch {
            #expect(error.description.contains("rollback incomplete"), "\(error)")
        }
        let m = try source.show(vm: "vm1")
        #expect(m.state == .failed && m.error?.step == "detach")
        let rollback = try #require(m.rollback)
        #expect(rollback.undone.map(\.step) == ["reassign"])
        #expect(rollback.notUndone.map(\.step) == ["attach", "wait", "steer"])
        #expect(rollback.notUndone.first?.reason?.contains("made to fail") == true)
        #expect(rollback.notUndone.dropFirst().allSatisfy { $0.reason == "not tried: attach failed" })
    }

    @Test("an abort on the source that fails: failed, with what was undone and not; a second abort finishes it")
    func abortFails() async throws {
        let a = try await world.assignOnSource()
        _ = try await source.prepare(vm: "vm1")
        guest.state.withLock { $0.failing = ["attach"] }
        do {
            _ = try await source.abort(vm: "vm1")
            Issue.record("abort succeeded")
        } catch {
            #expect(error.description.contains("try abort again"), "\(error)")
            #expect(error.description.contains("undone: net0 reassign"), "\(error)")
        }
        let m = try source.show(vm: "vm1")
        #expect(m.state == .failed && m.error?.operation == "abort" && m.error?.step == "attach")
        #expect(m.rollback?.undone.map(\.step) == ["reassign"])
        #expect(m.rollback?.notUndone.map(\.step) == ["attach", "wait", "steer"])
        guest.state.withLock { $0.failing = [] }
        let aborted = try await source.abort(vm: "vm1")
        #expect(aborted.state == .aborted && aborted.rollback == nil && aborted.error == nil)
        #expect(guest.state.withLock { $0.active } == a.vf)
    }

    @Test("the rollback field survives the JSON of the API")
    func rollbackJSON() throws {
        let rollback = MigrationRollback(
            undone: [MigrationRollbackStep(nic: "net0", step: "steer")],
            notUndone: [MigrationRollbackStep(nic: "net0", step: "detach", reason: "made to fail")])
        let data = try APIJSON.encoder().encode(rollback)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"notUndone\"") && text.contains("\"undone\""))
        #expect(try APIJSON.decoder().decode(MigrationRollback.self, from: data) == rollback)
    }
}
