import SRIOVCore

/// A network link as the kernel's RTM_NEWLINK describes it.
public struct LinkInfo: Sendable, Hashable {
    public var ifindex: Int32
    public var name: String
    /// The link's IFF_* flags (IFF_UP, IFF_LOWER_UP, IFF_LOOPBACK...).
    public var flags: UInt32
    /// Carrier as the driver reports it (IFLA_CARRIER); nil when not reported.
    public var hasCarrier: Bool?
    /// The RFC 2863 operational state (IFLA_OPERSTATE), spelled as sysfs
    /// `operstate` spells it: "unknown", "notpresent", "down",
    /// "lowerlayerdown", "testing", "dormant" or "up". nil when not reported.
    public var operState: String?
    public var mtu: UInt32?
    /// The link's address (IFLA_ADDRESS) when it is a 6-byte Ethernet address.
    public var mac: MACAddress?
    /// How many VFs the device has (IFLA_NUM_VF). Reported only when VF info
    /// was asked for, and only for devices with a parent (PCI) device.
    public var numVFs: Int?
    /// The VFs' settings in index order. Empty when VF info was not asked for.
    /// A VF whose settings the driver could not read is missing from the list.
    public var vfs: [LinkVF]
    /// The ifindex of the link's master (a bond or bridge it is enslaved to; IFLA_MASTER).
    public var master: Int32?
    /// The device under the link (IFLA_PARENT_DEV_NAME), e.g. a PCI address.
    public var parentDevice: String?
    /// The link's kind (IFLA_INFO_KIND: "bond", "veth"...); nil for hardware.
    public var kind: String?
    /// A bond's active slave (IFLA_BOND_ACTIVE_SLAVE); nil when none or not a bond.
    public var bondActiveSlave: Int32?
    /// A bond's mode (IFLA_BOND_MODE: 0 balance-rr, 1 active-backup, ...);
    /// nil when not a bond.
    public var bondMode: UInt8?

    /// Administratively up (IFF_UP).
    public var isAdminUp: Bool { flags & NetlinkABI.iffUp != 0 }

    /// A link as given; the reader makes them from RTM_NEWLINK, fakes of the
    /// kernel boundary from anything.
    public init(
        ifindex: Int32, name: String, flags: UInt32, hasCarrier: Bool? = nil, operState: String? = nil,
        mtu: UInt32? = nil, mac: MACAddress? = nil, numVFs: Int? = nil, vfs: [LinkVF] = []
    ) {
        self.ifindex = ifindex
        self.name = name
        self.flags = flags
        self.hasCarrier = hasCarrier
        self.operState = operState
        self.mtu = mtu
        self.mac = mac
        self.numVFs = numVFs
        self.vfs = vfs
    }
}

/// One VF of a PF, with its settings as the PF's driver reports them
/// (IFLA_VF_INFO). Fields the driver did not report are nil.
public struct LinkVF: Sendable, Hashable {
    /// The VF number on its PF (the `vf` field of the IFLA_VF_* structs).
    public var index: Int
    public var settings: VFSettings
    /// The VF's traffic counters (IFLA_VF_STATS), when they were asked for.
    /// The kernel sends them for every driver, as zeros where the driver
    /// cannot count (igb): see `VFTrafficCounters.countingDrivers`.
    public var counters: VFTrafficCounters?

    public init(index: Int, settings: VFSettings) {
        self.index = index
        self.settings = settings
    }
}

/// A VF's traffic as its PF counts it (IFLA_VF_STATS).
public struct VFTrafficCounters: Sendable, Hashable {
    public var rxPackets: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var broadcast: UInt64 = 0
    public var multicast: UInt64 = 0
    public var rxDropped: UInt64 = 0
    public var txDropped: UInt64 = 0

    public init() {}

    /// PF drivers that implement `ndo_get_vf_stats` (Linux 6.x): for the
    /// others (igb, ixgbe, bnxt_en...) the kernel reports zeros that look
    /// like "no traffic", so their counters are unsupported, not zero.
    public static let countingDrivers: Set<String> = ["mlx5_core", "mlx4_core", "i40e", "ice", "ionic", "liquidio"]

    /// Whether the PF's driver counts VF traffic: known to, or seen counting.
    public static func supported(driver: String?, counters: [VFTrafficCounters]) -> Bool {
        if let driver, countingDrivers.contains(driver) { return true }
        return counters.contains { $0 != VFTrafficCounters() }
    }
}
