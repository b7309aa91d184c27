import Logging
import SRIOVCore

/// What the daemon asks of the host to describe it. The API depends on this,
/// not on the kernel, so it can be tested against a fake.
public protocol InventorySource: Sendable {
    func physicalFunctions() async throws -> [PhysicalFunction]
    /// nil when `address` is not an SR-IOV PF.
    func physicalFunction(_ address: PCIAddress) async throws -> PhysicalFunctionDetail?
    /// All VFs, or those of one PF (empty when `pf` is not a PF).
    func virtualFunctions(pf: PCIAddress?) async throws -> [VirtualFunction]
}

/// Names for PCI ids (pci.ids through libpci), cached: ids never change names.
public protocol PCINameResolving: Sendable {
    func names(vendorID: UInt16, deviceID: UInt16) -> (vendor: String?, device: String?)
}

/// Reads the host's SR-IOV inventory from sysfs (devices, drivers, VFs, IOMMU
/// groups), netlink (link state, MAC, per-VF settings) and pci.ids (names).
///
/// VF settings are asked for one PF at a time: the kernel's VF info costs
/// about a millisecond per VF under RTNL, so nothing here dumps every link's VFs.
public actor HostInventory: InventorySource {
    private let sysfs: SysfsTree
    private let links: LinkReader?
    private let linkError: String?
    private let names: any PCINameResolving
    private let logger: Logger

    public init(sysfs: SysfsTree = SysfsTree(), names: any PCINameResolving, logger: Logger) {
        self.sysfs = sysfs
        self.names = names
        self.logger = logger
        do {
            self.links = try LinkReader()
            self.linkError = nil
        } catch {
            self.links = nil
            self.linkError = "netlink unavailable: \(error)"
            logger.error("netlink unavailable; link and VF settings will be missing", metadata: ["error": "\(error)"])
        }
    }

    public func physicalFunctions() throws -> [PhysicalFunction] {
        try sysfs.physicalFunctionAddresses().map { describe($0).pf }
    }

    public func physicalFunction(_ address: PCIAddress) throws -> PhysicalFunctionDetail? {
        guard sysfs.fileExists(sysfs.devicePath(address) + "/sriov_totalvfs") else { return nil }
        let (pf, vfs) = describe(address)
        return PhysicalFunctionDetail(pf: pf, vfs: vfs)
    }

    public func virtualFunctions(pf: PCIAddress?) throws -> [VirtualFunction] {
        let pfs = try pf.map { [$0] } ?? sysfs.physicalFunctionAddresses()
        var result: [VirtualFunction] = []
        for address in pfs where sysfs.fileExists(sysfs.devicePath(address) + "/sriov_totalvfs") {
            result += describe(address).vfs
        }
        return result
    }

    /// One PF and its VFs, with one netlink request for the PF's VF settings.
    private func describe(_ address: PCIAddress) -> (pf: PhysicalFunction, vfs: [VirtualFunction]) {
        var warnings: [String] = []
        let vendorID = UInt16(truncatingIfNeeded: sysfs.hexAttribute(address, "vendor") ?? 0)
        let deviceID = UInt16(truncatingIfNeeded: sysfs.hexAttribute(address, "device") ?? 0)
        let (vendorName, deviceName) = names.names(vendorID: vendorID, deviceID: deviceID)
        var pf = PhysicalFunction(
            pciAddress: address, vendorID: vendorID, deviceID: deviceID,
            vendorName: vendorName, deviceName: deviceName,
            driver: sysfs.driver(address),
            numaNode: sysfs.numaNode(address),
            totalVFs: sysfs.intAttribute(address, "sriov_totalvfs") ?? 0,
            numVFs: sysfs.intAttribute(address, "sriov_numvfs") ?? 0,
            driversAutoprobe: sysfs.intAttribute(address, "sriov_drivers_autoprobe").map { $0 != 0 } ?? true,
            vfDeviceID: sysfs.hexAttribute(address, "sriov_vf_device").map { UInt16(truncatingIfNeeded: $0) })

        var vfSettings: [Int: VFSettings] = [:]
        let netdevs = sysfs.netdevs(address)
        if netdevs.count > 1 {
            warnings.append("the PF has \(netdevs.count) network interfaces (\(netdevs.joined(separator: ", "))); using \(netdevs[0])")
        }
        if let netdev = netdevs.first, let ifindex = sysfs.ifindex(address, netdev: netdev) {
            pf.netdev = netdev
            pf.ifindex = ifindex
            if let links {
                do {
                    let link = try links.link(ifindex: ifindex)
                    pf.netdev = link.name
                    pf.mac = link.mac
                    pf.adminUp = link.isAdminUp
                    pf.operState = link.operState
                    pf.linkUp = link.operState.map { $0 == "up" }
                    pf.mtu = link.mtu
                    for vf in link.vfs { vfSettings[vf.index] = vf.settings }
                } catch {
                    warnings.append("could not read link \(netdev) (ifindex \(ifindex)): \(error)")
                }
            } else if let linkError {
                warnings.append(linkError)
            }
        } else if pf.driver != nil {
            warnings.append("the PF's driver has no network interface; VF settings cannot be read")
        } else {
            warnings.append("no driver is bound to the PF; VF settings cannot be read")
        }
        pf.warnings = warnings

        let vfs = sysfs.virtualFunctions(of: address).map { (index, vfAddress) in
            VirtualFunction(
                index: index, pciAddress: vfAddress, pf: address,
                driver: sysfs.driver(vfAddress),
                netdev: sysfs.netdevs(vfAddress).first,
                iommuGroup: sysfs.iommuGroup(vfAddress),
                numaNode: sysfs.numaNode(vfAddress),
                settings: vfSettings[index] ?? VFSettings())
        }
        return (pf, vfs)
    }
}
