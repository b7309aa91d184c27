import SRIOVCore

// The kernel boundary as the rest of sriovd sees it: a few narrow protocols,
// each named for what it does. `KernelHost` implements them all against
// sysfs, rtnetlink and libnl; `FakeHost` (SRIOVHostTesting) implements them
// in memory for the tests, and the contract suite runs the same cases
// against both so the fake cannot drift from the kernel. Every call may
// block in the kernel: implementations run them off the cooperative pool.

/// Where a VF sits: its PF and its index there.
public struct VFLocation: Sendable, Hashable {
    public var vf: PCIAddress
    public var pf: PCIAddress
    public var index: Int

    public init(vf: PCIAddress, pf: PCIAddress, index: Int) {
        self.vf = vf
        self.pf = pf
        self.index = index
    }
}

/// The host refused an operation before changing anything (a precondition:
/// driver not loaded, IOMMU group not viable...). The API answers 409.
public struct HostRefusal: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads the PFs and VFs, with their settings, as the API lists them.
public protocol InventorySource: Sendable {
    func physicalFunctions() async throws -> [PhysicalFunction]
    /// nil when `address` is not an SR-IOV PF.
    func physicalFunction(_ address: PCIAddress) async throws -> PhysicalFunctionDetail?
    /// All VFs, or those of one PF (empty when `pf` is not a PF).
    func virtualFunctions(pf: PCIAddress?) async throws -> [VirtualFunction]
}

/// Reads one VF: where it is and its settings as its PF reports them.
public protocol VFReading: Sendable {
    /// The VF at `vf`, or nil when it is not a VF of an SR-IOV PF.
    func locate(vf: PCIAddress) async -> VFLocation?
    /// The VF's settings as its PF reports them now.
    func settings(of vf: VFLocation) async throws -> VFSettings
    /// The VF as the API shows it: identity (driver, netdev, IOMMU group,
    /// NUMA node) from the host, with `settings` as just read.
    func describe(_ vf: VFLocation, settings: VFSettings) async -> VirtualFunction
}

/// Writes VF settings through the PF, one attribute at a time.
public protocol VFSettingsWriting: Sendable {
    /// Writes each attribute set in `config` on its own (link state last);
    /// one result per attribute, in the order sent.
    func write(_ config: VFConfig, to vf: VFLocation) async -> [VFAttributeResult]
}

/// A PF's VF count and whether new VFs bind a driver on their own.
public protocol VFCountControl: Sendable {
    /// nil when `pf` is not an SR-IOV PF.
    func totalVFs(pf: PCIAddress) async -> Int?
    func numVFs(pf: PCIAddress) async -> Int?
    func driversAutoprobe(pf: PCIAddress) async -> Bool?
    /// The VFs a PF has now, index → address.
    func vfAddresses(pf: PCIAddress) async -> [(index: Int, address: PCIAddress)]
    /// Sets the count (through 0 between two nonzero counts) and waits, at
    /// most `timeout`, until the kernel shows it.
    func setNumVFs(pf: PCIAddress, to count: Int, timeout: Duration) async throws
    func setDriversAutoprobe(pf: PCIAddress, enabled: Bool) async throws
}

/// Which driver a device is bound to, and binding it.
public protocol VFDriverBinding: Sendable {
    func driver(of device: PCIAddress) async -> String?
    /// Binds `device` to `driver`; `HostRefusal` when a precondition fails
    /// (driver not loaded, IOMMU group not viable...) and nothing changed.
    func bind(_ device: PCIAddress, to driver: VFDriverChoice) async throws
    /// Function-level reset; false when the device offers none.
    func reset(_ device: PCIAddress) async throws -> Bool
}

/// What the VF controller needs of the host.
public typealias VFHost = VFReading & VFSettingsWriting & VFCountControl & VFDriverBinding & PFWatching

/// Whether a PF can carry VFs now: on the bus, bound to a driver, with a netdev.
public struct PFPresence: Sendable, Hashable, CustomStringConvertible {
    /// The PCI function exists (sysfs has it).
    public var onBus: Bool
    public var driver: String?
    public var netdev: String?

    public init(onBus: Bool, driver: String?, netdev: String?) {
        self.onBus = onBus
        self.driver = driver
        self.netdev = netdev
    }

    /// VF settings go through the PF's netdev, VFs exist only under its driver.
    public var isUsable: Bool { onBus && driver != nil && netdev != nil }

    /// Why it is not usable, in a few words ("" when it is).
    public var description: String {
        if !onBus { return "removed from the PCI bus" }
        guard let driver else { return "no driver bound" }
        if netdev == nil { return "driver \(driver) bound, no network interface yet" }
        return "driver \(driver), \(netdev ?? "")"
    }
}

/// What watching a PF needs: whether it is usable, and all its VFs'
/// settings in one read of its link (never one read per VF).
public protocol PFWatching: Sendable {
    func presence(of pf: PCIAddress) async -> PFPresence
    /// Every VF's settings by index, from one RTM_GETLINK of the PF.
    func vfSettings(pf: PCIAddress) async throws -> [Int: VFSettings]
    /// Every VF's traffic counters by index, from one RTM_GETLINK of the PF
    /// with stats (zeros where the driver does not count).
    func vfCounters(pf: PCIAddress) async throws -> [Int: VFTrafficCounters]
}

/// The whole host port: what `KernelHost` and `FakeHost` implement.
public typealias HostPort = InventorySource & VFHost

