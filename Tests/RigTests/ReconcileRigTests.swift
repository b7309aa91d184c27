import Foundation
import Testing

@Suite("Declarative configuration on the real igb driver (SR-IOV test VM; needs root, QEMU, virtme-ng)", .serialized,
       .enabled(if: Rig.shouldRun, "SR-IOV test VM unavailable: \(Rig.unavailableReason ?? "")"))
struct ReconcileRigTests {
    static let scenario = RigScenario(name: "reconcile", batch: .onePF)

    func results() async throws -> (URL, [String: String]) {
        try await Self.scenario.keyValues()
    }

    @Test("at start sriovd makes the host match the file: VF count and per-VF settings")
    func startReconciles() async throws {
        let (out, r) = try await results()
        let planBefore = (try? out.file("plan-before.out")) ?? ""
        let planAfter = (try? out.file("plan-after.out")) ?? ""
        #expect(r["check_good_exit"] == "0")
        #expect(r["plan_before_exit"] == "2", "changes pending before: \(planBefore)")
        #expect(r["start_numvfs"] == "3")
        #expect(r["start_vf1"] == "52:54:00:cf:00:01 42 2 True")
        #expect(r["plan_after_exit"] == "0", "nothing left to do: \(planAfter)")
    }

    @Test("SIGHUP re-reads the file and applies what changed")
    func reloadApplies() async throws {
        let (_, r) = try await results()
        #expect(r["reload_numvfs"] == "4")
        #expect(r["reload_vf1"] == "52:54:00:cf:00:01 43 2 True")
    }

    @Test("a pool added by SIGHUP is assigned from without a restart")
    func reloadedPoolIsServed() async throws {
        let (out, _) = try await results()
        #expect(try out.status("assign-before-reload") == 400)
        #expect(try out.body("assign-before-reload")["field"] as? String == "pool")
        let assignment = try out.body("assign-after-reload")
        #expect(try out.status("assign-after-reload") == 201, "\(assignment)")
        #expect(assignment["pool"] as? String == "hot")
        // The pool is VFs 2-3, both free: the lowest index is taken first.
        #expect(assignment["vfIndex"] as? Int == 2)
        #expect(try out.status("release-after-reload") == 200)
    }

    @Test("a broken file on SIGHUP is refused with line numbers; sriovd keeps running and changes nothing")
    func badReload() async throws {
        let (out, r) = try await results()
        #expect(r["alive_after_bad"] == "yes")
        #expect(r["bad_numvfs"] == "4")
        #expect(r["check_bad_exit"] == "78")
        let check = try out.file("check-bad.out")
        #expect(check.contains(":3:"), "names line 3 (num_vfs): \(check)")
        #expect(check.contains(":4:"), "names line 4 (unknown key): \(check)")
        #expect(check.contains("num_vfs") && check.contains("frobnicate"))
        let log = try out.file("sriovd.log")
        #expect(log.contains("frobnicate"), "the daemon logs the reload error")
    }
}
