import SRIOVCore

/// One device of an IOMMU group and the driver bound to it.
public struct IOMMUGroupMember: Sendable, Hashable, CustomStringConvertible {
    public var address: PCIAddress
    /// nil when no driver is bound.
    public var driver: String?

    public init(address: PCIAddress, driver: String?) {
        self.address = address
        self.driver = driver
    }

    /// Whether this member lets the rest of its group be given to vfio: the
    /// kernel lets a group's DMA be claimed only when every device in it is
    /// unbound or bound to a driver that leaves DMA to its owner
    /// (`driver_managed_dma`): vfio-pci and its vendor variants
    /// (mlx5-vfio-pci...), pci-stub, and pcieport on PCIe bridges.
    public var allowsVFIO: Bool {
        guard let driver else { return true }
        return driver == "vfio-pci" || driver.hasSuffix("-vfio-pci") || driver == "pci-stub" || driver == "pcieport"
    }

    public var description: String { "\(address) (\(driver ?? "no driver"))" }
}

/// Whether a device can be handed to vfio as far as its IOMMU group goes.
public enum IOMMUGroupViability: Sendable, Hashable, CustomStringConvertible {
    /// Every other member of the group is unbound or on a driver vfio allows.
    case viable(group: Int, members: [IOMMUGroupMember])
    /// The device has no `iommu_group`: the IOMMU is off or absent.
    case noGroup(PCIAddress)
    /// `blockers` are the other members bound to host drivers.
    case blocked(device: PCIAddress, group: Int, members: [IOMMUGroupMember], blockers: [IOMMUGroupMember])

    public var isViable: Bool {
        if case .viable = self { return true }
        return false
    }

    /// The group number, when the device has one.
    public var group: Int? {
        switch self {
        case .viable(let group, _), .blocked(_, let group, _, _): group
        case .noGroup: nil
        }
    }

    /// Why vfio cannot have the device, or nil when it can.
    public var refusal: ControlError? {
        switch self {
        case .viable: nil
        case .noGroup(let device): .noIOMMUGroup(device)
        case .blocked(let device, let group, _, let blockers):
            .groupNotViable(device: device, group: group, blockers: blockers)
        }
    }

    public var description: String {
        switch self {
        case .viable(let group, let members):
            "IOMMU group \(group) is viable: \(members.map(\.description).joined(separator: ", "))"
        default:
            refusal.map(\.description) ?? ""
        }
    }
}

extension SRIOVDeviceControl {
    /// The device's IOMMU group, its members and their drivers, and whether
    /// the group lets the device be bound to vfio-pci. The device itself may
    /// be on any driver (it is the one being rebound); members whose names
    /// are not PCI addresses are not judged.
    public func iommuGroupViability(of device: PCIAddress) -> IOMMUGroupViability {
        guard let group = sysfs.linkBasename(paths.device(device, "iommu_group")).flatMap({ Int($0) }) else {
            return .noGroup(device)
        }
        let names = (try? sysfs.listDirectory(paths.iommuGroupDevices(group))) ?? []
        let members = names.compactMap { try? PCIAddress.parse($0, field: "iommu_group") }.sorted().map {
            IOMMUGroupMember(address: $0, driver: sysfs.linkBasename(paths.device($0, "driver")))
        }
        let blockers = members.filter { $0.address != device && !$0.allowsVFIO }
        if blockers.isEmpty { return .viable(group: group, members: members) }
        return .blocked(device: device, group: group, members: members, blockers: blockers)
    }
}
