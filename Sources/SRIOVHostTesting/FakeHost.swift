import Foundation
import SRIOVCore
import SRIOVHost
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The host port in memory: SR-IOV PFs and their VFs, behaving as the igb
/// driver does (the contract suite runs the same cases against this fake and
/// against igb in the test VM). The one fake every test suite uses.
///
/// - VF n of the PF at bb:dd.f sits at routing id PF + 0x80 + 2n, as igb's
///   SR-IOV capability says (offset 128, stride 2): VF 0 of 01:00.0 is
///   01:10.0, VF 1 01:10.2, VF 4 01:11.0.
/// - A count change recreates every VF (the kernel goes through 0), fresh
///   and bound to igbvf when autoprobe is on, to nothing otherwise.
/// - igb has no operation for link state or RSS query (EOPNOTSUPP), refuses
///   a TX rate while the PF link is down and any minimum rate (EINVAL).
///
/// Failures are injected through `state`; every change is recorded, in
/// order, in `state.operations` (`numvfs 0000:01:00.0 3`,
/// `write 0000:01:10.0 spoofCheck,trust`, `bind 0000:01:10.0 vfio-pci`,
/// `autoprobe 0000:01:00.0 false`).
public final class FakeHost: HostPort, Sendable {
    public struct PF: Sendable {
        public var address: PCIAddress
        public var vendorID: UInt16 = 0x8086
        public var deviceID: UInt16 = 0x10c9
        public var totalVFs: Int
        public var autoprobe: Bool
        /// The PF's link has carrier and a known speed (igb takes TX rates only then).
        public var linkUp = true
        /// The PF's driver (nil: unbound, as while `igb` is unloaded).
        public var driver: String? = "igb"
        public var numaNode: Int?
        public var vfs: [Int: VF] = [:]

        public init(address: PCIAddress, totalVFs: Int = 7, autoprobe: Bool = true, vfs count: Int = 0) {
            self.address = address
            self.totalVFs = totalVFs
            self.autoprobe = autoprobe
            for i in 0..<count { vfs[i] = VF(driver: autoprobe ? "igbvf" : nil) }
        }

        public init(address: PCIAddress, totalVFs: Int = 7, autoprobe: Bool = true, vfs: [Int: VF]) {
            self.address = address
            self.totalVFs = totalVFs
            self.autoprobe = autoprobe
            self.vfs = vfs
        }

        public var netdev: String { "enp\(address.bus)s\(address.device)" }
    }

    public struct VF: Sendable {
        public var settings = FakeHost.freshSettings
        public var driver: String?

        public init(settings: VFSettings = FakeHost.freshSettings, driver: String? = "igbvf") {
            self.settings = settings
            self.driver = driver
        }
    }

    public struct State: Sendable {
        public var pfs: [PCIAddress: PF] = [:]
        /// The driver has no operation for these (every VF): igb's.
        public var unsupported: Set<VFSettingGroup> = [.linkState, .rssQuery]
        /// igb refuses a nonzero minimum TX rate.
        public var minTxRateSupported = false
        /// Writing these attributes fails (every VF).
        public var failing: Set<VFSettingGroup> = []
        /// Writing these attributes of these VFs fails.
        public var failingSettings: [PCIAddress: Set<VFSettingGroup>] = [:]
        /// Writing `sriov_numvfs` of these PFs fails.
        public var failingNumVFs: Set<PCIAddress> = []
        /// Reads before a written MAC becomes visible (iavf-style).
        public var macLag = 0
        public var pendingMAC: (vf: PCIAddress, mac: MACAddress, readsLeft: Int)?
        /// Every config written, in order.
        public var writes: [VFConfig] = []
        /// Every VF count written, in order.
        public var numVFsWrites: [Int] = []
        public var operations: [String] = []
        /// VF traffic counters by VF address (none: zeros).
        public var counters: [PCIAddress: VFTrafficCounters] = [:]

        /// The first PF's VF settings by index (the single-PF tests' view).
        public var vfs: [Int: VFSettings] {
            get { pfs.keys.min().flatMap { pfs[$0]?.vfs.mapValues(\.settings) } ?? [:] }
            set {
                guard let first = pfs.keys.min() else { return }
                for (index, settings) in newValue { pfs[first]?.vfs[index]?.settings = settings }
            }
        }

