import SRIOVCore

/// Names for PCI ids (pci.ids through libpci), cached: ids never change names.
public protocol PCINameResolving: Sendable {
    func names(vendorID: UInt16, deviceID: UInt16) -> (vendor: String?, device: String?)
}

/// The host's SR-IOV inventory from sysfs (devices, drivers, VFs, IOMMU
/// groups), netlink (link state, MAC, per-VF settings) and pci.ids (names).
/// Every listing is read on `KernelThreads`: sysfs and netlink reads
/// block in the kernel.
///
/// VF settings are asked for one PF at a time: the kernel's VF info costs
/// about a millisecond per VF under RTNL, so nothing here dumps every link's VFs.
extension KernelHost: InventorySource {
    public func physicalFunctions() async throws -> [PhysicalFunction] {
        try await blocking { [self] in
            try self.sysfs.physicalFunctionAddresses().map { self.describePF($0).pf }
        }
    }

    public func physicalFunction(_ address: PCIAddress) async throws -> PhysicalFunctionDetail? {
        await blocking { [self] in
            guard self.sysfs.fileExists(self.sysfs.devicePath(address) + "/sriov_totalvfs") else { return nil }
            let (pf, vfs) = self.describePF(address)
            return PhysicalFunctionDetail(pf: pf, vfs: vfs)
        }
    }

    public func virtualFunctions(pf: PCIAddress?) async throws -> [VirtualFunction] {
        try await blocking { [self] in
            let pfs = try pf.map { [$0] } ?? self.sysfs.physicalFunctionAddresses()
            var result: [VirtualFunction] = []
            for address in pfs where self.sysfs.fileExists(self.sysfs.devicePath(address) + "/sriov_totalvfs") {
                result += self.describePF(address).vfs
            }
            return result
        }
    }

    /// One PF and its VFs, with one netlink request for the PF's VF settings
    /// (blocking: call it on the kernel threads).
    private func describePF(_ address: PCIAddress) -> (pf: PhysicalFunction, vfs: [VirtualFunction]) {
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
            if let readerError {
                warnings.append(readerError)
            } else {
                do {
                    let link = try readLink(ifindex: ifindex)
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
