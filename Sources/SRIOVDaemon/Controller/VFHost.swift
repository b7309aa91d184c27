import SRIOVCore

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

/// The outcome of writing one group of VF settings.
public enum WriteOutcome: Sendable, Hashable {
    case applied
    /// The driver has no operation for it (EOPNOTSUPP): reported, not fatal.
    case unsupported(String)
    case failed(String)
}

/// What the controller needs from the host. The kernel implementation is
/// `KernelVFHost`; tests use a fake. Every call may block on the kernel, so
/// implementations run them off the cooperative thread pool.
public protocol VFHost: Sendable {
    /// The VF at `vf`, or nil when it is not a VF of an SR-IOV PF.
    func locate(vf: PCIAddress) async -> VFLocation?
    /// The VF's settings as its PF reports them now.
    func settings(of vf: VFLocation) async throws -> VFSettings
    /// Writes each group set in `config` on its own; one result per group.
    func write(_ config: VFConfig, to vf: VFLocation) async -> [VFSettingGroup: WriteOutcome]
    func driver(of device: PCIAddress) async -> String?
    func bind(_ device: PCIAddress, to driver: VFDriverChoice) async throws
    /// Function-level reset; false when the device offers none.
    func reset(_ device: PCIAddress) async throws -> Bool

    func totalVFs(pf: PCIAddress) async -> Int?
    func numVFs(pf: PCIAddress) async -> Int?
    /// The VFs a PF has now, index → address.
    func virtualFunctions(pf: PCIAddress) async -> [(index: Int, address: PCIAddress)]
    func setNumVFs(pf: PCIAddress, to count: Int, timeout: Duration) async throws
    func setDriversAutoprobe(pf: PCIAddress, enabled: Bool) async throws
    /// The VF as the API shows it: identity (driver, netdev, IOMMU group,
    /// NUMA node) from the host, with `settings` as just read.
    func describe(_ vf: VFLocation, settings: VFSettings) async -> VirtualFunction
}

extension VFHost {
    public func describe(_ vf: VFLocation, settings: VFSettings) async -> VirtualFunction {
        VirtualFunction(
            index: vf.index, pciAddress: vf.vf, pf: vf.pf, driver: await driver(of: vf.vf), settings: settings)
    }
}

/// The host refused an operation before changing anything (a precondition:
/// driver not loaded, IOMMU group not viable...). The API answers 409.
public struct HostRefusal: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
