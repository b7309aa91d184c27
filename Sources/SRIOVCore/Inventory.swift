/// An SR-IOV physical function: a PCI device with `sriov_totalvfs`.
public struct PhysicalFunction: Hashable, Sendable, Codable {
    public var pciAddress: PCIAddress
    public var vendorID: UInt16
    public var deviceID: UInt16
    /// From pci.ids, when it knows the device.
    public var vendorName: String?
    public var deviceName: String?
    /// The bound kernel driver, or nil when none is bound.
    public var driver: String?
    /// The PF's network interface, when its driver made one. Names change (udev,
    /// operators); sriovd resolves them from the PCI address each time.
    public var netdev: String?
    public var ifindex: Int32?
    public var mac: MACAddress?
    /// Administratively up (IFF_UP).
    public var adminUp: Bool?
    /// Carrier/operational state is up.
    public var linkUp: Bool?
    public var operState: String?
    public var mtu: UInt32?
    /// nil when the platform has no NUMA information (-1 in sysfs).
    public var numaNode: Int?
    public var totalVFs: Int
    public var numVFs: Int
    public var driversAutoprobe: Bool
    /// The VF device id the PF advertises (sriov_vf_device), when present.
    public var vfDeviceID: UInt16?
    /// Problems met while reading this PF (e.g. netlink unavailable); the
    /// other fields are still as complete as they could be made.
    public var warnings: [String]

    public init(
        pciAddress: PCIAddress, vendorID: UInt16, deviceID: UInt16, vendorName: String? = nil,
        deviceName: String? = nil, driver: String? = nil, netdev: String? = nil, ifindex: Int32? = nil,
        mac: MACAddress? = nil, adminUp: Bool? = nil, linkUp: Bool? = nil, operState: String? = nil,
        mtu: UInt32? = nil, numaNode: Int? = nil, totalVFs: Int, numVFs: Int, driversAutoprobe: Bool,
        vfDeviceID: UInt16? = nil, warnings: [String] = []
    ) {
        self.pciAddress = pciAddress
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.vendorName = vendorName
        self.deviceName = deviceName
        self.driver = driver
        self.netdev = netdev
        self.ifindex = ifindex
        self.mac = mac
        self.adminUp = adminUp
        self.linkUp = linkUp
        self.operState = operState
        self.mtu = mtu
        self.numaNode = numaNode
        self.totalVFs = totalVFs
        self.numVFs = numVFs
        self.driversAutoprobe = driversAutoprobe
        self.vfDeviceID = vfDeviceID
        self.warnings = warnings
    }
}

/// A virtual function of a PF, with its settings as the PF reports them.
public struct VirtualFunction: Hashable, Sendable {
    /// The VF number on its PF (virtfnN).
    public var index: Int
    public var pciAddress: PCIAddress
    /// The PF's PCI address.
    public var pf: PCIAddress
    public var driver: String?
    /// The VF's own netdev, when a host driver (igbvf, iavf...) is bound.
    public var netdev: String?
    public var iommuGroup: Int?
    public var numaNode: Int?
    public var settings: VFSettings

    public init(
        index: Int, pciAddress: PCIAddress, pf: PCIAddress, driver: String? = nil, netdev: String? = nil,
        iommuGroup: Int? = nil, numaNode: Int? = nil, settings: VFSettings = VFSettings()
    ) {
        self.index = index
        self.pciAddress = pciAddress
        self.pf = pf
        self.driver = driver
        self.netdev = netdev
        self.iommuGroup = iommuGroup
        self.numaNode = numaNode
        self.settings = settings
    }
}

extension VirtualFunction: Codable {
    // The JSON is flat: a VF's settings are fields of the VF.
    enum CodingKeys: String, CodingKey {
        case index, pciAddress, pf, driver, netdev, iommuGroup, numaNode
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decode(Int.self, forKey: .index)
        pciAddress = try c.decode(PCIAddress.self, forKey: .pciAddress)
        pf = try c.decode(PCIAddress.self, forKey: .pf)
        driver = try c.decodeIfPresent(String.self, forKey: .driver)
        netdev = try c.decodeIfPresent(String.self, forKey: .netdev)
        iommuGroup = try c.decodeIfPresent(Int.self, forKey: .iommuGroup)
        numaNode = try c.decodeIfPresent(Int.self, forKey: .numaNode)
        settings = try VFSettings(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(pciAddress, forKey: .pciAddress)
        try c.encode(pf, forKey: .pf)
        try c.encode(driver, forKey: .driver)
        try c.encode(netdev, forKey: .netdev)
        try c.encode(iommuGroup, forKey: .iommuGroup)
        try c.encode(numaNode, forKey: .numaNode)
        try settings.encode(to: encoder)
    }
}

/// A PF with its VFs, as `GET /v1/pfs/{pciAddress}` returns it.
public struct PhysicalFunctionDetail: Hashable, Sendable, Codable {
    public var pf: PhysicalFunction
    public var vfs: [VirtualFunction]

    public init(pf: PhysicalFunction, vfs: [VirtualFunction]) {
        self.pf = pf
        self.vfs = vfs
    }
}
