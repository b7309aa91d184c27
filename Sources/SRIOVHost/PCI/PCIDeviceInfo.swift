import SRIOVCore

/// One PCI function as libpci reports it: identity, class, NUMA node and the
/// names pci.ids gives its ids.
public struct PCIDeviceInfo: Sendable, Hashable {
    public var address: PCIAddress
    public var vendorID: UInt16
    public var deviceID: UInt16
    /// Base class, subclass and programming interface: `0x020000` is an
    /// Ethernet controller.
    public var classCode: UInt32
    /// nil when the platform reports no NUMA node (-1 in sysfs).
    public var numaNode: Int?
    /// nil when pci.ids does not know the id (or names were not looked up).
    public var vendorName: String?
    public var deviceName: String?

    public init(
        address: PCIAddress, vendorID: UInt16, deviceID: UInt16, classCode: UInt32,
        numaNode: Int? = nil, vendorName: String? = nil, deviceName: String? = nil
    ) {
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.numaNode = numaNode
        self.vendorName = vendorName
        self.deviceName = deviceName
    }

    /// The base class: `0x02` is a network controller.
    public var baseClass: UInt8 { UInt8(truncatingIfNeeded: classCode >> 16) }
}
