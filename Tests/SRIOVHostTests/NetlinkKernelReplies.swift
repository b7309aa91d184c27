// Builds netlink replies the way the kernel lays them out, written from the
// kernel's sources (net/core/rtnetlink.c rtnl_fill_ifinfo / rtnl_fill_vfinfo,
// include/net/netlink.h) and independent of the code under test.

/// Appends bytes as the kernel's nlmsg_put / nla_put / nla_nest_* do.
struct KernelMessageBuilder {
    private(set) var bytes: [UInt8] = []
    /// The true lengths of nests longer than 65535 bytes, whose nla_len
    /// nla_nest_end() stored wrapped.
    private(set) var wrappedNestLengths: [Int] = []

    /// nlmsg_put: a header whose length `endMessage` fills in.
    mutating func beginMessage(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32 = 31_337) -> Int {
        let start = bytes.count
        put(UInt32(0))
        put(type)
        put(flags)
        put(sequence)
        put(portID)
        return start
    }

    /// nlmsg_end: the length covers everything appended since the header.
    mutating func endMessage(_ start: Int) {
        padToFourBytes()
        store(UInt32(bytes.count - start), at: start)
    }

    /// Raw bytes of an integer in host byte order.
    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }

    mutating func put(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }

    /// nla_put: header, payload, zero padding to 4 bytes.
    mutating func putAttribute(_ type: UInt16, _ payload: [UInt8]) {
        put(UInt16(truncatingIfNeeded: 4 + payload.count))
        put(type)
        put(payload)
        padToFourBytes()
    }

    mutating func putU8(_ type: UInt16, _ value: UInt8) { putAttribute(type, [value]) }
    mutating func putU32(_ type: UInt16, _ value: UInt32) { putAttribute(type, bytesInHostOrder(value)) }

    /// nla_put_string: the text and its NUL.
    mutating func putString(_ type: UInt16, _ text: String) { putAttribute(type, Array(text.utf8) + [0]) }

    /// nla_put_64bit as on an architecture without efficient unaligned
    /// access (x86 needs no padding): a pad attribute first when the value
    /// would not be 8-byte aligned, so parsers meet IFLA_PAD and
    /// IFLA_VF_STATS_PAD.
    mutating func put64Bit(_ type: UInt16, _ payload: [UInt8], padType: UInt16) {
        if (bytes.count + 4) % 8 != 0 { putAttribute(padType, []) }
        putAttribute(type, payload)
    }

    /// nla_nest_start_noflag (or nla_nest_start, which sets NLA_F_NESTED).
    mutating func beginNest(_ type: UInt16, flagged: Bool = false) -> Int {
        let start = bytes.count
        putAttribute(flagged ? type | 0x8000 : type, [])
        return start
    }

    /// nla_nest_end: stores the length in the 16-bit nla_len unchecked.
    mutating func endNest(_ start: Int) {
        let length = bytes.count - start
        if length > 0xFFFF { wrappedNestLengths.append(length) }
        store(UInt16(truncatingIfNeeded: length), at: start)
    }

    private mutating func padToFourBytes() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    private mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value) { bytes.replaceSubrange(offset..<offset + $0.count, with: $0) }
    }
}

func bytesInHostOrder<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}

/// Header flags and types from include/uapi/linux/netlink.h and rtnetlink.h.
enum KernelNumbers {
    static let error: UInt16 = 2, done: UInt16 = 3
    static let newLink: UInt16 = 16, getLink: UInt16 = 18
    static let multi: UInt16 = 0x2, dumpInterrupted: UInt16 = 0x10
    static let capped: UInt16 = 0x100, ackTLVs: UInt16 = 0x200
    static let unreported: UInt32 = 0xFFFF_FFFF
}

/// One VF as a driver's ndo_get_vf_config reports it.
struct KernelVF {
    var number: UInt32
    var mac: [UInt8]
    var vlan: UInt32 = 0
    var qos: UInt32 = 0
    var vlanProto: UInt16 = 0x8100
    var spoofCheck: UInt32 = KernelNumbers.unreported
    var linkState: UInt32 = 0
    var minTxRate: UInt32 = 0
    var maxTxRate: UInt32 = 0
    var rssQuery: UInt32 = KernelNumbers.unreported
    var trust: UInt32 = KernelNumbers.unreported
    /// IFLA_VF_* types to leave out, as an older kernel or a reply from
    /// something other than rtnl_fill_vfinfo would.
    var omitted: Set<UInt16> = []
    /// Values for the legacy IFLA_VF_VLAN when they should differ from the list.
    var legacyVLAN: (vlan: UInt32, qos: UInt32)?
}

