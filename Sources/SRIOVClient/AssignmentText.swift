import SRIOVCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How sriovctl shows assignments to a person: a table of them, one in
/// detail, and one line saying what an assign or release did. Scripts use
/// the JSON instead.
public enum AssignmentText {
    public typealias Assignment = SRIOVClient.Assignment

    /// VM, NIC, VF, PF, POOL, DRIVER, DEVICE, STATE, VLAN, MAC: one row per
    /// assignment, by VM then NIC. VLAN and MAC are the ones asked for.
    public static func assignments(_ assignments: [Assignment]) -> String {
        var table = TextTable([
            .init("VM"), .init("NIC"), .init("VF"), .init("PF"), .init("POOL"), .init("DRIVER"), .init("DEVICE"),
            .init("STATE"), .init("VLAN"), .init("MAC"),
        ])
        for a in assignments.sorted(by: { ($0.vm, $0.nic) < ($1.vm, $1.nic) }) {
            table.append([
                a.vm, a.nic, a.vf.description, a.pf.description, a.pool, a.driver.rawValue, a.device,
                a.state.rawValue, vlan(a.config), a.config.mac?.description,
            ])
        }
        return table.rendered()
    }

    /// One assignment's fields, one per line. Of the VF settings, only the
    /// ones asked for are listed: the others are left as the VF had them.
    public static func detail(_ a: Assignment) -> String {
        var fields = TextTable([.init("FIELD"), .init("VALUE")], showsTitles: false)
        fields.append(["VM", a.vm])
        fields.append(["NIC", a.nic])
        fields.append(["State", a.reason.map { "\(a.state.rawValue): \($0)" } ?? a.state.rawValue])
        fields.append(["VF", "\(a.vf) (index \(a.vfIndex))"])
        fields.append(["PF", a.pf.description])
        fields.append(["Pool", a.pool])
        fields.append(["Driver", a.previousDriver.map { "\(a.driver) (before: \($0))" } ?? a.driver.rawValue])
        fields.append([a.driver == .vfio ? "VFIO device" : "Netdev", a.device])
        if a.driver == .vfio, let netdev = a.netdev { fields.append(["Netdev", netdev]) }
        fields.append(["IOMMU group", a.iommuGroup.map(String.init)])
        fields.append(["NUMA node", a.numaNode.map(String.init)])
        let settings = settingRows(a.config)
        if settings.isEmpty {
            fields.append(["Settings", "none asked for: the VF keeps its own"])
        }
        for (name, value) in settings { fields.append([name, value]) }
        fields.append(["Created", timestamp(a.createdAt)])
        fields.append(["Updated", timestamp(a.updatedAt)])
        return fields.rendered()
    }

    /// What `sriovctl assign` did, in one line naming what the VM is given:
    /// "Assigned VF 0000:01:10.0 (VF 0 of 0000:01:00.0) to vm1/net0: vfio-pci, /dev/vfio/12".
    public static func headline(_ outcome: SRIOVClient.AssignOutcome) -> String {
        let a = outcome.assignment
        switch outcome {
        case .created:
            return "Assigned \(vfName(a)) to \(a.vm)/\(a.nic): \(handOver(a))"
        case .existing:
            return "\(a.vm)/\(a.nic) already has \(vfName(a)) from this same request; nothing was changed: "
                + handOver(a)
        }
    }

    /// The headline, then the assignment in detail.
    public static func assigned(_ outcome: SRIOVClient.AssignOutcome) -> String {
        headline(outcome) + "\n\n" + detail(outcome.assignment)
    }

    /// What `sriovctl release` did: which VF is free again, and with which driver.
    public static func released(_ a: Assignment) -> String {
        let driver = a.previousDriver.map { "it is back on \($0)" } ?? "it has no driver, as before"
        return "Released \(vfName(a)) from \(a.vm)/\(a.nic): its settings are restored and \(driver).\n"
    }

    /// The results of a change, then the assignment afterwards.
    public static func changed(_ report: SRIOVClient.AssignmentChangeReport) -> String {
        let results =
            report.results.isEmpty
            ? "sriovd reported no settings.\n" : ResultsText.settingResults(report.results)
        return results + "\n" + detail(report.assignment)
    }

    /// "VF 0000:01:10.0 (VF 0 of 0000:01:00.0)".
    static func vfName(_ a: Assignment) -> String { "VF \(a.vf) (VF \(a.vfIndex) of \(a.pf))" }

    /// The driver and what the VM uses: "vfio-pci, /dev/vfio/12", "host driver, netdev enp1s0v0".
    static func handOver(_ a: Assignment) -> String {
        switch a.driver {
        case .vfio: "vfio-pci, " + (a.vfioDevice ?? "no /dev/vfio device found")
        case .host: "host driver, " + (a.netdev.map { "netdev \($0)" } ?? "no netdev found")
        default: a.driver.rawValue + (a.device.map { ", \($0)" } ?? "")
        }
    }

    /// The VLAN asked for, with its protocol when that is not plain 802.1Q.
    static func vlan(_ config: VFConfig) -> String? {
        guard let vlan = config.vlan else { return nil }
        guard let proto = config.vlanProto, proto != .dot1Q else { return vlan.description }
        return "\(vlan) (\(proto))"
    }

    /// The settings asked for, as (name, value), in `--help`'s order.
    static func settingRows(_ c: VFConfig) -> [(String, String)] {
        VFSettingField.all.compactMap { field in field.displayText(in: c).map { (field.label, $0) } }
    }

    /// ISO 8601 in UTC, as the daemon writes it: "2025-03-01T12:00:00Z".
    static func timestamp(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }
}
