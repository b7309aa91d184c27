import Logging
import SRIOVCore

/// The host port, for real: sysfs for devices, drivers and counts, rtnetlink
/// (`LinkReader`) for links and VF settings, libnl (`VFSettingsWriter`) for
/// VF writes.
///
/// No lock here: each netlink call takes a session of its own
/// (`NetlinkSessions`), so calls on different PFs never wait for each other,
/// and the caller's per-PF lock is the only thing that orders work on one
/// PF. Every call that blocks in the kernel (netlink, sysfs reads and
/// writes, resets, binds) runs on `KernelThreads`, never on the cooperative
/// pool that serves requests.
public final class KernelHost: VFHost {
    let sysfs: SysfsTree
    let names: any PCINameResolving
    let threads: KernelThreads
    private let control: SRIOVDeviceControl
    private let aliases: ModuleAliases
    // When a socket cannot be opened at start, listings carry the reason as a
    // warning, and settings reads and writes fail with it.
    let readers: NetlinkSessions<LinkReader>
    let writers: NetlinkSessions<VFSettingsWriter>

    public convenience init(
        sysfs: SysfsTree = SysfsTree(), names: any PCINameResolving, logger: Logger = Logger(label: "sriovd.host"),
        threads: KernelThreads = .shared
    ) {
        self.init(
            sysfs: sysfs, names: names, logger: logger, threads: threads, openReader: { try LinkReader() },
            openWriter: { try VFSettingsWriter() })
    }

    /// A host whose netlink sessions are opened by `openReader` and
    /// `openWriter` (tests give them a transport instead of the kernel's socket).
    init(
        sysfs: SysfsTree, names: any PCINameResolving, logger: Logger, threads: KernelThreads,
        openReader: @escaping @Sendable () throws -> LinkReader,
        openWriter: @escaping @Sendable () throws -> VFSettingsWriter
    ) {
        self.sysfs = sysfs
        self.names = names
        self.threads = threads
        self.control = SRIOVDeviceControl(sysfs: sysfs, threads: threads)
        self.aliases = ModuleAliases(sysfs: sysfs)
        readers = NetlinkSessions(open: openReader)
        writers = NetlinkSessions(open: openWriter)
        if let unavailable = readers.unavailable {
            logger.error("netlink unavailable; link and VF settings will be missing", metadata: ["error": "\(unavailable)"])
        }
    }

    /// Why links cannot be read (nil when they can).
    var readerError: String? { readers.unavailable }

