import Foundation
import Testing

@Suite(
    "The QMP adapter plugs a real igb VF into a QEMU process as vfio-pci (SR-IOV test VM; needs root, QEMU, virtme-ng)",
    .serialized, .enabled(if: Rig.shouldRun, "SR-IOV test VM unavailable: \(Rig.unavailableReason ?? "")"))
struct QMPVFIORigTests {
    static let scenario = RigScenario(name: "qmp-vfio", batch: .onePF)

    @Test("device_add refused by the IOMMU: a message that says what to do, and the assignment undone")
    func refused() async throws {
        let (_, r) = try await Self.scenario.keyValues()
        #expect(r["assign_refused_status"] == "500")
        #expect(r["assign_refused_says"] == "remapping")
        #expect(r["after_refused_status"] == "404")
    }

    @Test("assigned with a qmp failover: device_add vfio-pci of the VF, listed by query-pci; the same request leaves it")
    func plugged() async throws {
        let (_, r) = try await Self.scenario.keyValues()
        #expect(r["assign_status"] == "201")
        #expect(r["vf_driver"] == "vfio-pci")
        #expect(r["listed"] == "8086:10ca", "QEMU lists the 82576 VF under the id sriovd gave it")
        #expect(r["assign_again_status"] == "200")
    }

    @Test("the removal times out on a paused VM after unplug_timeout_seconds and says so; with QEMU gone the release completes")
    func removal() async throws {
        let (_, r) = try await Self.scenario.keyValues()
        #expect(r["release_paused_status"] == "500")
        #expect(r["release_paused_says_paused"] == "yes")
        let waited = Int(r["release_paused_seconds"] ?? "") ?? 0
        #expect(waited >= 8 && waited < 20, "the configured unplug deadline (8 s, not the default 20) was waited for: \(waited) s")
        #expect(r["still_listed"] == "yes")
        #expect(r["release_gone_status"] == "200")
        #expect(r["vf_driver_after"] == "none")
        #expect(r["done"] == "yes")
    }
}