/// A link as rtnl_fill_ifinfo reports it.
struct KernelLink {
    var ifindex: Int32
    var name: String
    var flags: UInt32 = 0x1 | 0x2 | 0x1000 | 0x10000  // IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_LOWER_UP
    var mtu: UInt32 = 1500
    var operState: UInt8 = 6  // IF_OPER_UP
    var carrier: UInt8 = 1
    var mac: [UInt8] = [0x3C, 0xFD, 0xFE, 0x00, 0x00, 0x01]
    /// nil: VF info was not asked for (no IFLA_NUM_VF, no list).
    var vfs: [KernelVF]?
    /// Link and VF statistics, as without RTEXT_FILTER_SKIP_STATS.
    var includeStats = true
    /// An alternative name (IFLA_PROP_LIST, a nest marked NLA_F_NESTED).
    var altName: String?
    /// Mark the VF nests NLA_F_NESTED, which the kernel does not (yet) do.
    var flagsVFNests = false
}

extension KernelMessageBuilder {
    /// One RTM_NEWLINK message in rtnl_fill_ifinfo's order.
    mutating func putNewLink(_ link: KernelLink, sequence: UInt32, flags: UInt16 = 0) {
        let message = beginMessage(type: KernelNumbers.newLink, flags: flags, sequence: sequence)
        putLinkHeader(ifindex: link.ifindex, flags: link.flags)
        putString(3, link.name)  // IFLA_IFNAME
        putU32(13, 1000)  // IFLA_TXQLEN
        putU8(16, link.operState)  // IFLA_OPERSTATE
        putU8(17, 0)  // IFLA_LINKMODE
        putU32(4, link.mtu)  // IFLA_MTU
        putU32(50, 68)  // IFLA_MIN_MTU
        putU32(51, 9702)  // IFLA_MAX_MTU
        putU32(27, 0)  // IFLA_GROUP
        putU32(30, 0)  // IFLA_PROMISCUITY
        putU32(31, 64)  // IFLA_NUM_TX_QUEUES
        putU32(40, 65535)  // IFLA_GSO_MAX_SEGS
        putU32(41, 65536)  // IFLA_GSO_MAX_SIZE
        putU32(32, 64)  // IFLA_NUM_RX_QUEUES
        putU8(33, link.carrier)  // IFLA_CARRIER
        putU32(35, 2)  // IFLA_CARRIER_CHANGES
        putU8(39, 0)  // IFLA_PROTO_DOWN
        putAttribute(1, link.mac)  // IFLA_ADDRESS
        putAttribute(2, [UInt8](repeating: 0xFF, count: link.mac.count))  // IFLA_BROADCAST
        if link.includeStats {
            put64Bit(23, [UInt8](repeating: 0x11, count: 200), padType: 42)  // IFLA_STATS64, IFLA_PAD
            putAttribute(7, [UInt8](repeating: 0x22, count: 96))  // IFLA_STATS
        }
        if let vfs = link.vfs {
            putU32(21, UInt32(vfs.count))  // IFLA_NUM_VF
            let list = beginNest(22, flagged: link.flagsVFNests)  // IFLA_VFINFO_LIST
            for vf in vfs {
                putVFInfo(
                    vf, broadcastLength: link.mac.count, includeStats: link.includeStats, flagged: link.flagsVFNests)
            }
            endNest(list)
        }
        let xdp = beginNest(43)  // IFLA_XDP
        putU8(2, 0)  // IFLA_XDP_ATTACHED: XDP_ATTACHED_NONE
        endNest(xdp)
        putAttribute(54, link.mac)  // IFLA_PERM_ADDRESS
        putString(6, "mq")  // IFLA_QDISC
        let afSpec = beginNest(26)  // IFLA_AF_SPEC
        let inet = beginNest(2)  // AF_INET
        putAttribute(1, [UInt8](repeating: 0, count: 16))  // IFLA_INET_CONF (shortened)
        endNest(inet)
        endNest(afSpec)
        put64Bit(14, [UInt8](repeating: 0, count: 32), padType: 42)  // IFLA_MAP
        if let altName = link.altName {
            let properties = beginNest(52, flagged: true)  // IFLA_PROP_LIST
            putString(53, altName)  // IFLA_ALT_IFNAME
            endNest(properties)
        }
        putString(56, "0000:3b:00.0")  // IFLA_PARENT_DEV_NAME
        putString(57, "pci")  // IFLA_PARENT_DEV_BUS_NAME
        endMessage(message)
    }

    /// struct ifinfomsg of an Ethernet link.
    mutating func putLinkHeader(ifindex: Int32, flags: UInt32 = 0x1) {
        put(UInt8(0))  // ifi_family: AF_UNSPEC
        put(UInt8(0))
        put(UInt16(1))  // ifi_type: ARPHRD_ETHER
        put(ifindex)
        put(flags)
        put(UInt32(0))  // ifi_change
    }

