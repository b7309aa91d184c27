import Foundation
import Logging
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

@Suite("Assignments")
struct AssignmentServiceTests {
    let host = FakeHost.threeVFs()
    let dir = NSTemporaryDirectory() + "sriovd-asg-\(UUID().uuidString)"
    let store: StateStore
    let service: AssignmentService

    init() throws {
        store = try StateStore(directory: dir)
        service = Self.makeService(host: host, store: store)
    }

    static func makeService(
        host: FakeHost, store: StateStore, logger: Logger = Logger(label: "t"),
        releaseAction: SRIOVConfiguration.ReleaseAction = .restore
    ) -> AssignmentService {
        let controller = VFController(
            host: host, store: store, logger: logger, verifyAttempts: 3, verifyInterval: .milliseconds(1))
        var config = SRIOVConfiguration(pfs: [
            .init(match: .pciAddress(host.pf), pools: [.init(name: "physnet1")])
        ])
        config.daemon.releaseAction = releaseAction
        let configuration = config
        return AssignmentService(
            controller: controller, store: store, inventory: host, configuration: { configuration },
            logger: logger)
    }

    func request(_ vm: String, _ nic: String = "net0", vlan: Int = 100, pool: String? = nil) throws -> AssignmentRequest {
        AssignmentRequest(
            vm: vm, nic: nic, pool: pool, pf: pool == nil ? host.pf : nil, driver: .vfio,
            config: VFConfig(mac: try .parse("52:54:00:00:10:01", field: "mac"), vlan: try VLANID(vlan), spoofCheck: true))
    }

    func assigned(_ outcome: AssignmentService.Outcome) -> Assignment {
        switch outcome { case .created(let a), .existing(let a): a }
    }

    @Test("assign programs and binds a free VF; the same request again gives the same VF")
    func assignIsIdempotent() async throws {
        let first = try await service.assign(try request("vm1"))
        guard case .created(let a) = first else { Issue.record("not created"); return }
        #expect(a.state == .assigned)
        #expect(host.state.withLock { $0.drivers[a.vf] } == "vfio-pci")
        #expect(host.state.withLock { $0.vfs[a.vfIndex]!.vlan?.value } == 100)
        guard case .existing(let b) = try await service.assign(try request("vm1")) else { Issue.record("not existing"); return }
        #expect(b.vf == a.vf)
    }

    @Test("each state change is one record with its MESSAGE_ID; the VF changes made for a NIC name its VM and NIC")
    func recordsOfStateChanges() async throws {
        let logs = ReconcileLogRecorder()
        let service = Self.makeService(host: host, store: store, logger: logs.logger)
        let a = assigned(try await service.assign(try request("vm7", "net3")))
        _ = try await service.update(try NICKey(vm: "vm7", nic: "net3"), VFConfig(vlan: try VLANID(200)))
        _ = try await service.release(try NICKey(vm: "vm7", nic: "net3"))

        let events = logs.all.compactMap { r in r.metadata["MESSAGE_ID"].map { (id: $0, record: r) } }
        func named(_ id: MessageID) -> [ReconcileLogRecorder.Record] { events.filter { $0.id == id.id }.map(\.record) }
        // In order: program, bind, assigned; change; unbind, restore, released.
        let order: [MessageID] = [
            .vfConfigured, .vfBound, .assignmentCreated, .vfConfigured, .assignmentChanged, .vfBound, .vfRestored,
            .assignmentReleased,
        ]
        #expect(events.map(\.id) == order.map(\.id), "\(events.map { $0.record.message })")
        for (_, record) in events {
            #expect(record.metadata["vm"] == "vm7" && record.metadata["nic"] == "net3", "\(record.message): \(record.metadata)")
            #expect(record.metadata["vf"] == a.vf.description)
            #expect(record.metadata["pf"] == host.pf.description)
            #expect(record.metadata["op"] != nil)
        }
        #expect(named(.vfBound).map { $0.metadata["driver"] } == ["vfio-pci", "none"])
        #expect(named(.assignmentChanged).first?.metadata["op"] == "assignment.update")
        // Outside an assignment, the controller's records carry no VM or NIC.
        logs.clear()
        _ = try await VFController(host: host, store: store, logger: logs.logger).configure(
            vf: host.address(2), VFConfig(trust: true))
        let plain = try #require(logs.all.first { $0.metadata["MESSAGE_ID"] == MessageID.vfConfigured.id })
        #expect(plain.metadata["vm"] == nil && plain.metadata["nic"] == nil)
    }

