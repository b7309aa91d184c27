import Logging
import SRIOVCore

/// sriovd's configuration file (`/etc/sriovd/sriovd.toml`), read and
/// validated once into domain values.
///
/// Every field has a default, so an empty file (or none) is a valid
/// configuration that manages nothing. Fields are `var` so the command line
/// can override them after the file is read. A nil optional means "not
/// configured": sriovd leaves that setting as it finds it.
public struct SRIOVConfiguration: Hashable, Sendable {
    public var daemon: Daemon
    /// The PFs sriovd manages declaratively, in file order.
    public var pfs: [PF]
    /// Explicit per-VF settings, in file order.
    public var vfs: [VF]
    /// `[metrics]`: the TCP address for Prometheus, if any.
    public var metrics: Metrics = Metrics()

    public init(daemon: Daemon = Daemon(), pfs: [PF] = [], vfs: [VF] = []) {
        self.daemon = daemon
        self.pfs = pfs
        self.vfs = vfs
    }

    /// What sriovd runs with when no file is given: the API on its default
    /// socket, no PF managed.
    public static let defaults = SRIOVConfiguration()

    /// Read when it exists and no other path is given.
    public static let defaultPath = "/etc/sriovd/sriovd.toml"
}

extension SRIOVConfiguration {
    /// `[daemon]`: the API socket, its access, state, logging and timing.
    public struct Daemon: Hashable, Sendable {
        /// The API's Unix socket.
        public var socket: String
        /// Permission bits of the socket file.
        public var socketMode: UInt32
        /// Members may change things through the API; nil: only root may.
        public var adminGroup: String?
        /// Members may only read; nil: no read-only group.
        public var readerGroup: String?
        public var stateDirectory: String
        public var logLevel: Logger.Level
        public var logTarget: LogTarget
        /// Largest API request body accepted.
        public var maxRequestBytes: Int
        /// How often declared state is re-applied; `.zero`: only at start and on SIGHUP.
        public var reconcileInterval: Duration
        /// Longest wait for VFs to appear after `sriov_numvfs` is written.
        public var numVFsTimeout: Duration
        /// What a release does to the VF's settings.
        public var releaseAction: ReleaseAction
        /// What sriovd does when a VF's settings changed behind its back.
        public var drift: DriftAction = .correct
        /// Longest wait for a QEMU guest to release an unplugged VF
        /// (`device_del` until `DEVICE_DELETED`).
        public var unplugTimeout: Duration = .seconds(20)
        /// Longest run of a failover hook command (then SIGTERM, SIGKILL 2 s later).
        public var hookTimeout: Duration = .seconds(30)

        public init(
            socket: String = "/run/sriovd/sriovd.sock", socketMode: UInt32 = 0o660, adminGroup: String? = "sriovd",
            readerGroup: String? = nil, stateDirectory: String = "/var/lib/sriovd", logLevel: Logger.Level = .info,
            logTarget: LogTarget = .auto, maxRequestBytes: Int = 65536, reconcileInterval: Duration = .seconds(30),
            numVFsTimeout: Duration = .seconds(120), releaseAction: ReleaseAction = .restore
        ) {
            self.socket = socket
            self.socketMode = socketMode
            self.adminGroup = adminGroup
            self.readerGroup = readerGroup
            self.stateDirectory = stateDirectory
            self.logLevel = logLevel
            self.logTarget = logTarget
            self.maxRequestBytes = maxRequestBytes
            self.reconcileInterval = reconcileInterval
            self.numVFsTimeout = numVFsTimeout
            self.releaseAction = releaseAction
        }
    }

    /// What releasing an assignment does to its VF's settings.
    public enum ReleaseAction: String, Hashable, Sendable, CaseIterable {
        /// Put back exactly the settings the assignment changed, as the VF had them (libvirt's way).
        case restore
        /// Clear the VF: no MAC or VLAN, spoof check on, trust and RSS query
        /// off, link disabled where supported, whatever it had before (OpenStack's way).
        case scrub
    }