        /// Every VF's driver by address (VFs without one left out).
        public var drivers: [PCIAddress: String] {
            get {
                var out: [PCIAddress: String] = [:]
                for (address, pf) in pfs {
                    for (index, vf) in pf.vfs { out[FakeHost.vfAddress(index, of: address)] = vf.driver }
                }
                return out
            }
            set {
                for (address, pf) in pfs {
                    for index in pf.vfs.keys {
                        pfs[address]?.vfs[index]?.driver = newValue[FakeHost.vfAddress(index, of: address)]
                    }
                }
            }
        }

        /// The first PF's sriov_drivers_autoprobe.
        public var autoprobe: Bool { pfs.keys.min().flatMap { pfs[$0]?.autoprobe } ?? false }
    }

    public let state = Mutex(State())
    /// Called inside each write, before it takes effect (to hold a write
    /// open in a race test).
    private let writeHook = Mutex<(@Sendable (VFLocation) async -> Void)?>(nil)
    /// Per PF: its writes wait here until the test opens the gate.
    private let writeGates = Mutex<[PCIAddress: WriteGate]>([:])

    public init(_ pfs: [PF]) {
        state.withLock { s in
            for pf in pfs { s.pfs[pf.address] = pf }
        }
    }

    /// One igb PF at `pf` with `vfs` fresh VFs.
    public convenience init(pf: String = "0000:01:00.0", vfs: Int = 0, autoprobe: Bool = true) {
        self.init([PF(address: Self.address(pf), autoprobe: autoprobe, vfs: vfs)])
    }

    /// What igb reports for a fresh VF (no RSS query: igb does not report it).
    public static let freshSettings = VFSettings(
        mac: .zero, vlan: VLANID.none, qos: .zero, vlanProto: .dot1Q, spoofCheck: true, trust: false,
        linkState: .auto, minTxRate: 0, maxTxRate: 0)

    public static func address(_ text: String) -> PCIAddress {
        try! PCIAddress.parse(text, field: "test")
    }

    /// VF `index` of `pf`, where igb puts it: routing id + 0x80 + 2 × index.
    public static func vfAddress(_ index: Int, of pf: PCIAddress) -> PCIAddress {
        let routingID = Int(pf.bus) << 8 | Int(pf.device) << 3 | Int(pf.function)
        let vf = routingID + 0x80 + 2 * index
        return PCIAddress(
            domain: pf.domain, bus: UInt8(truncatingIfNeeded: vf >> 8), device: UInt8((vf >> 3) & 0x1f),
            function: UInt8(vf & 7))
    }

    public var operations: [String] { state.withLock { $0.operations } }

    public func vf(_ index: Int, of pf: String = "0000:01:00.0") -> VF? {
        state.withLock { $0.pfs[Self.address(pf)]?.vfs[index] }
    }

    public func fakePF(_ text: String = "0000:01:00.0") -> PF? {
        state.withLock { $0.pfs[Self.address(text)] }
    }

    /// The first PF's address (the single-PF tests' PF).
    public var pf: PCIAddress { state.withLock { $0.pfs.keys.min()! } }

    /// VF `index` of the first PF.
    public func address(_ index: Int) -> PCIAddress { Self.vfAddress(index, of: pf) }

    /// Runs `hook` inside every write from now on (nil: none).
    public func onWrite(_ hook: (@Sendable (VFLocation) async -> Void)?) {
        writeHook.withLock { $0 = hook }
    }

    /// Holds every write to `pf`'s VFs from now on, before it takes effect,
    /// until the returned gate is opened: a PF whose driver answers slowly
    /// (a firmware call under RTNL). Writes to other PFs are not held.
    public func holdWrites(pf: PCIAddress) -> WriteGate {
        let gate = WriteGate()
        writeGates.withLock { $0[pf] = gate }
        return gate
    }

