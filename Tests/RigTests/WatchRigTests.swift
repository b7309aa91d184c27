import Foundation
import Testing

/// Kernel events on the real igb driver (Scenarios/watch.sh): `rmmod igb;
/// modprobe igb` under two assignments, drift corrected and reported,
/// `sriovctl events` following it, /metrics on the socket and on TCP, and a
/// burst of 200 concurrent requests.
@Suite(
    "Watch and heal: PF driver reload, drift, events and metrics on the real igb driver (SR-IOV test VM; needs root, QEMU, virtme-ng)",
    .serialized, .enabled(if: Rig.shouldRun, "SR-IOV test VM unavailable: \(Rig.unavailableReason ?? "")"))
struct WatchRigTests {
    static let scenario = RigScenario(name: "watch", batch: .onePF)

    func results() async throws -> (URL, [String: String]) {
        try await Self.scenario.keyValues("watch-results.txt")
    }

    /// The JSON lines of an events file, heartbeats left out.
    func events(_ dir: URL, _ name: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }.filter { ($0["type"] as? String) != "heartbeat" }
    }

    @Test("rmmod igb: both assignments degraded at once (API, sriovctl); modprobe igb: healed with their settings, drivers and guest")
    func reload() async throws {
        let (_, r) = try await results()
        #expect(r["done"] == "yes", "the scenario ran to its end: \(r)")
        #expect(r["assign_vfio_status"] == "201" && r["assign_host_status"] == "201")
        #expect(r["active_before"] == "vf", "the guest's bond used the VF")
        #expect(r["state_vm1_lost"] == "degraded" && r["state_vm2_lost"] == "degraded")
        #expect(
            (Int(r["degraded_after_rmmod_ms"] ?? "") ?? .max) < 5000,
            "degraded by the time rmmod returns, or just after: \(r["degraded_after_rmmod_ms"] ?? "") ms (rmmod itself \(r["rmmod_ms"] ?? "") ms)")
        #expect(r["reason_vm1"]?.contains("no driver bound") == true, "\(r["reason_vm1"] ?? "")")
        #expect(r["table_shows_degraded"] == "2", "sriovctl assignments shows both degraded")
        #expect(r["active_while_lost"] == "veth-wg", "the bond fell back to the standby")
        #expect(r["state_vm1_healed"] == "assigned" && r["state_vm2_healed"] == "assigned")
        #expect(r["numvfs_after"] == "4", "the VF count restored")
        #expect(r["vf1_after"] == r["vf1_before"], "VF of vm1 reads back as recorded: \(r["vf1_after"] ?? "")")
        #expect(r["vf1_after"]?.hasPrefix("52:54:00:ee:00:01 100") == true)
        #expect(r["vf2_after"] == "52:54:00:ee:00:02 200 off", "\(r["vf2_after"] ?? "")")
        #expect(r["driver_vf1_after"] == "vfio-pci")
        #expect(r["driver_vf2_after"] == "igbvf")
        #expect(r["active_after"] == "vf", "the new VF re-attached to the guest and made its active slave")
        #expect(r["declared_vf3_after"] == "300", "the declared VF re-programmed too")
    }

    @Test("drift: VLAN and trust put back from the PF's link event; a declared VF too; under report only reported")
    func drift() async throws {
        let (dir, r) = try await results()
        #expect(r["vf2_after_drift"] == "52:54:00:ee:00:02 200 off", "\(r["vf2_after_drift"] ?? "")")
        #expect((Int(r["drift_corrected_ms"] ?? "") ?? .max) < 3000, "within a second or so: \(r["drift_corrected_ms"] ?? "")")
        #expect(r["declared_vf3_after_drift"] == "300")
        #expect(r["vf2_reported"] == "52:54:00:ee:00:02 5 on", "left as found under report: \(r["vf2_reported"] ?? "")")
        let reported = try events(dir, "events-report.jsonl").filter { ($0["type"] as? String) == "vf.drift" }
        let settings = Set(reported.compactMap { ($0["details"] as? [String: Any])?["setting"] as? String })
        #expect(settings == ["vlan", "trust"], "\(reported)")
        #expect(reported.allSatisfy { ($0["details"] as? [String: Any])?["action"] as? String == "reported" })
        let vlan = reported.first { ($0["details"] as? [String: Any])?["setting"] as? String == "vlan" }
        #expect((vlan?["details"] as? [String: Any])?["expected"] as? String == "vlan 200")
        #expect((vlan?["details"] as? [String: Any])?["found"] as? String == "vlan 5")
        #expect(vlan?["vm"] as? String == "vm2" && vlan?["nic"] as? String == "net0")
        #expect(r["release_vm1_status"] == "200" && r["release_vm2_status"] == "200")
    }

    @Test("sriovctl events showed the reload, the heal and the drift as they happened, in order")
    func eventStream() async throws {
        let (dir, _) = try await results()
        let all = try events(dir, "events.jsonl")
        let seqs = all.compactMap { $0["seq"] as? Int }
        #expect(seqs == Array((seqs.first ?? 0)..<((seqs.first ?? 0) + seqs.count)), "no gap in seq, even through the burst")
        let watched: Set<String> = ["pf.lost", "pf.back", "assignment.degraded", "assignment.healed", "vf.drift"]
        let order = all.compactMap { $0["type"] as? String }.filter(watched.contains)
        let firstDrift = order.firstIndex(of: "vf.drift") ?? order.count
        #expect(Array(order[..<firstDrift]) == [
            "pf.lost", "assignment.degraded", "assignment.degraded", "pf.back", "assignment.healed", "assignment.healed",
        ], "\(order)")
        let drifts = all.filter { ($0["type"] as? String) == "vf.drift" }.compactMap { $0["details"] as? [String: Any] }
        #expect(drifts.contains { $0["setting"] as? String == "vlan" && $0["action"] as? String == "corrected" && $0["source"] as? String == "assignment" })
        #expect(drifts.contains { $0["setting"] as? String == "trust" && $0["action"] as? String == "corrected" })
        #expect(drifts.contains { $0["source"] as? String == "declared" && $0["action"] as? String == "corrected" })
        let healed = all.filter { ($0["type"] as? String) == "assignment.healed" }.compactMap { $0["details"] as? [String: Any] }
        let steps = healed.compactMap { ($0["stepsMs"] as? [String: Any]).map { Set($0.keys) } }
        #expect(steps.contains(["numvfs", "program", "bind", "attach"]), "the failover NIC was re-attached: \(steps)")
        let text = try String(contentsOf: dir.appendingPathComponent("events.txt"), encoding: .utf8)
        #expect(text.contains("pf.lost") && text.contains("assignment.healed") && text.contains("vf.drift"), "\(text)")
    }

    @Test("/metrics on the socket and on the TCP address reports the heals and the drift; the TCP address serves nothing else")
    func metrics() async throws {
        let (dir, r) = try await results()
        #expect(r["metrics_socket_status"] == "200")
        #expect(r["metrics_tcp_status"] == "200")
        #expect(r["tcp_api_status"] == "404")
        for name in ["metrics-socket.txt", "metrics-tcp.txt"] {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            #expect(text.contains(#"sriovd_heals_total{result="healed"} 2"#), "\(name)")
            #expect(text.contains(#"sriovd_drift_total{setting="vlan",action="corrected"}"#), "\(name)")
            #expect(text.contains(#"sriovd_events_total{type="pf.lost"} 1"#), "\(name)")
            // igb has no ndo_get_vf_stats: its zeros are reported as unsupported, not as traffic.
            #expect(text.contains(#"driver="igb"} 0"#) && text.contains("sriovd_vf_stats_supported{"), "\(name)")
            #expect(!text.contains("sriovd_vf_rx_bytes_total{"), "\(name)")
        }
    }

    @Test("a burst of 200 concurrent requests: all answered, scrapes complete, the stream without gaps, no false drift")
    func burst() async throws {
        let (_, r) = try await results()
        #expect(r["burst_answers"] == "200")
        #expect(r["burst_ok"] == "200", "every request answered 2xx")
        #expect(r["burst_scrapes_complete"] == "40")
        #expect(r["burst_false_drift"] == "0", "sriovd's own changes are not drift")
    }
}
