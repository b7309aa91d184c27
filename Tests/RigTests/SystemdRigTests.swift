import Foundation
import SRIOVDaemon
import Testing

/// The shipped units under a real systemd (PID 1 of a namespace in the VM),
/// sandbox and all, on the real igb driver: Tests/RigTests/Scenarios/systemd.sh.
@Suite("sriovd.service and sriovd.socket under systemd on the real igb driver (SR-IOV test VM; needs root, QEMU, virtme-ng)",
       .serialized, .enabled(if: Rig.shouldRun, "SR-IOV test VM unavailable: \(Rig.unavailableReason ?? "")"))
struct SystemdRigTests {
    static let scenario = RigScenario(name: "systemd", batch: .systemd)

    func results() async throws -> (URL, [String: String]) {
        try await Self.scenario.keyValues("systemd-results.txt")
    }

    @Test("socket activation: the socket listens (0660 root:sriovd, ACL for the reader group), the first request starts sriovd")
    func socketActivation() async throws {
        let (_, r) = try await results()
        #expect(r["done"] == "yes", "the checks ran to the end: \(r)")
        #expect(r["socket_active"] == "active")
        #expect(r["service_before"] == "inactive")
        #expect(r["socket_mode"] == "660 root sriovd")
        // ExecStartPost= sriovd socket-access: version + 5 entries of 8 bytes.
        #expect(r["socket_acl"] == "44")
        #expect(r["health"] == "200")
        #expect(r["service_after"] == "active")
    }

    @Test("Type=notify with the watchdog: running, with sriovd's STATUS=; only CAP_NET_ADMIN and no new privileges")
    func notifyAndSandbox() async throws {
        let (_, r) = try await results()
        #expect(r["type"] == "notify")
        #expect(r["substate"] == "running")
        #expect(r["status_text"]?.hasPrefix("serving /run/sriovd/sriovd.sock; 1 SR-IOV PF(s)") == true)
        #expect(r["watchdog_usec"] == "30s")
        #expect(r["capabilities"] == "0000000000001000", "CapBnd is CAP_NET_ADMIN (bit 12) alone")
        #expect(r["no_new_privs"] == "1")
    }

    @Test("inside the sandbox sriovd still does its work: VF count and driver (sysfs), MAC (netlink), its state folder")
    func sandboxAllowsTheWork() async throws {
        let (_, r) = try await results()
        #expect(r["numvfs"] == "200" && r["numvfs_sysfs"] == "2")
        #expect(r["settings"] == "200" && r["vf_mac"] == "52:54:00:5d:00:01")
        #expect(r["bind"] == "200" && r["vf_driver"] == "vfio-pci")
        #expect(r["unbind"] == "200" && r["restore"] == "200")
        #expect(r["state_db"] == "yes", "StateDirectory=sriovd: /var/lib/sriovd/state.db")
        #expect(r["numvfs_zero"] == "200")
    }

    @Test("reload keeps the process; a SIGKILLed sriovd is restarted (Restart=on-failure) behind the kept socket; stop")
    func lifecycle() async throws {
        let (_, r) = try await results()
        #expect(r["after_reload"] == "active \(r["main_pid"] ?? "?")")
        #expect(r["health_after_crash"] == "200")
        #expect(r["restarted"] == "active new-pid 1")
        #expect(r["stopped"] == "inactive socket-kept")
    }

    @Test("sriovd's records reach the real journald with their fields and MESSAGE_IDs")
    func journal() async throws {
        let (out, _) = try await results()
        let records = try out.file("sriovd-journal.json").split(separator: "\n").compactMap { line in
            try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
        func field(_ r: [String: Any], _ name: String) -> String? { r[name] as? String }
        let ready = records.filter { field($0, "MESSAGE_ID") == MessageID.sriovdStarted.id }
        #expect(ready.count == 2, "started twice: first activation and after the crash")
        #expect(ready.first.map { field($0, "SRIOVD_ACTIVATED") } == "true")
        let numVFs = try #require(records.first { field($0, "MESSAGE_ID") == MessageID.pfNumVFs.id })
        #expect(field(numVFs, "SRIOVD_NUMVFS") == "2" && field(numVFs, "SRIOVD_OP") == "pf.numvfs")
        #expect(records.contains { field($0, "MESSAGE_ID") == MessageID.vfBound.id && field($0, "SRIOVD_DRIVER") == "vfio-pci" })
        // journalctl -u selects by unit; each record is attributed to sriovd.service itself.
        let elsewhere = records.filter { field($0, "_SYSTEMD_UNIT") != "sriovd.service" }
        #expect(elsewhere.isEmpty, "\(elsewhere.map { ($0["_SYSTEMD_UNIT"] ?? "none", $0["_PID"] ?? "?", $0["MESSAGE"] ?? "") })")
    }
}