    @Test("release_action scrub: a released VF is cleared, whatever it had before; restore puts its leftovers back")
    func releaseScrubs() async throws {
        // VFs with a previous user's leftovers, from before sriovd.
        let leftover = try MACAddress.parse("52:54:00:00:00:99", field: "mac")
        for i in 0..<3 {
            host.state.withLock { $0.vfs[i]!.mac = leftover; $0.vfs[i]!.trust = true }
        }
        let b = assigned(try await service.assign(try request("vm10")))
        _ = try await service.release(b.key)
        let restored = host.state.withLock { $0.vfs[b.vfIndex]! }
        #expect(restored.mac == leftover && restored.vlan == VLANID.none, "restore puts back what was there")

        let scrubbing = Self.makeService(host: host, store: store, releaseAction: .scrub)
        let a = assigned(try await scrubbing.assign(try request("vm9")))
        _ = try await scrubbing.release(a.key)
        let scrubbed = host.state.withLock { $0.vfs[a.vfIndex]! }
        #expect(scrubbed.mac == .zero && scrubbed.vlan == VLANID.none && scrubbed.trust == false)
        #expect(host.state.withLock { $0.drivers[a.vf] } == nil, "previous driver (none) back")
        #expect(try store.original(of: a.vf) == nil)
    }

    @Test("an assigned VF cannot be scrubbed under its VM; once released it can")
    func scrubRefusedWhileAssigned() async throws {
        let a = assigned(try await service.assign(try request("vm8")))
        let controller = VFController(
            host: host, store: store, logger: Logger(label: "t"), verifyAttempts: 3, verifyInterval: .milliseconds(1))
        do {
            _ = try await controller.scrub(vf: a.vf)
            Issue.record("scrubbed an assigned VF")
        } catch {
            guard case .conflict(let detail) = error else { Issue.record("\(error)"); return }
            #expect(detail.contains("assigned"))
        }
        #expect(host.state.withLock { $0.vfs[a.vfIndex]!.vlan?.value } == 100, "untouched")
        _ = try await service.release(a.key)
        #expect(try await controller.scrub(vf: a.vf).failed == false)
    }

    @Test("a different request for an assigned NIC is a conflict")
    func differentRequestConflicts() async throws {
        _ = try await service.assign(try request("vm1"))
        let other = try request("vm1", vlan: 200)
        do {
            _ = try await service.assign(other)
            Issue.record("accepted")
        } catch {
            guard case .conflict(let detail) = error else { Issue.record("\(error)"); return }
            #expect(detail.contains("different request"))
        }
    }

    @Test("bad requests name the field: VM name, missing pool/pf, unknown pool, bad settings")
    func invalid() async throws {
        func field(_ r: AssignmentRequest) async -> String? {
            do { _ = try await service.assign(r); return nil } catch {
                if case .invalid(let e) = error { return e.field }
                return "other: \(error)"
            }
        }
        let elsewhere = try PCIAddress.parse("0000:07:00.0", field: "x")
        #expect(await field(AssignmentRequest(vm: "vm 1", nic: "n", pf: host.pf, driver: .vfio)) == "vm")
        #expect(await field(AssignmentRequest(vm: "vm1", nic: "", pf: host.pf, driver: .vfio)) == "nic")
        #expect(await field(AssignmentRequest(vm: "vm1", nic: "n", driver: .vfio)) == "pool")
        #expect(await field(AssignmentRequest(vm: "vm1", nic: "n", pool: "nope", driver: .vfio)) == "pool")
        #expect(await field(AssignmentRequest(vm: "vm1", nic: "n", pf: elsewhere, driver: .vfio)) == "pf")
        #expect(await field(AssignmentRequest(vm: "vm1", nic: "n", pf: host.pf, driver: .vfio, config: VFConfig(mac: .zero))) == "mac")
        #expect(try store.assignments().isEmpty)
        #expect(host.state.withLock { $0.writes.isEmpty })
    }

    @Test("when every VF is taken the answer is a conflict that says so")
    func exhaustion() async throws {
        for i in 0..<3 { _ = try await service.assign(try request("vm\(i)", pool: "physnet1")) }
        let fourth = try request("vm9", pool: "physnet1")
        do {
            _ = try await service.assign(fourth)
            Issue.record("a fourth VF out of three")
        } catch {
            guard case .conflict(let detail) = error else { Issue.record("\(error)"); return }
            #expect(detail.contains("no free VF"))
        }
    }

    @Test("release restores the VF, gives back its previous driver and frees it")
    func release() async throws {
        let vfs = (0..<3).map(host.address)
        host.state.withLock { for vf in vfs { $0.drivers[vf] = "igbvf" } }
        let a = assigned(try await service.assign(try request("vm1")))
        let released = try await service.release(try NICKey(vm: "vm1", nic: "net0"))
        #expect(released.state == .released)
        let vf = host.state.withLock { $0.vfs[a.vfIndex]! }
        #expect(vf.mac == .zero && vf.vlan == VLANID.none)
        #expect(host.state.withLock { $0.drivers[a.vf] } == "igbvf")
        #expect(try store.assignments().isEmpty)
        #expect(try store.original(of: a.vf) == nil)
        await #expect(throws: ControllerError.self) { try await service.release(try NICKey(vm: "vm1", nic: "net0")) }
    }

