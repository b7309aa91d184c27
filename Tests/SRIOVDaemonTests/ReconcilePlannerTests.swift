import SRIOVCore
import SRIOVHost
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

private typealias F = ReconcileFixture

private let pfA = F.address("0000:01:00.0")
private let pfB = F.address("0000:02:00.0")

private func settingsChanges(_ plan: ReconcilePlan) -> [Int: VFConfig] {
    var out: [Int: VFConfig] = [:]
    for change in plan.changes {
        if case .configureVF(let config, _) = change.action, let vf = change.vf { out[vf.index] = config }
    }
    return out
}

private func binds(_ plan: ReconcilePlan) -> [Int: VFDriverChoice] {
    var out: [Int: VFDriverChoice] = [:]
    for change in plan.changes {
        if case .bindVF(let choice, _) = change.action, let vf = change.vf { out[vf.index] = choice }
    }
    return out
}

@Suite("Reconcile planner")
struct ReconcilePlannerTests {
    @Test("vf_defaults apply to every VF; a [[vf]] entry overrides them key by key and adds its MAC")
    func defaultsAndVFEntryOverride() throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            vf_defaults = { spoof_check = false, trust = false, link_state = "enable" }

            [[vf]]
            pf = "0000:01:00.0"
            index = 1
            trust = true
            rss_query = true
            mac = "52:54:00:00:00:01"
            """)
        let inventory = [F.pf("0000:01:00.0", vfs: 3)]
        let plan = ReconcilePlanner(configuration: config).vfPhase(inventory, inUse: [])
        let mac = try MACAddress.parse("52:54:00:00:00:01", field: "mac")
        // Fresh VFs have spoof check on, trust off, link auto: trust matches for 0 and 2.
        #expect(settingsChanges(plan) == [
            0: VFConfig(spoofCheck: false, linkState: .enable),
            1: VFConfig(mac: mac, spoofCheck: false, trust: true, linkState: .enable, rssQuery: true),
            2: VFConfig(spoofCheck: false, linkState: .enable),
        ])
        #expect(plan.notices.isEmpty)
    }

    @Test("settings the file leaves out are not planned, whatever the VF has")
    func unsetFieldsUntouched() throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            vf_defaults = { trust = true }
            """)
        var odd = F.freshSettings
        odd.vlan = try VLANID(42)
        odd.spoofCheck = false
        odd.linkState = .disable
        odd.maxTxRate = 100
        let inventory = [F.pf("0000:01:00.0", vfs: 2, settings: odd)]
        let plan = ReconcilePlanner(configuration: config).vfPhase(inventory, inUse: [])
        #expect(settingsChanges(plan) == [0: VFConfig(trust: true), 1: VFConfig(trust: true)])
        #expect(binds(plan).isEmpty)
    }

    @Test("a MAC in vf_defaults is never applied: each VF needs its own")
    func neverMACFromDefaults() throws {
        let mac = try MACAddress.parse("52:54:00:aa:bb:cc", field: "mac")
        let config = SRIOVConfiguration(pfs: [
            .init(match: .pciAddress(pfA), vfDefaults: VFConfig(mac: mac, trust: true))
        ])
        let plan = ReconcilePlanner(configuration: config).vfPhase([F.pf("0000:01:00.0", vfs: 2)], inUse: [])
        #expect(settingsChanges(plan) == [0: VFConfig(trust: true), 1: VFConfig(trust: true)])
    }

    @Test("a [[vf]] VLAN tag replaces the defaults' whole tag: vlan = 0 does not keep the defaults' qos")
    func vlanTagTakenWholeFromEntry() throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            vf_defaults = { vlan = 100, qos = 3 }

            [[vf]]
            pf = "0000:01:00.0"
            index = 1
            vlan = 0
            """)
        let plan = ReconcilePlanner(configuration: config).vfPhase([F.pf("0000:01:00.0", vfs: 2)], inUse: [])
        // VF 1 is untagged already; VF 0 gets the defaults' tag.
        #expect(settingsChanges(plan) == [0: VFConfig(vlan: try VLANID(100), qos: try VLANQoS(3))])
        #expect(plan.notices.isEmpty)
    }

    @Test("order: autoprobe before the count in the PF phase; settings before the driver, VF by VF, PF by PF")
    func ordering() throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:02:00.0"
            num_vfs = 2
            drivers_autoprobe = false
            vf_driver = "vfio-pci"
            vf_defaults = { trust = true }

            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 4
            drivers_autoprobe = false
            """)
        let planner = ReconcilePlanner(configuration: config)
        let before = [F.pf("0000:01:00.0"), F.pf("0000:02:00.0")]
        let pfPlan = planner.pfPhase(before)
        #expect(pfPlan.changes.map(\.action) == [
            .setDriversAutoprobe(false, current: true), .setNumVFs(4, current: 0),
            .setDriversAutoprobe(false, current: true), .setNumVFs(2, current: 0),
        ])
        #expect(pfPlan.changes.map(\.pf) == [pfA, pfA, pfB, pfB])

        let after = [F.pf("0000:01:00.0", autoprobe: false, vfs: 4), F.pf("0000:02:00.0", autoprobe: false, vfs: 2, driver: nil)]
        let vfPlan = planner.vfPhase(after, inUse: [])
        #expect(vfPlan.changes.map { "\($0.op) \($0.vf!.index)" } == [
            "vf.configure 0", "vf.bind 0", "vf.configure 1", "vf.bind 1",
        ])
        #expect(vfPlan.changes.allSatisfy { $0.pf == pfB })
        #expect(planner.pfPhase(after).isEmpty)
    }

    @Test("an entry that selects no PF here is a warning, not an error; the others are planned")
    func missingPFIsReported() throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:09:00.0"
            num_vfs = 2

            [[pf]]
            vendor_device = "15b3:1017"
            num_vfs = 2

            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 1
            """)
        let plan = ReconcilePlanner(configuration: config).pfPhase([F.pf("0000:01:00.0")])
        #expect(plan.changes.map(\.action) == [.setNumVFs(1, current: 0)])
        #expect(plan.notices.map(\.kind) == [
            .pfNotFound(entry: 0, match: .pciAddress(F.address("0000:09:00.0"))),
            .pfNotFound(entry: 1, match: .ids(vendorID: 0x15b3, deviceID: 0x1017, index: nil)),
        ])
        #expect(plan.notices.allSatisfy { $0.isWarning })
    }

    @Test("a PF selected by a pci entry and a vendor_device entry is a conflict: nothing is planned for it")
    func duplicateMatchIsAConflict() throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 2
            vf_defaults = { trust = true }

            [[pf]]
            vendor_device = "8086:10c9"
            device_index = 0
            num_vfs = 3
            drivers_autoprobe = false
            vf_defaults = { trust = true }

            [[pf]]
            pci = "0000:02:00.0"
            num_vfs = 1
            """)
        let planner = ReconcilePlanner(configuration: config)
        let inventory = [F.pf("0000:01:00.0", vfs: 1), F.pf("0000:02:00.0", deviceID: 0x1533, vfs: 0)]
        let pfPlan = planner.pfPhase(inventory)
        #expect(pfPlan.changes.map(\.pf) == [pfB])
        #expect(pfPlan.notices.map(\.kind) == [.conflictingEntries(pf: pfA, entries: [0, 1])])
        #expect(planner.vfPhase(inventory, inUse: []).changes.isEmpty)
    }

    @Test("VFs configured through the API are left alone entirely, [[vf]] entries included, and reported")
    func inUseVFsLeftAlone() throws {
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
        let inventory = [F.pf("0000:01:00.0", vfs: 3)]
        let busy = F.vfAddress(1, of: pfA)
        let plan = ReconcilePlanner(configuration: config).vfPhase(inventory, inUse: [busy])
        #expect(Set(plan.changes.compactMap { $0.vf?.index }) == [0, 2])
        #expect(plan.notices.map(\.kind) == [.vfInUse(VFLocation(vf: busy, pf: pfA, index: 1))])
        #expect(plan.notices.allSatisfy { !$0.isWarning })
    }

    @Test("a host that matches the file gives empty plans and no notices")
    func nothingToDo() throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 2
            drivers_autoprobe = true
            vf_driver = "host"
            vf_defaults = { spoof_check = true, trust = false, link_state = "auto", vlan = 0 }
            """)
        let inventory = [F.pf("0000:01:00.0", vfs: 2)]
        let planner = ReconcilePlanner(configuration: config)
        #expect(planner.pfPhase(inventory) == ReconcilePlan(phase: .pf))
        #expect(planner.vfPhase(inventory, inUse: []) == ReconcilePlan(phase: .vf))
    }

    @Test("while a PF lacks its declared count its VFs wait: they are planned after the count changes")
    func vfPhaseWaitsForTheCount() throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 4
            vf_defaults = { trust = true }
            """)
        let plan = ReconcilePlanner(configuration: config).vfPhase([F.pf("0000:01:00.0", vfs: 2)], inUse: [])
        #expect(plan.changes.isEmpty)
        #expect(plan.notices.map(\.kind) == [.waitingForVFCount(pf: pfA, numVFs: 4, current: 2)])
    }

    @Test("num_vfs above sriov_totalvfs is reported and not planned")
    func countAboveTotal() throws {
        let config = try F.configuration("[[pf]]\npci = \"0000:01:00.0\"\nnum_vfs = 8\n")
        let plan = ReconcilePlanner(configuration: config).pfPhase([F.pf("0000:01:00.0", totalVFs: 7)])
        #expect(plan.changes.isEmpty)
        #expect(plan.notices.map(\.kind) == [.numVFsAboveTotal(pf: pfA, entry: 0, numVFs: 8, totalVFs: 7)])
    }

    @Test("a VF on vfio-pci is not moved to another driver automatically: a VM may hold it")
    func vfioBoundVFNotRebound() throws {
        let config = try F.configuration("[[pf]]\npci = \"0000:01:00.0\"\nvf_driver = \"host\"\n")
        var inventory = F.pf("0000:01:00.0", vfs: 2, driver: nil)
        inventory.vfs[0].driver = "vfio-pci"
        let plan = ReconcilePlanner(configuration: config).vfPhase([inventory], inUse: [])
        #expect(binds(plan) == [1: .host])
        #expect(plan.notices.map(\.kind) == [.vfHeldByVFIO(VFLocation(vf: F.vfAddress(0, of: pfA), pf: pfA, index: 0), wanted: .host)])
    }

    @Test("a value the driver does not report is planned: it cannot be confirmed")
    func unreportedValueIsPlanned() throws {
        let config = try F.configuration("[[pf]]\npci = \"0000:01:00.0\"\nvf_defaults = { trust = false }\n")
        var settings = F.freshSettings
        settings.trust = nil
        let plan = ReconcilePlanner(configuration: config).vfPhase([F.pf("0000:01:00.0", vfs: 1, settings: settings)], inUse: [])
        #expect(settingsChanges(plan) == [0: VFConfig(trust: false)])
        #expect(plan.changes.map(\.description) == ["0000:01:00.0 VF 0 (0000:01:10.0): set trust false (now trust unknown)"])
    }

    @Test("changes describe themselves with the file's keys and the current value")
    func descriptions() throws {
        let vf = VFLocation(vf: F.vfAddress(2, of: pfA), pf: pfA, index: 2)
        #expect(
            ReconcileChange(pf: pfA, action: .setNumVFs(4, current: 2)).description
                == "0000:01:00.0: set num_vfs to 4 (now 2); the kernel needs 0 first, so its 2 VFs are removed and created anew")
        #expect(
            ReconcileChange(pf: pfA, vf: vf, action: .configureVF(VFConfig(vlan: try VLANID(100), qos: try VLANQoS(3), trust: true), current: F.freshSettings)).description
                == "0000:01:00.0 VF 2 (0000:01:10.4): set vlan 100 qos 3 (now vlan 0), trust true (now trust false)")
        #expect(
            ReconcileChange(pf: pfA, vf: vf, action: .bindVF(.vfio, current: "igbvf")).description
                == "0000:01:00.0 VF 2 (0000:01:10.4): bind to vfio-pci (now igbvf)")
    }

    @Test("the preview plans both phases and renders them, with the count-pending PF called out")
    func previewText() async throws {
        let config = try F.configuration(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 3
            vf_defaults = { trust = true }

            [[pf]]
            pci = "0000:02:00.0"
            vf_defaults = { trust = true }
            """)
        let host = FakeHost([
            .init(address: pfA, vfs: [0: .init(driver: "igbvf")]),
            .init(address: pfB, vfs: [0: .init(driver: "igbvf")]),
        ])
        let preview = try await ReconcilePreview.make(configuration: config, inventory: host, inUse: [])
        #expect(preview.hasChanges)
        #expect(preview.pfPhase.changes.map(\.action) == [.setNumVFs(3, current: 1)])
        #expect(preview.vfPhase.changes.map(\.pf) == [pfB])
        let text = preview.text(configPath: "/etc/sriovd/sriovd.toml")
        #expect(text.contains("  ~ 0000:01:00.0: set num_vfs to 3 (now 1)"))
        #expect(text.contains("  ~ 0000:02:00.0 VF 0 (0000:02:10.0): set trust true (now trust false)"))
        #expect(text.contains("The VF phase of 0000:01:00.0 is planned after its VF count changes"))
        #expect(text.hasSuffix("2 changes pending. sriovd applies them at start, on SIGHUP, and every daemon.reconcile_interval_seconds.\n"))
        #expect(host.operations.isEmpty)
    }
}
