import Logging
import NIOPosix
import SRIOVCore
import Synchronization

/// The host port, for real: sysfs for devices, drivers and counts, rtnetlink
/// (one `LinkReader`, shared by the inventory and the controller) for links
/// and VF settings, libnl for VF writes. Calls that block in the kernel run
/// on NIO's blocking thread pool, not on the cooperative pool that serves
/// requests.
public final class KernelHost: VFHost {
    let sysfs: SysfsTree
    let names: any PCINameResolving
    private let control: SRIOVDeviceControl
    private let aliases: ModuleAliases
    // One owner per netlink socket; each used under its own lock. nil (with
    // the reason) when the socket could not be opened: listings then carry
    // a warning, and settings reads and writes fail with it.
    private let reader: Mutex<LinkReader?>
    private let writer: Mutex<VFSettingsWriter?>
    let readerError: String?
    private let writerError: String?

    public init(sysfs: SysfsTree = SysfsTree(), names: any PCINameResolving, logger: Logger = Logger(label: "sriovd.host")) {
        self.sysfs = sysfs
        self.names = names
        self.control = SRIOVDeviceControl(sysfs: sysfs)
        self.aliases = ModuleAliases(sysfs: sysfs)
        // One netlink socket each, opened now; nil with the reason when that fails.
        func open<T>(_ make: () throws -> T) -> (T?, String?) {
            do { return (try make(), nil) } catch { return (nil, "netlink unavailable: \(error)") }
        }
        let (reader, readerError) = open { try LinkReader() }
        if let readerError {
            logger.error("netlink unavailable; link and VF settings will be missing", metadata: ["error": "\(readerError)"])
        }
        let (writer, writerError) = open { try VFSettingsWriter() }
        self.reader = Mutex(reader)
        self.writer = Mutex(writer)
        self.readerError = readerError
        self.writerError = writerError
    }

    struct NetlinkUnavailable: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `body` on NIO's blocking pool.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    /// The link with `ifindex`, through the shared reader (blocking: call it
    /// on the blocking pool).
    func readLink(ifindex: Int32, counters: Bool = false) throws -> LinkInfo {
        try reader.withLock { reader in
            guard let reader else { throw NetlinkUnavailable(description: readerError ?? "netlink unavailable") }
            return try reader.link(ifindex: ifindex, counters: counters)
        }
    }

    // MARK: VFReading

    public func locate(vf: PCIAddress) async -> VFLocation? {
        guard let pf = sysfs.physicalFunction(ofVF: vf),
            let entry = sysfs.virtualFunctions(of: pf).first(where: { $0.address == vf })
        else { return nil }
        return VFLocation(vf: vf, pf: pf, index: entry.index)
    }

    struct NoNetdev: Error, CustomStringConvertible {
        var pf: PCIAddress
        var description: String {
            "PF \(pf) has no network interface (is its driver bound?); VF settings go through the PF's netdev"
        }
    }

    private func pfIfindex(_ pf: PCIAddress) throws -> Int32 {
        guard let netdev = sysfs.netdevs(pf).first, let ifindex = sysfs.ifindex(pf, netdev: netdev) else {
            throw NoNetdev(pf: pf)
        }
        return ifindex
    }

    public func settings(of vf: VFLocation) async throws -> VFSettings {
        let ifindex = try pfIfindex(vf.pf)
        return try await blocking { [self] in
            let link = try self.readLink(ifindex: ifindex)
            return link.vfs.first { $0.index == vf.index }?.settings ?? VFSettings()
        }
    }

    // MARK: PFWatching

    public func presence(of pf: PCIAddress) async -> PFPresence {
        PFPresence(
            onBus: sysfs.fileExists(sysfs.devicePath(pf)), driver: sysfs.driver(pf), netdev: sysfs.netdevs(pf).first)
    }

    public func vfSettings(pf: PCIAddress) async throws -> [Int: VFSettings] {
        let ifindex = try pfIfindex(pf)
        return try await blocking { [self] in
            Dictionary(try self.readLink(ifindex: ifindex).vfs.map { ($0.index, $0.settings) }) { a, _ in a }
        }
    }