    /// One IFLA_VF_INFO nest in rtnl_fill_vfinfo's order.
    mutating func putVFInfo(_ vf: KernelVF, broadcastLength: Int, includeStats: Bool, flagged: Bool) {
        func include(_ type: UInt16) -> Bool { !vf.omitted.contains(type) }
        let info = beginNest(1, flagged: flagged)  // IFLA_VF_INFO
        if include(1) {  // IFLA_VF_MAC: struct ifla_vf_mac { u32 vf; u8 mac[32]; }
            putAttribute(1, bytesInHostOrder(vf.number) + vf.mac + [UInt8](repeating: 0, count: 32 - vf.mac.count))
        }
        if include(13) {  // IFLA_VF_BROADCAST: struct ifla_vf_broadcast { u8 broadcast[32]; }
            putAttribute(
                13,
                [UInt8](repeating: 0xFF, count: broadcastLength) + [UInt8](repeating: 0, count: 32 - broadcastLength))
        }
        if include(2) {  // IFLA_VF_VLAN: struct ifla_vf_vlan { u32 vf; u32 vlan; u32 qos; }
            let legacy = vf.legacyVLAN ?? (vf.vlan, vf.qos)
            putAttribute(2, bytesInHostOrder(vf.number) + bytesInHostOrder(legacy.vlan) + bytesInHostOrder(legacy.qos))
        }
        if include(6) {  // IFLA_VF_RATE: struct ifla_vf_rate { u32 vf; u32 min_tx_rate; u32 max_tx_rate; }
            putAttribute(
                6, bytesInHostOrder(vf.number) + bytesInHostOrder(vf.minTxRate) + bytesInHostOrder(vf.maxTxRate))
        }
        if include(3) {  // IFLA_VF_TX_RATE: struct ifla_vf_tx_rate { u32 vf; u32 rate; }
            putAttribute(3, bytesInHostOrder(vf.number) + bytesInHostOrder(vf.maxTxRate))
        }
        let settings: [(type: UInt16, value: UInt32)] = [
            (4, vf.spoofCheck),  // IFLA_VF_SPOOFCHK
            (5, vf.linkState),  // IFLA_VF_LINK_STATE
            (7, vf.rssQuery),  // IFLA_VF_RSS_QUERY_EN
            (9, vf.trust),  // IFLA_VF_TRUST
        ]
        for setting in settings where include(setting.type) {
            putAttribute(setting.type, bytesInHostOrder(vf.number) + bytesInHostOrder(setting.value))
        }
        if include(12) {  // IFLA_VF_VLAN_LIST { IFLA_VF_VLAN_INFO }
            let list = beginNest(12, flagged: flagged)
            // struct ifla_vf_vlan_info { u32 vf; u32 vlan; u32 qos; __be16 vlan_proto; } (sizeof 16)
            putAttribute(
                1,
                bytesInHostOrder(vf.number) + bytesInHostOrder(vf.vlan) + bytesInHostOrder(vf.qos)
                    + bytesInHostOrder(vf.vlanProto.bigEndian) + [
                        0, 0,
                    ])
            endNest(list)
        }
        if includeStats {  // IFLA_VF_STATS: eight u64 counters, IFLA_VF_STATS_PAD (6) between
            let stats = beginNest(8)
            for counter: UInt16 in [0, 1, 2, 3, 4, 5, 7, 8] {
                put64Bit(counter, bytesInHostOrder(UInt64(vf.number) * 1000 + UInt64(counter)), padType: 6)
            }
            endNest(stats)
        }
        endNest(info)
    }

    /// NLMSG_DONE with its `int error`.
    mutating func putDone(sequence: UInt32, error: Int32 = 0, extAck: String? = nil) {
        let flags = KernelNumbers.multi | (extAck == nil ? 0 : KernelNumbers.ackTLVs)
        let message = beginMessage(type: KernelNumbers.done, flags: flags, sequence: sequence)
        put(error)
        if let extAck { putString(1, extAck) }  // NLMSGERR_ATTR_MSG
        endMessage(message)
    }

    /// NLMSG_ERROR answering `request`, as netlink_ack() writes it: the
    /// error, the request echoed (its header only when capped), then the
    /// extended-ack message when there is one.
    mutating func putError(_ error: Int32, answering request: [UInt8], capped: Bool, extAck: String? = nil) {
        let sequence = request.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
        var flags = capped ? KernelNumbers.capped : 0
        if extAck != nil { flags |= KernelNumbers.ackTLVs }
        let message = beginMessage(type: KernelNumbers.error, flags: flags, sequence: sequence)
        put(error)
        put(capped ? Array(request[..<16]) : request)
        if let extAck {
            putString(1, extAck)  // NLMSGERR_ATTR_MSG
            putU32(2, 32)  // NLMSGERR_ATTR_OFFS
        }
        endMessage(message)
    }
}

extension KernelMessageBuilder {
    /// A one-message datagram.
    static func datagram(_ build: (inout KernelMessageBuilder) -> Void) -> [UInt8] {
        var builder = KernelMessageBuilder()
        build(&builder)
        return builder.bytes
    }
}