    /// What sriovd does with a VF setting changed behind its back (an
    /// assigned VF's, or a declared one's, found different from the record).
    public enum DriftAction: String, Hashable, Sendable, CaseIterable {
        /// Put the recorded value back (and report it).
        case correct
        /// Only report it (event, journal record, metrics).
        case report
    }

    /// Where log records go.
    public enum LogTarget: String, Hashable, Sendable, CaseIterable {
        /// The journal when started by systemd with it available, else stderr.
        case auto
        case journal
        case stderr
    }

    /// `[[pf]]`: one PF, or every PF with given ids, managed declaratively.
    public struct PF: Hashable, Sendable {
        public var match: PFMatch
        /// The VF count to set; nil leaves the count alone.
        public var numVFs: Int?
        /// `sriov_drivers_autoprobe`; nil leaves it alone.
        public var driversAutoprobe: Bool?
        /// The driver new VFs are bound to; nil leaves binding alone.
        public var vfDriver: VFDriverChoice?
        /// Settings applied to VFs not in use; never a MAC. Empty: none.
        public var vfDefaults: VFConfig
        public var pools: [Pool]

        public init(
            match: PFMatch, numVFs: Int? = nil, driversAutoprobe: Bool? = nil, vfDriver: VFDriverChoice? = nil,
            vfDefaults: VFConfig = VFConfig(), pools: [Pool] = []
        ) {
            self.match = match
            self.numVFs = numVFs
            self.driversAutoprobe = driversAutoprobe
            self.vfDriver = vfDriver
            self.vfDefaults = vfDefaults
            self.pools = pools
        }
    }

    /// How a `[[pf]]` entry finds its PF(s).
    public enum PFMatch: Hashable, Sendable, CustomStringConvertible {
        /// `pci = "0000:01:00.0"`.
        case pciAddress(PCIAddress)
        /// `vendor_device = "8086:10c9"`: every PF with these ids, or, with
        /// `device_index`, the Nth of them in PCI address order.
        case ids(vendorID: UInt16, deviceID: UInt16, index: Int?)

        /// The PFs of `inventory` this entry manages, in PCI address order.
        public func select(from inventory: [PhysicalFunction]) -> [PhysicalFunction] {
            switch self {
            case .pciAddress(let address):
                return inventory.filter { $0.pciAddress == address }
            case .ids(let vendorID, let deviceID, let index):
                let all = inventory.filter { $0.vendorID == vendorID && $0.deviceID == deviceID }
                    .sorted { $0.pciAddress < $1.pciAddress }
                guard let index else { return all }
                return all.indices.contains(index) ? [all[index]] : []
            }
        }

        public var description: String {
            switch self {
            case .pciAddress(let address):
                return "pci \(address)"
            case .ids(let vendorID, let deviceID, let index):
                let ids = "vendor_device \(SRIOVConfiguration.hex4(vendorID)):\(SRIOVConfiguration.hex4(deviceID))"
                return index.map { "\(ids) #\($0)" } ?? ids
            }
        }
    }

    /// The driver a PF's VFs are bound to.
    /// `[[pf.pool]]`: a named set of a PF's VFs.
    public struct Pool: Hashable, Sendable {
        public var name: String
        /// nil: every VF of the PF.
        public var vfs: VFIndexSet?
        public var labels: [String: String]

        public init(name: String, vfs: VFIndexSet? = nil, labels: [String: String] = [:]) {
            self.name = name
            self.vfs = vfs
            self.labels = labels
        }
    }

    /// `[[vf]]`: settings for one VF, over its PF's `vf_defaults`.
    public struct VF: Hashable, Sendable {
        /// The PF's PCI address; a `[[pf]]` entry with this `pci` exists.
        public var pf: PCIAddress
        public var index: Int
        public var config: VFConfig

        public init(pf: PCIAddress, index: Int, config: VFConfig) {
            self.pf = pf
            self.index = index
            self.config = config
        }
    }
}

extension SRIOVConfiguration {
    /// `v` as four lower-case hex digits, as lspci and sysfs write PCI ids.
    static func hex4(_ v: UInt16) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 4 - s.count) + s
    }
}