    /// Writes held until `open()`; see `holdWrites(pf:)`.
    public final class WriteGate: Sendable {
        private struct State {
            var isOpen = false
            var waiting: [CheckedContinuation<Void, Never>] = []
            var held = 0
        }
        private let state = Mutex(State())

        /// How many writes have reached the gate (held, or let through once open).
        public var held: Int { state.withLock { $0.held } }

        /// Lets every held write, and every later one, through.
        public func open() {
            let waiting = state.withLock { s in
                s.isOpen = true
                defer { s.waiting = [] }
                return s.waiting
            }
            for continuation in waiting { continuation.resume() }
        }

        /// Waits until `count` writes have been held, at most `timeout`;
        /// false when fewer arrived.
        public func waitUntilHeld(_ count: Int = 1, timeout: Duration = .seconds(10)) async -> Bool {
            let deadline = ContinuousClock.now + timeout
            while held < count {
                if ContinuousClock.now >= deadline { return false }
                try? await Task.sleep(for: .milliseconds(2))
            }
            return true
        }

        func pass() async {
            await withCheckedContinuation { continuation in
                let passes = state.withLock { s in
                    s.held += 1
                    if !s.isOpen { s.waiting.append(continuation) }
                    return s.isOpen
                }
                if passes { continuation.resume() }
            }
        }
    }

    /// `rmmod igb`: the PF loses its driver and netdev, and every VF with
    /// its settings is gone.
    public func unloadDriver(pf: PCIAddress) {
        state.withLock { s in
            s.operations.append("unload \(pf)")
            s.pfs[pf]?.driver = nil
            s.pfs[pf]?.vfs = [:]
        }
    }

    /// `modprobe igb`: the PF is back, with no VFs (igb creates none at probe).
    public func loadDriver(pf: PCIAddress) {
        state.withLock { s in
            s.operations.append("load \(pf)")
            s.pfs[pf]?.driver = "igb"
        }
    }

    /// The PF's link comes up or goes down (igb takes TX rates only while up).
    public func setLink(pf: PCIAddress, up: Bool) {
        state.withLock { $0.pfs[pf]?.linkUp = up }
    }

    private static func find(_ vf: PCIAddress, in s: State) -> VFLocation? {
        for (address, pf) in s.pfs {
            for index in pf.vfs.keys where vfAddress(index, of: address) == vf {
                return VFLocation(vf: vf, pf: address, index: index)
            }
        }
        return nil
    }

