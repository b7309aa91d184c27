import SRIOVCore

/// How sriovctl shows the daemon's inventory to a person: tables of PFs and
/// VFs, a PF's details, the daemon's health. Scripts use the JSON instead.
public enum InventoryText {
    /// One row per PF, in PCI address order.
    public static func physicalFunctions(_ pfs: [PhysicalFunction]) -> String {
        var table = TextTable([
            .init("PCI"), .init("DRIVER"), .init("NETDEV"), .init("VENDOR:DEVICE"), .init("NAME"), .init("LINK"),
            .init("NUMA"), .init("VFS"), .init("AUTOPROBE"),
        ])
        for pf in pfs.sorted(by: { $0.pciAddress < $1.pciAddress }) {
            table.append([
                pf.pciAddress.description, pf.driver, pf.netdev, vendorDevice(pf.vendorID, pf.deviceID),
                shortened(name(pf), to: maxNameWidth), link(pf), pf.numaNode.map(String.init),
                "\(pf.numVFs)/\(pf.totalVFs)", yesNo(pf.driversAutoprobe),
            ])
        }
        return table.rendered()
    }

    /// One row per VF, in PF then VF order. `showingPF: false` leaves out the
    /// PF column, for a listing under its PF.
    public static func virtualFunctions(_ vfs: [VirtualFunction], showingPF: Bool = true) -> String {
        var columns: [TextTable.Column] = [
            .init("VF"), .init("PCI"), .init("DRIVER"), .init("NETDEV"), .init("MAC"), .init("VLAN"), .init("QOS"),
            .init("SPOOFCHK"), .init("TRUST"), .init("LINK"), .init("TX RATE"), .init("IOMMU"),
        ]
        if showingPF { columns.insert(.init("PF"), at: 0) }
        var table = TextTable(columns)
        for vf in vfs.sorted(by: { ($0.pf, $0.index) < ($1.pf, $1.index) }) {
            let s = vf.settings
            var row: [String?] = [
                String(vf.index), vf.pciAddress.description, vf.driver, vf.netdev, s.mac?.description, vlan(s),
                s.qos?.description, s.spoofCheck.map(onOff), s.trust.map(onOff), s.linkState?.description,
                txRate(min: s.minTxRate, max: s.maxTxRate), vf.iommuGroup.map(String.init),
            ]
            if showingPF { row.insert(vf.pf.description, at: 0) }
            table.append(row)
        }
        return table.rendered()
    }

    /// A PF's fields, one per line, then its VFs.
    public static func physicalFunctionDetail(_ detail: PhysicalFunctionDetail) -> String {
        let pf = detail.pf
        var fields = TextTable([.init("FIELD"), .init("VALUE")], showsTitles: false)
        fields.append(["PCI address", pf.pciAddress.description])
        let device = [vendorDevice(pf.vendorID, pf.deviceID), name(pf)].compactMap { $0 }.joined(separator: " ")
        fields.append(["Device", device])
        fields.append(["Driver", pf.driver])
        fields.append(["Netdev", pf.netdev.map { netdev in pf.ifindex.map { "\(netdev) (ifindex \($0))" } ?? netdev }])
        fields.append(["MAC", pf.mac?.description])
        let operState = pf.operState.map { "(operstate \($0))" }
        fields.append(["Link", [link(pf), operState].compactMap { $0 }.joined(separator: " ")])
        fields.append(["MTU", pf.mtu.map(String.init)])
        fields.append(["NUMA node", pf.numaNode.map(String.init)])
        fields.append(["VFs", "\(pf.numVFs) of \(pf.totalVFs)"])
        fields.append(["VF device", pf.vfDeviceID.map { hex($0) }])
        fields.append(["Autoprobe", yesNo(pf.driversAutoprobe)])
        for warning in pf.warnings { fields.append(["Warning", warning]) }
        var text = fields.rendered()
        text += "\n"
        text += detail.vfs.isEmpty ? "No VFs are enabled.\n" : virtualFunctions(detail.vfs, showingPF: false)
        return text
    }

    public static func health(_ health: SRIOVClient.Health) -> String {
        var fields = TextTable([.init("FIELD"), .init("VALUE")], showsTitles: false)
        fields.append(["Status", health.status])
        fields.append(["Version", health.version])
        fields.append(["PFs", String(health.pfCount)])
        return fields.rendered()
    }

    /// The widest NAME a PF table shows; pci.ids names run to 80 characters.
    static let maxNameWidth = 44

    /// Vendor and device name from pci.ids, as lspci shows them.
    static func name(_ pf: PhysicalFunction) -> String? {
        let name = [pf.vendorName, pf.deviceName].compactMap { $0 }.joined(separator: " ")
        return name.isEmpty ? nil : name
    }

    /// `text` cut at a word to fit `width`, with " ..." saying so.
    static func shortened(_ text: String?, to width: Int) -> String? {
        guard let text, text.count > width else { return text }
        var kept = text.prefix(width - 4)
        if let space = kept.lastIndex(of: " ") { kept = kept[..<space] }
        return kept + " ..."
    }

    static func vendorDevice(_ vendor: UInt16, _ device: UInt16) -> String { "\(hex(vendor)):\(hex(device))" }

    /// Four lower-case hex digits, as lspci writes ids.
    static func hex(_ id: UInt16) -> String {
        let digits = String(id, radix: 16)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }

    /// "admin-down" when the PF is down by configuration, else the carrier state.
    static func link(_ pf: PhysicalFunction) -> String? {
        if pf.adminUp == false { return "admin-down" }
        return pf.linkUp.map { $0 ? "up" : "down" }
    }

    /// The VLAN id, with its protocol when that is not plain 802.1Q.
    static func vlan(_ settings: VFSettings) -> String? {
        guard let vlan = settings.vlan else { return nil }
        guard let proto = settings.vlanProto, proto != .dot1Q else { return vlan.description }
        return "\(vlan) (\(proto))"
    }

    /// "min/max" in Mbit/s (0 is no limit), "-" for a side the driver did not report.
    static func txRate(min: UInt32?, max: UInt32?) -> String? {
        guard min != nil || max != nil else { return nil }
        return "\(min.map(String.init) ?? TextTable.missing)/\(max.map(String.init) ?? TextTable.missing)"
    }

    static func onOff(_ value: Bool) -> String { value ? "on" : "off" }
    static func yesNo(_ value: Bool) -> String { value ? "yes" : "no" }
}