    /// Runs `body` on the kernel threads.
    func blocking<T: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> T
    ) async throws(Failure) -> T {
        try await threads.run(body)
    }

    /// The link with `ifindex`, through a reader of its own (blocking: call
    /// it on the kernel threads).
    func readLink(ifindex: Int32, counters: Bool = false) throws -> LinkInfo {
        try readers.with { reader in try reader.link(ifindex: ifindex, counters: counters) }
    }

    // MARK: VFReading

    public func locate(vf: PCIAddress) async -> VFLocation? {
        await blocking { [sysfs] in
            guard let pf = sysfs.physicalFunction(ofVF: vf),
                let entry = sysfs.virtualFunctions(of: pf).first(where: { $0.address == vf })
            else { return nil }
            return VFLocation(vf: vf, pf: pf, index: entry.index)
        }
    }

    struct NoNetdev: Error, CustomStringConvertible {
        var pf: PCIAddress
        var description: String {
            "PF \(pf) has no network interface (is its driver bound?); VF settings go through the PF's netdev"
        }
    }

    /// The PF's ifindex (blocking: call it on the kernel threads).
    private func pfIfindex(_ pf: PCIAddress) throws(NoNetdev) -> Int32 {
        guard let netdev = sysfs.netdevs(pf).first, let ifindex = sysfs.ifindex(pf, netdev: netdev) else {
            throw NoNetdev(pf: pf)
        }
        return ifindex
    }

    /// The PF's link with its VFs (blocking: call it on the kernel threads).
    private func readPF(_ pf: PCIAddress, counters: Bool = false) throws -> LinkInfo {
        try readLink(ifindex: try pfIfindex(pf), counters: counters)
    }

    public func settings(of vf: VFLocation) async throws -> VFSettings {
        try await blocking { [self] in
            try self.readPF(vf.pf).vfs.first { $0.index == vf.index }?.settings ?? VFSettings()
        }
    }

    // MARK: PFWatching

    public func presence(of pf: PCIAddress) async -> PFPresence {
        await blocking { [sysfs] in
            PFPresence(
                onBus: sysfs.fileExists(sysfs.devicePath(pf)), driver: sysfs.driver(pf), netdev: sysfs.netdevs(pf).first)
        }
    }

    public func vfSettings(pf: PCIAddress) async throws -> [Int: VFSettings] {
        try await blocking { [self] in
            Dictionary(try self.readPF(pf).vfs.map { ($0.index, $0.settings) }) { a, _ in a }
        }
    }

    public func vfCounters(pf: PCIAddress) async throws -> [Int: VFTrafficCounters] {
        try await blocking { [self] in
            Dictionary(try self.readPF(pf, counters: true).vfs.map { ($0.index, $0.counters ?? VFTrafficCounters()) }) { a, _ in a }
        }
    }

    public func describe(_ vf: VFLocation, settings: VFSettings) async -> VirtualFunction {
        await blocking { [sysfs] in
            VirtualFunction(
                index: vf.index, pciAddress: vf.vf, pf: vf.pf, driver: sysfs.driver(vf.vf),
                netdev: sysfs.netdevs(vf.vf).first, iommuGroup: sysfs.iommuGroup(vf.vf),
                numaNode: sysfs.numaNode(vf.vf), settings: settings)
        }
    }

    // MARK: VFSettingsWriting

    public func write(_ config: VFConfig, to vf: VFLocation) async -> [VFAttributeResult] {
        await blocking { [self] in
            do {
                let ifindex = try self.pfIfindex(vf.pf)
                return try self.writers.with { writer in writer.apply(config, pfIfindex: ifindex, vf: vf.index) }
            } catch {
                return VFSettingGroup.sendingOrder.filter(VFSettingGroup.groups(in: config).contains).map {
                    VFAttributeResult(group: $0, outcome: .failed(code: -1, message: "\(error)"))
                }
            }
        }
    }

    // MARK: VFDriverBinding

    public func driver(of device: PCIAddress) async -> String? {
        await blocking { [sysfs] in sysfs.driver(device) }
    }

    public func bind(_ device: PCIAddress, to driver: VFDriverChoice) async throws {
        let choice: DriverChoice =
            switch driver {
            case .vfio: .vfio
            case .host: await blocking { [self] in self.hostDriverChoice(for: device) }
            case .none: .unbound
            }
        do {
            _ = try await control.bind(device, to: choice)
        } catch {
            switch error {
            case .driverNotLoaded, .invalidDriverName, .autoprobeDisabled, .noIOMMUGroup, .groupNotViable:
                throw HostRefusal(error.description)
            default:
                throw error
            }
        }
    }

    /// The VF's own driver by name (from modules.alias), so binding works
    /// with sriov_drivers_autoprobe=0, where the kernel would pick none
    /// (blocking: call it on the kernel threads).
    private func hostDriverChoice(for device: PCIAddress) -> DriverChoice {
        guard let module = aliases.hostDriver(for: device) else { return .host }
        let drivers = sysfs.root + "/bus/pci/drivers/"
        for name in [module, module.replacing("_", with: "-")] where sysfs.fileExists(drivers + name) {
            return .named(name)
        }
        return .named(module)
    }

    public func reset(_ device: PCIAddress) async throws -> Bool {
        try await blocking { [control] () throws(ControlError) in
            try control.resetFunction(device) == .reset
        }
    }

    // MARK: VFCountControl

    public func totalVFs(pf: PCIAddress) async -> Int? {
        await blocking { [sysfs] in sysfs.intAttribute(pf, "sriov_totalvfs") }
    }

    public func numVFs(pf: PCIAddress) async -> Int? {
        await blocking { [sysfs] in sysfs.intAttribute(pf, "sriov_numvfs") }
    }

    public func driversAutoprobe(pf: PCIAddress) async -> Bool? {
        await blocking { [sysfs] in sysfs.intAttribute(pf, "sriov_drivers_autoprobe").map { $0 != 0 } }
    }

    public func vfAddresses(pf: PCIAddress) async -> [(index: Int, address: PCIAddress)] {
        await blocking { [sysfs] in sysfs.virtualFunctions(of: pf) }
    }

    struct NetdevsMissing: Error, CustomStringConvertible {
        var pf: PCIAddress
        var missing: [PCIAddress]
        var timeout: Duration
        var description: String {
            "\(pf): the VFs were created, but \(missing.count) bound to a host driver had no network interface after \(timeout): "
                + missing.map(\.description).joined(separator: ", ")
        }
    }

    /// Sets the count, then, when autoprobe lets host drivers bind the new
    /// VFs, also waits (within the same bound) for their network interfaces.
    public func setNumVFs(pf: PCIAddress, to count: Int, timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        try await control.setNumVFs(pf: pf, to: count, timeout: timeout)
        guard count > 0, await blocking({ [sysfs] in sysfs.intAttribute(pf, "sriov_drivers_autoprobe") }) == 1 else {
            return
        }
        while true {
            let missing = await blocking { [sysfs] in
                sysfs.virtualFunctions(of: pf).map(\.address).filter { vf in
                    guard let driver = sysfs.driver(vf) else { return true }  // not probed yet
                    return !["vfio-pci", "pci-stub"].contains(driver) && sysfs.netdevs(vf).isEmpty
                }
            }
            if missing.isEmpty { return }
            if clock.now >= deadline { throw NetdevsMissing(pf: pf, missing: missing, timeout: timeout) }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    public func setDriversAutoprobe(pf: PCIAddress, enabled: Bool) async throws {
        try await blocking { [control] () throws(ControlError) in
            try control.setDriversAutoprobe(pf: pf, enabled: enabled)
        }
    }
}
