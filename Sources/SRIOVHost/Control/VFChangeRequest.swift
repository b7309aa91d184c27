import CNetlink
import SRIOVCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One VF setting group with its values as sent: what one RTM_SETLINK carries.
struct VFChange: Hashable, Sendable {
    let group: VFSettingGroup
    /// The group's fields, a part not given at its default (`VFSettingGroup.sent`).
    let values: VFSettings

    init(_ group: VFSettingGroup, of config: VFConfig) {
        self.group = group
        values = group.sent(config)
    }

    /// The changes `config` asks for, in the order they are sent (link state
    /// last, so a VF is enabled only after the rest is set).
    static func changes(for config: VFConfig) -> [VFChange] {
        VFSettingGroup.sendingOrder.filter { $0.isSet(in: config) }.map { VFChange($0, of: config) }
    }
}

/// Builds the RTM_SETLINK for one `VFChange` with libnl-route: a link object
/// holding only the PF's ifindex and one VF with the group's attribute set, turned
/// into a message by `rtnl_link_build_change_request`.
///
/// What libnl 3.7 makes of it (checked byte by byte in the tests): an
/// ifinfomsg with the PF's index and nothing else but IFLA_VFINFO_LIST >
/// IFLA_VF_INFO > the one IFLA_VF_* attribute, each struct's `vf` field set
/// to the VF number. libnl builds it as RTM_NEWLINK; it is sent as
/// RTM_SETLINK, as `ip link set ... vf` and systemd-networkd send it.
enum VFChangeRequest {
    /// A new nl_msg (free it with `nlmsg_free`), or libnl's negative error.
    static func build(_ change: VFChange, pfIfindex: Int32, vf: UInt32) -> Result<OpaquePointer, LibnlCode> {
        guard let original = rtnl_link_alloc() else { return .failure(LibnlCode(-NLE_NOMEM)) }
        defer { rtnl_link_put(original) }
        rtnl_link_set_ifindex(original, pfIfindex)

        guard let changes = rtnl_link_alloc() else { return .failure(LibnlCode(-NLE_NOMEM)) }
        defer { rtnl_link_put(changes) }
        guard let vfObject = rtnl_link_vf_alloc() else { return .failure(LibnlCode(-NLE_NOMEM)) }
        // rtnl_link_vf_add takes its own reference; this one is dropped here.
        defer { rtnl_link_vf_put(vfObject) }
        rtnl_link_vf_set_index(vfObject, vf)

        let v = change.values
        switch change.group.attribute {
        case .mac:
            guard var bytes = v.mac?.bytes else { return .failure(LibnlCode(-NLE_INVAL)) }
            guard let address = nl_addr_build(AF_LLC, &bytes, bytes.count) else {
                return .failure(LibnlCode(-NLE_NOMEM))
            }
            rtnl_link_vf_set_addr(vfObject, address)  // takes its own reference
            nl_addr_put(address)
        case .vlanList:
            guard let id = v.vlan, let qos = v.qos, let proto = v.vlanProto else { return .failure(LibnlCode(-NLE_INVAL)) }
            var vlans: UnsafeMutablePointer<nl_vf_vlans_t>?
            let allocated = rtnl_link_vf_vlan_alloc(&vlans, 1)
            guard allocated >= 0, let vlans else { return .failure(LibnlCode(allocated < 0 ? allocated : -NLE_NOMEM)) }
            vlans.pointee.vlans[0] = nl_vf_vlan_info_t(
                vf_vlan: UInt32(id.value), vf_vlan_qos: UInt32(qos.value), vf_vlan_proto: Self.libnlVLANProtocol(proto))
            // Despite its documentation, rtnl_link_vf_set_vlans takes its own
            // reference (3.7: the count goes from 1 to 2), so ours is dropped.
            rtnl_link_vf_set_vlans(vfObject, vlans)
            rtnl_link_vf_vlan_put(vlans)
        case .spoofCheck:
            guard let on = v.spoofCheck else { return .failure(LibnlCode(-NLE_INVAL)) }
            rtnl_link_vf_set_spoofchk(vfObject, on ? 1 : 0)
        case .trust:
            guard let on = v.trust else { return .failure(LibnlCode(-NLE_INVAL)) }
            rtnl_link_vf_set_trust(vfObject, on ? 1 : 0)
        case .rssQueryEnabled:
            guard let on = v.rssQuery else { return .failure(LibnlCode(-NLE_INVAL)) }
            rtnl_link_vf_set_rss_query_en(vfObject, on ? 1 : 0)
        case .linkState:
            guard let state = v.linkState else { return .failure(LibnlCode(-NLE_INVAL)) }
            rtnl_link_vf_set_linkstate(vfObject, state.kernelValue)
        case .rate:
            guard let min = v.minTxRate, let max = v.maxTxRate else { return .failure(LibnlCode(-NLE_INVAL)) }
            // The new API (IFLA_VF_RATE) carries min and max together.
            var rate = nl_vf_rate(
                api: Int32(RTNL_LINK_VF_RATE_API_NEW.rawValue), rate: 0, max_tx_rate: max, min_tx_rate: min)
            rtnl_link_vf_set_rate(vfObject, &rate)
        }

        let added = rtnl_link_vf_add(changes, vfObject)
        guard added >= 0 else { return .failure(LibnlCode(added)) }
        var message: OpaquePointer?
        let built = rtnl_link_build_change_request(original, changes, 0, &message)
        guard built >= 0, let message else { return .failure(LibnlCode(built < 0 ? built : -NLE_NOMEM)) }
        nlmsg_hdr(message).pointee.nlmsg_type = UInt16(RTM_SETLINK)
        return .success(message)
    }

    /// The request's bytes, as they would be sent (before libnl fills in the
    /// sequence number, port and NLM_F_REQUEST|NLM_F_ACK).
    static func bytes(_ change: VFChange, pfIfindex: Int32, vf: UInt32) -> Result<[UInt8], LibnlCode> {
        build(change, pfIfindex: pfIfindex, vf: vf).map { message in
            defer { nlmsg_free(message) }
            let header = nlmsg_hdr(message)!
            return Array(UnsafeRawBufferPointer(start: header, count: Int(header.pointee.nlmsg_len)))
        }
    }

    /// The protocol as libnl wants it in `vf_vlan_proto`. libnl sends
    /// 802.1Q (0x8100, host order) as the plain IFLA_VF_VLAN, which every
    /// kernel and driver takes; anything else goes in IFLA_VF_VLAN_LIST, and
    /// there libnl copies the value as it is into the kernel's `__be16
    /// vlan_proto` without htons. So 802.1ad is given in network byte order.
    static func libnlVLANProtocol(_ proto: VLANProtocol) -> UInt16 {
        switch proto {
        case .dot1Q: proto.etherType
        case .dot1AD: proto.etherType.bigEndian
        }
    }
}

/// A negative NLE_* code from libnl.
struct LibnlCode: Error, Hashable {
    let value: Int32

    init(_ value: Int32) { self.value = value }
}