    public func vfCounters(pf: PCIAddress) async throws -> [Int: VFTrafficCounters] {
        let ifindex = try pfIfindex(pf)
        return try await blocking { [self] in
            Dictionary(
                try self.readLink(ifindex: ifindex, counters: true).vfs.map { ($0.index, $0.counters ?? VFTrafficCounters()) }
            ) { a, _ in a }
        }
    }

    public func describe(_ vf: VFLocation, settings: VFSettings) async -> VirtualFunction {
        VirtualFunction(
            index: vf.index, pciAddress: vf.vf, pf: vf.pf, driver: sysfs.driver(vf.vf),
            netdev: sysfs.netdevs(vf.vf).first, iommuGroup: sysfs.iommuGroup(vf.vf),
            numaNode: sysfs.numaNode(vf.vf), settings: settings)
    }

    // MARK: VFSettingsWriting

    public func write(_ config: VFConfig, to vf: VFLocation) async -> [VFAttributeResult] {
        func allFailed(_ error: any Error) -> [VFAttributeResult] {
            VFSettingGroup.sendingOrder.filter(VFSettingGroup.groups(in: config).contains).map {
                VFAttributeResult(group: $0, outcome: .failed(code: -1, message: "\(error)"))
            }
        }
        let ifindex: Int32
        do {
            ifindex = try pfIfindex(vf.pf)
        } catch {
            return allFailed(error)
        }
        do {
            return try await blocking { [self] in
                try self.writer.withLock { writer in
                    guard let writer else {
                        throw NetlinkUnavailable(description: self.writerError ?? "netlink unavailable")
                    }
                    return writer.apply(config, pfIfindex: ifindex, vf: vf.index)
                }
            }
        } catch {
            return allFailed(error)
        }
    }

    // MARK: VFDriverBinding

    public func driver(of device: PCIAddress) async -> String? {
        sysfs.driver(device)
    }

    public func bind(_ device: PCIAddress, to driver: VFDriverChoice) async throws {
        let choice: DriverChoice =
            switch driver {
            case .vfio: .vfio
            case .host: hostDriverChoice(for: device)
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
    /// with sriov_drivers_autoprobe=0, where the kernel would pick none.
    private func hostDriverChoice(for device: PCIAddress) -> DriverChoice {
        guard let module = aliases.hostDriver(for: device) else { return .host }
        let drivers = sysfs.root + "/bus/pci/drivers/"
        for name in [module, module.replacing("_", with: "-")] where sysfs.fileExists(drivers + name) {
            return .named(name)
        }
        return .named(module)
    }

    public func reset(_ device: PCIAddress) async throws -> Bool {
        try await blocking { [control] in
            try control.resetFunction(device) == .reset
        }
    }

    // MARK: VFCountControl

    public func totalVFs(pf: PCIAddress) async -> Int? {
        sysfs.intAttribute(pf, "sriov_totalvfs")
    }

    public func numVFs(pf: PCIAddress) async -> Int? {
        sysfs.intAttribute(pf, "sriov_numvfs")
    }

    public func driversAutoprobe(pf: PCIAddress) async -> Bool? {
        sysfs.intAttribute(pf, "sriov_drivers_autoprobe").map { $0 != 0 }
    }

    public func vfAddresses(pf: PCIAddress) async -> [(index: Int, address: PCIAddress)] {
        sysfs.virtualFunctions(of: pf)
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
        guard count > 0, sysfs.intAttribute(pf, "sriov_drivers_autoprobe") == 1 else { return }
        while true {
            let missing = sysfs.virtualFunctions(of: pf).map(\.address).filter { vf in
                guard let driver = sysfs.driver(vf) else { return true }  // not probed yet
                return !["vfio-pci", "pci-stub"].contains(driver) && sysfs.netdevs(vf).isEmpty
            }
            if missing.isEmpty { return }
            if clock.now >= deadline { throw NetdevsMissing(pf: pf, missing: missing, timeout: timeout) }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    public func setDriversAutoprobe(pf: PCIAddress, enabled: Bool) async throws {
        try control.setDriversAutoprobe(pf: pf, enabled: enabled)
    }
}
