/// Numbers and struct layouts from the kernel's netlink UAPI
/// (`include/uapi/linux/netlink.h`, `rtnetlink.h`, `if_link.h`, `if.h`),
/// checked against the headers of Linux 6.18. Glibc's Swift module does not
/// export the `linux/` headers, so the values the reader needs are kept here,
/// each under the kernel's own name.
enum NetlinkABI {
    // MARK: Socket

    static let netlinkRoute: Int32 = 0  // NETLINK_ROUTE
    static let netlinkKobjectUevent: Int32 = 15  // NETLINK_KOBJECT_UEVENT
    /// RTMGRP_LINK: the bit of RTNLGRP_LINK (1) in a bind's nl_groups.
    static let rtmgrpLink: UInt32 = 1
    /// The kernel's own uevents (udev re-broadcasts on group 2 with its own header).
    static let ueventKernelGroup: UInt32 = 1
    static let solNetlink: Int32 = 270  // SOL_NETLINK
    /// Error replies echo only the request's header, not its whole body.
    static let netlinkCapAck: Int32 = 10  // NETLINK_CAP_ACK
    /// Error replies carry the kernel's explanation (extended ack TLVs).
    static let netlinkExtAck: Int32 = 11  // NETLINK_EXT_ACK

    // MARK: struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid }

    static let messageHeaderSize = 16
    static let alignment = 4  // NLMSG_ALIGNTO, NLA_ALIGNTO

    static let nlmsgNoop: UInt16 = 1  // NLMSG_NOOP
    static let nlmsgError: UInt16 = 2  // NLMSG_ERROR
    static let nlmsgDone: UInt16 = 3  // NLMSG_DONE
    static let rtmNewLink: UInt16 = 16  // RTM_NEWLINK
    static let rtmDelLink: UInt16 = 17  // RTM_DELLINK
    static let rtmGetLink: UInt16 = 18  // RTM_GETLINK

    static let flagRequest: UInt16 = 0x01  // NLM_F_REQUEST
    static let flagDump: UInt16 = 0x300  // NLM_F_DUMP (NLM_F_ROOT | NLM_F_MATCH)
    /// Set on dump messages when the list changed while it was being dumped.
    static let flagDumpInterrupted: UInt16 = 0x10  // NLM_F_DUMP_INTR
    /// On NLMSG_ERROR: the echoed request is only its header.
    static let flagCapped: UInt16 = 0x100  // NLM_F_CAPPED
    /// On NLMSG_ERROR and NLMSG_DONE: extended-ack TLVs follow.
    static let flagAckTLVs: UInt16 = 0x200  // NLM_F_ACK_TLVS
    static let flagAck: UInt16 = 0x04  // NLM_F_ACK

    // MARK: struct nlmsgerr { int error; struct nlmsghdr msg; } + TLVs

    static let extAckMessage: UInt16 = 1  // NLMSGERR_ATTR_MSG, a NUL-terminated string

    // MARK: struct nlattr { u16 len; u16 type; }

    static let attributeHeaderSize = 4
    static let attributeNested: UInt16 = 0x8000  // NLA_F_NESTED
    /// The two top bits of nla_type are flags, not part of the type.
    static let attributeTypeMask: UInt16 = 0x3FFF  // ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)

    // MARK: struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; }

    static let linkHeaderSize = 16
    static let linkHeaderIndexOffset = 4
    static let linkHeaderFlagsOffset = 8

    // MARK: IFLA_* (top level of RTM_NEWLINK)

    static let iflaAddress: UInt16 = 1
    static let iflaIfname: UInt16 = 3
    static let iflaMTU: UInt16 = 4
    static let iflaOperState: UInt16 = 16
    static let iflaNumVF: UInt16 = 21
    static let iflaVFInfoList: UInt16 = 22
    static let iflaExtMask: UInt16 = 29
    static let iflaCarrier: UInt16 = 33
    static let iflaMaster: UInt16 = 10
    static let iflaLinkInfo: UInt16 = 18
    static let iflaNetNSFD: UInt16 = 28
    static let iflaParentDevName: UInt16 = 56

    // Inside IFLA_LINKINFO, and IFLA_INFO_DATA of a bond.
    static let iflaInfoKind: UInt16 = 1
    static let iflaInfoData: UInt16 = 2
    static let iflaBondMode: UInt16 = 1
    static let iflaBondActiveSlave: UInt16 = 2

    static let rtmSetLink: UInt16 = 19  // RTM_SETLINK

    /// IFLA_EXT_MASK bits.
    static let rtextFilterVF: UInt32 = 1 << 0  // RTEXT_FILTER_VF
    static let rtextFilterSkipStats: UInt32 = 1 << 3  // RTEXT_FILTER_SKIP_STATS

    static let iffUp: UInt32 = 0x1  // IFF_UP

    // MARK: Inside IFLA_VFINFO_LIST

    static let iflaVFInfo: UInt16 = 1  // IFLA_VF_INFO, one nest per VF
    static let iflaVFMAC: UInt16 = 1  // struct ifla_vf_mac { u32 vf; u8 mac[32]; }
    static let iflaVFVLAN: UInt16 = 2  // struct ifla_vf_vlan { u32 vf; u32 vlan; u32 qos; }
    static let iflaVFTxRate: UInt16 = 3  // struct ifla_vf_tx_rate { u32 vf; u32 rate; } (max rate)
    static let iflaVFSpoofCheck: UInt16 = 4  // struct ifla_vf_spoofchk { u32 vf; u32 setting; }
    static let iflaVFLinkState: UInt16 = 5  // struct ifla_vf_link_state { u32 vf; u32 link_state; }
    static let iflaVFRate: UInt16 = 6  // struct ifla_vf_rate { u32 vf; u32 min_tx_rate; u32 max_tx_rate; }
    static let iflaVFRSSQueryEnabled: UInt16 = 7  // struct ifla_vf_rss_query_en { u32 vf; u32 setting; }
    static let iflaVFTrust: UInt16 = 9  // struct ifla_vf_trust { u32 vf; u32 setting; }
    /// A nest of u64 counters (IFLA_VF_STATS_*), left out with RTEXT_FILTER_SKIP_STATS.
    static let iflaVFStats: UInt16 = 8
    static let iflaVFStatsRxPackets: UInt16 = 0
    static let iflaVFStatsTxPackets: UInt16 = 1
    static let iflaVFStatsRxBytes: UInt16 = 2
    static let iflaVFStatsTxBytes: UInt16 = 3
    static let iflaVFStatsBroadcast: UInt16 = 4
    static let iflaVFStatsMulticast: UInt16 = 5
    static let iflaVFStatsRxDropped: UInt16 = 7
    static let iflaVFStatsTxDropped: UInt16 = 8
    static let iflaVFVLANList: UInt16 = 12  // nest of IFLA_VF_VLAN_INFO
    /// struct ifla_vf_vlan_info { u32 vf; u32 vlan; u32 qos; __be16 vlan_proto; }:
    /// 14 meaningful bytes, sizeof 16; vlan_proto alone is big-endian.
    static let iflaVFVLANInfo: UInt16 = 1

    /// What `rtnl_fill_vfinfo` presets spoofchk, trust and rss_query_en to
    /// (-1): the driver did not report the setting.
    static let vfSettingUnreported: UInt32 = 0xFFFF_FFFF
}