    /// An errno as the kernel's writer reports it.
    static func failure(_ code: Int32) -> VFAttributeResult.Outcome {
        .failed(code: code, message: String(cString: strerror(code)))
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    // MARK: VFReading

    public func locate(vf: PCIAddress) async -> VFLocation? {
        state.withLock { Self.find(vf, in: $0) }
    }

    public func settings(of vf: VFLocation) async throws -> VFSettings {
        try state.withLock { s in
            guard var current = s.pfs[vf.pf]?.vfs[vf.index]?.settings else {
                throw Failure(description: "no VF \(vf.index) on \(vf.pf)")
            }
            if let pending = s.pendingMAC, pending.vf == vf.vf {
                if pending.readsLeft <= 0 {
                    s.pfs[vf.pf]?.vfs[vf.index]?.settings.mac = pending.mac
                    current.mac = pending.mac
                    s.pendingMAC = nil
                } else {
                    s.pendingMAC?.readsLeft -= 1
                }
            }
            return current
        }
    }

    public func describe(_ vf: VFLocation, settings: VFSettings) async -> VirtualFunction {
        state.withLock { s in
            let pf = s.pfs[vf.pf]
            let driver = pf?.vfs[vf.index]?.driver
            return VirtualFunction(
                index: vf.index, pciAddress: vf.vf, pf: vf.pf, driver: driver,
                netdev: driver == "igbvf" ? pf.map { "\($0.netdev)v\(vf.index)" } : nil,
                iommuGroup: Self.iommuGroup(vf.vf), numaNode: pf?.numaNode, settings: settings)
        }
    }

    /// Each VF its own group, as with intel-iommu in the test VM.
    static func iommuGroup(_ vf: PCIAddress) -> Int {
        Int(vf.bus) * 32 + Int(vf.device) * 8 + Int(vf.function)
    }

    // MARK: PFWatching

    public func presence(of pf: PCIAddress) async -> PFPresence {
        state.withLock { s in
            guard let p = s.pfs[pf] else { return PFPresence(onBus: false, driver: nil, netdev: nil) }
            return PFPresence(onBus: true, driver: p.driver, netdev: p.driver == nil ? nil : p.netdev)
        }
    }

    public func vfSettings(pf: PCIAddress) async throws -> [Int: VFSettings] {
        try state.withLock { s in
            guard let p = s.pfs[pf], p.driver != nil else { throw Failure(description: "PF \(pf) has no network interface") }
            return p.vfs.mapValues(\.settings)
        }
    }

    /// igb's: zeros (it has no ndo_get_vf_stats), or what a test sets in `state.counters`.
    public func vfCounters(pf: PCIAddress) async throws -> [Int: VFTrafficCounters] {
        try state.withLock { s in
            guard let p = s.pfs[pf], p.driver != nil else { throw Failure(description: "PF \(pf) has no network interface") }
            return Dictionary(uniqueKeysWithValues: p.vfs.keys.map { ($0, s.counters[FakeHost.vfAddress($0, of: pf)] ?? VFTrafficCounters()) })
        }
    }

    // MARK: VFSettingsWriting

    public func write(_ config: VFConfig, to vf: VFLocation) async -> [VFAttributeResult] {
        if let hook = writeHook.withLock({ $0 }) { await hook(vf) }
        if let gate = writeGates.withLock({ $0[vf.pf] }) { await gate.pass() }
        return state.withLock { s in
            let attributes = VFSettingGroup.sendingOrder.filter(VFSettingGroup.groups(in: config).contains)
            s.writes.append(config)
            s.operations.append("write \(vf.vf) \(attributes.map(\.rawValue).sorted().joined(separator: ","))")
            guard let pf = s.pfs[vf.pf], var settings = pf.vfs[vf.index]?.settings else {
                return attributes.map { VFAttributeResult(group: $0, outcome: Self.failure(EINVAL)) }
            }
            var results: [VFAttributeResult] = []
            for attribute in attributes {
                let outcome: VFAttributeResult.Outcome
                if s.unsupported.contains(attribute) {
                    outcome = .unsupported(reason: "the PF's driver does not support it (Operation not supported)")
                } else if s.failing.contains(attribute) || s.failingSettings[vf.vf]?.contains(attribute) == true {
                    outcome = Self.failure(EINVAL)
                } else if attribute == .txRate, !pf.linkUp || (!s.minTxRateSupported && (config.minTxRate ?? 0) != 0) {
                    outcome = Self.failure(EINVAL)
                } else {
                    if attribute == .mac, s.macLag > 0, let mac = config.mac {
                        s.pendingMAC = (vf.vf, mac, s.macLag)
                    } else {
                        settings.apply(attribute, of: config)
                    }
                    outcome = .applied
                }
                results.append(VFAttributeResult(group: attribute, outcome: outcome))
            }
            s.pfs[vf.pf]?.vfs[vf.index]?.settings = settings
            return results
        }
    }

    // MARK: VFDriverBinding

    public func driver(of device: PCIAddress) async -> String? {
        state.withLock { s in Self.find(device, in: s).flatMap { s.pfs[$0.pf]?.vfs[$0.index]?.driver } }
    }

    public func bind(_ device: PCIAddress, to driver: VFDriverChoice) async throws {
        try state.withLock { s in
            s.operations.append("bind \(device) \(driver.rawValue)")
            guard let vf = Self.find(device, in: s) else {
                throw Failure(description: "no PCI device at \(device)")
            }
            let name: String? =
                switch driver {
                case .vfio: "vfio-pci"
                case .host: "igbvf"
                case .none: nil
                }
            s.pfs[vf.pf]?.vfs[vf.index]?.driver = name
        }
    }

    public func reset(_ device: PCIAddress) async throws -> Bool { true }

    // MARK: VFCountControl

    public func totalVFs(pf: PCIAddress) async -> Int? { state.withLock { $0.pfs[pf]?.totalVFs } }

    public func numVFs(pf: PCIAddress) async -> Int? { state.withLock { $0.pfs[pf]?.vfs.count } }

    public func driversAutoprobe(pf: PCIAddress) async -> Bool? { state.withLock { $0.pfs[pf]?.autoprobe } }

    public func vfAddresses(pf: PCIAddress) async -> [(index: Int, address: PCIAddress)] {
        state.withLock { $0.pfs[pf]?.vfs.keys.sorted() ?? [] }.map { (index: $0, address: Self.vfAddress($0, of: pf)) }
    }

    public func setNumVFs(pf: PCIAddress, to count: Int, timeout: Duration) async throws {
        try state.withLock { s in
            s.operations.append("numvfs \(pf) \(count)")
            s.numVFsWrites.append(count)
            guard var p = s.pfs[pf] else { throw Failure(description: "no SR-IOV PF at \(pf)") }
            if s.failingNumVFs.contains(pf) { throw Failure(description: "Device or resource busy") }
            if p.driver == nil { throw Failure(description: "PF \(pf) has no driver bound") }
            guard (0...p.totalVFs).contains(count) else {
                throw Failure(description: "\(count) is outside 0-\(p.totalVFs): \(String(cString: strerror(ERANGE)))")
            }
            p.vfs = [:]
            for i in 0..<count { p.vfs[i] = VF(driver: p.autoprobe ? "igbvf" : nil) }
            s.pfs[pf] = p
        }
    }

    public func setDriversAutoprobe(pf: PCIAddress, enabled: Bool) async throws {
        try state.withLock { s in
            s.operations.append("autoprobe \(pf) \(enabled)")
            guard s.pfs[pf] != nil else { throw Failure(description: "no SR-IOV PF at \(pf)") }
            s.pfs[pf]?.autoprobe = enabled
        }
    }

    // MARK: InventorySource

    /// Every PF with its VFs, as the inventory lists them now.
    public var details: [PhysicalFunctionDetail] {
        state.withLock { s in s.pfs.values.sorted { $0.address < $1.address }.map(Self.detail) }
    }

    private static func detail(_ p: PF) -> PhysicalFunctionDetail {
        PhysicalFunctionDetail(
            pf: PhysicalFunction(
                pciAddress: p.address, vendorID: p.vendorID, deviceID: p.deviceID, driver: p.driver,
                netdev: p.driver == nil ? nil : p.netdev,
                numaNode: p.numaNode, totalVFs: p.totalVFs, numVFs: p.vfs.count, driversAutoprobe: p.autoprobe),
            vfs: p.vfs.keys.sorted().map { i in
                let driver = p.vfs[i]!.driver
                let address = Self.vfAddress(i, of: p.address)
                return VirtualFunction(
                    index: i, pciAddress: address, pf: p.address, driver: driver,
                    netdev: driver == "igbvf" ? "\(p.netdev)v\(i)" : nil, iommuGroup: Self.iommuGroup(address),
                    numaNode: p.numaNode, settings: p.vfs[i]!.settings)
            })
    }

    public func physicalFunctions() async throws -> [PhysicalFunction] {
        state.withLock { s in s.pfs.values.sorted { $0.address < $1.address }.map { Self.detail($0).pf } }
    }

    public func physicalFunction(_ address: PCIAddress) async throws -> PhysicalFunctionDetail? {
        state.withLock { s in s.pfs[address].map(Self.detail) }
    }

    public func virtualFunctions(pf: PCIAddress?) async throws -> [VirtualFunction] {
        state.withLock { s in
            s.pfs.values.filter { pf == nil || $0.address == pf }.sorted { $0.address < $1.address }
                .flatMap { Self.detail($0).vfs }
        }
    }
}

extension VFSettings {
    /// What a driver that takes it does with one group of `config`: the
    /// parts of the VLAN tag and of the rate not given are sent as the
    /// kernel's defaults (VLAN 0, QoS 0, 802.1Q; rate 0), as the model says.
    mutating func apply(_ group: VFSettingGroup, of config: VFConfig) {
        group.copy(from: group.sent(config), to: &self)
    }
}