    @Test("a failure while programming undoes the assignment entirely")
    func failureUndoes() async throws {
        host.state.withLock { $0.failing = [.vlan] }
        await #expect(throws: ControllerError.self) { try await service.assign(try request("vm1")) }
        #expect(try store.assignments().isEmpty)
        #expect(host.state.withLock { $0.vfs.values.allSatisfy { $0.mac == .zero && $0.vlan == VLANID.none } })
        #expect(host.state.withLock { $0.drivers.values.allSatisfy { $0 != "vfio-pci" } })
    }

    @Test("many concurrent assigns on a small pool never give one VF to two NICs")
    func concurrency() async throws {
        let service = self.service
        let results = await withTaskGroup(of: Assignment?.self) { group in
            for i in 0..<24 {
                let r = try! request("vm\(i)", pool: "physnet1")
                group.addTask { (try? await service.assign(r)).map { assigned($0) } }
            }
            var out: [Assignment] = []
            for await a in group { if let a { out.append(a) } }
            return out
        }
        #expect(results.count == 3)
        #expect(Set(results.map(\.vf)).count == 3)
        #expect(try store.assignments().count == 3)
        // Concurrent releases and re-assigns settle with no VF half-programmed.
        await withTaskGroup(of: Void.self) { group in
            for a in results {
                group.addTask { _ = try? await service.release(NICKey(unchecked: a.vm, nic: a.nic)) }
                group.addTask { _ = try? await service.assign(try! request("late-\(a.vm)", pool: "physnet1")) }
            }
        }
        let now = try store.assignments()
        #expect(Set(now.map(\.vf)).count == now.count)
        for vfIndex in 0..<3 {
            let address = host.address(vfIndex)
            let settings = host.state.withLock { $0.vfs[vfIndex]! }
            if let owner = now.first(where: { $0.vf == address }) {
                #expect(settings.vlan == owner.config.vlan, "assigned VF reads back as recorded")
            } else {
                #expect(settings.mac == .zero && settings.vlan == VLANID.none, "free VF carries no VM's MAC or VLAN")
            }
        }
    }

    @Test("after a crash, an interrupted assign is rolled back and an interrupted release rolled forward")
    func recovery() async throws {
        let a = assigned(try await service.assign(try request("vm1")))
        // Crash in the middle of assigning vm2: reserved and programmed, never committed.
        let r2 = try request("vm2", vlan: 300)
        guard case .reserved(let b) = try store.reserve(r2, vf: host.address(1), pf: host.pf, index: 1, previousDriver: nil) else {
            Issue.record("not reserved"); return
        }
        _ = try await service.controller.configure(vf: b.vf, r2.config)
        // Crash in the middle of releasing vm1.
        _ = try store.beginRelease(try NICKey(vm: "vm1", nic: "net0"))

        let restarted = Self.makeService(host: host, store: try StateStore(directory: dir))
        await restarted.recover()
        #expect(try store.assignments().isEmpty)
        for index in [a.vfIndex, 1] {
            let vf = host.state.withLock { $0.vfs[index]! }
            #expect(vf.mac == .zero && vf.vlan == VLANID.none)
        }
        #expect(try store.pendingOperations().isEmpty)
    }

    @Test("live changes to an assignment are applied and recorded; the MAC cannot change")
    func update() async throws {
        let a = assigned(try await service.assign(try request("vm1")))
        let (changed, report) = try await service.update(try NICKey(vm: "vm1", nic: "net0"), VFConfig(vlan: try VLANID(42), trust: true))
        #expect(!report.failed)
        #expect(changed.config.vlan?.value == 42 && changed.config.trust == true)
        #expect(changed.config.mac == a.config.mac)
        #expect(host.state.withLock { $0.vfs[a.vfIndex]!.vlan?.value } == 42)
        // The same request as now recorded is idempotent.
        var same = try request("vm1")
        same.config = changed.config
        guard case .existing = try await service.assign(same) else { Issue.record("not existing"); return }
    }

    @Test("changing only the QoS of an assignment keeps its VLAN")
    func qosOnly() async throws {
        let a = assigned(try await service.assign(try request("vm1")))
        let (changed, _) = try await service.update(try NICKey(vm: "vm1", nic: "net0"), VFConfig(qos: try VLANQoS(5)))
        #expect(changed.config.vlan?.value == 100 && changed.config.qos?.value == 5)
        #expect(host.state.withLock { $0.vfs[a.vfIndex]!.vlan?.value } == 100)
        #expect(host.state.withLock { $0.vfs[a.vfIndex]!.qos?.value } == 5)
    }

    @Test("an assignment whose VF disappeared (count forced down) can still be released")
    func releaseVanishedVF() async throws {
        _ = try await service.assign(try request("vm1"))
        try await service.controller.setNumVFs(pf: host.pf, count: 0, driversAutoprobe: nil, force: true)
        let key = try NICKey(vm: "vm1", nic: "net0")
        await #expect(throws: ControllerError.self) { try await service.update(key, VFConfig(trust: true)) }
        _ = try await service.release(key)
        #expect(try store.assignments().isEmpty)
        #expect(try store.pendingOperations().isEmpty)
    }
}
