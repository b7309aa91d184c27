import Foundation
import Testing

@Suite("Assignments on the real igb driver: lifecycle, crash safety, concurrency (SR-IOV test VM; needs root, QEMU, virtme-ng)",
       .serialized, .enabled(if: Rig.shouldRun, "SR-IOV test VM unavailable: \(Rig.unavailableReason ?? "")"))
struct AssignmentRigTests {
    static let scenario = RigScenario(name: "assignments", batch: .onePF)

    func results() async throws -> (URL, [String: String]) {
        try await Self.scenario.keyValues()
    }

    func status(_ out: URL, _ name: String) throws -> Int? { try out.status(name) }

    func body(_ out: URL, _ name: String) throws -> [String: Any] { try out.body(name) }

    @Test("assign, the same again, a different one, inspect, change, release")
    func lifecycle() async throws {
        let (out, r) = try await results()
        #expect(try status(out, "assign-1") == 201)
        let a = try body(out, "assign-1")
        #expect(a["state"] as? String == "assigned")
        #expect((a["vfioDevice"] as? String)?.hasPrefix("/dev/vfio/") == true)
        #expect(try status(out, "assign-1-again") == 200)
        #expect(try body(out, "assign-1-again")["vf"] as? String == a["vf"] as? String)
        #expect((try body(out, "assign-1-again")["vfioDevice"] as? String)?.hasPrefix("/dev/vfio/") == true,
                "the answer to a repeated request carries the device too")
        #expect(try status(out, "assign-1-different") == 409)
        #expect(try status(out, "assign-2") == 201)
        #expect(r["vm2_netdev_mac"] == "52:54:00:a2:00:01", "driver host: the VF netdev comes up with the MAC")
        #expect(try status(out, "one") == 200)
        #expect((try body(out, "list")["assignments"] as? [Any])?.count == 1)
        #expect(try status(out, "patch-1") == 200)
        #expect(r["invariants_live"] == "OK;")
        #expect(r["invariants_undrifted"] == "OK;")
        #expect(try status(out, "release-2") == 200)
        #expect(try status(out, "release-2-again") == 404)
        #expect(r["vf2_driver_after_release"] == "none")
        #expect(r["invariants_after_release"] == "OK;")
        #expect(try status(out, "bad-vm") == 400 && (try body(out, "bad-vm")["field"] as? String) == "vm")
        #expect(try status(out, "bad-pool") == 400 && (try body(out, "bad-pool")["field"] as? String) == "pool")
        #expect(try status(out, "bad-field") == 400 && (try body(out, "bad-field")["field"] as? String) == "colour")
    }

    @Test("the invariant checker compares every setting and the driver: drift behind sriovd's back is reported")
    func checkerSeesDrift() async throws {
        let (out, r) = try await results()
        let vf = try #require(try body(out, "assign-1")["vf"] as? String)
        let free = try #require(r["drift_free_vf"])
        let lines = Set((r["invariants_drift"] ?? "").split(separator: ";").map(String.init))
        #expect(
            lines == [
                "\(vf) of vm1/net0: qos 3, recorded 2", "\(vf) of vm1/net0: spoofCheck True, recorded False",
                "\(vf) of vm1/net0: trust False, recorded True", "\(vf) of vm1/net0: maxTxRate 0, recorded 200",
                "free VF \(free): driver 'vfio-pci', was None",
            ], "\(lines)")
    }

    @Test(
        "killed at each step of assign and release, a restart repairs everything",
        arguments: ["assign.reserved", "assign.programmed", "assign.bound", "release.begun", "release.unbound", "release.restored"])
    func crashSafety(point: String) async throws {
        let (_, r) = try await results()
        #expect(r["crash_\(point)_exit"] == "137", "sriovd died at \(point)")
        #expect(r["crash_\(point)_invariants"] == "OK;", "after restart: \(r["crash_\(point)_invariants"] ?? "?")")
        #expect(r["crash_\(point)_assigned"] == "OK;", "assigned: \(r["crash_\(point)_assigned"] ?? "?")")
        #expect(r["crash_\(point)_after_retry"] == "OK;")
    }

    @Test("concurrent assigns on a small pool: one VF per NIC, the rest refused; churn and SIGKILL keep the invariants")
    func concurrency() async throws {
        let (_, r) = try await results()
        #expect(r["race_201"] == "3")
        #expect(r["race_409"] == "9")
        #expect(r["invariants_race"] == "OK;")
        #expect(r["invariants_churn"] == "OK;")
        #expect(r["invariants_after_kill"] == "OK;")
    }
}
