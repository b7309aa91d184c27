import SRIOVCore

extension LinkInfo {
    /// Parses an RTM_NEWLINK payload: struct ifinfomsg, then IFLA_* attributes.
    init(newLinkPayload payload: NetlinkBytes) throws(NetlinkParseError) {
        try payload.require(atLeast: NetlinkABI.linkHeaderSize, for: "RTM_NEWLINK")
        let ifindex = try payload.int32(at: NetlinkABI.linkHeaderIndexOffset)
        self.init(ifindex: ifindex, name: "", flags: try payload.uint32(at: NetlinkABI.linkHeaderFlagsOffset))

        var name: String?
        var cursor = NetlinkAttributeCursor(try payload.slice(from: NetlinkABI.linkHeaderSize))
        while let attribute = try cursor.next(
            measuringWrappedList: NetlinkABI.iflaVFInfoList, entryType: NetlinkABI.iflaVFInfo)
        {
            let value = attribute.payload
            switch attribute.type {
            case NetlinkABI.iflaIfname:
                name = value.nulTerminatedString
            case NetlinkABI.iflaMTU:
                mtu = try value.uint32(at: 0)
            case NetlinkABI.iflaOperState:
                operState = Self.operStateName(try value.uint8(at: 0))
            case NetlinkABI.iflaCarrier:
                hasCarrier = try value.uint8(at: 0) != 0
            case NetlinkABI.iflaAddress:
                mac = MACAddress(bytes: try value.bytes(at: 0, count: value.count))
            case NetlinkABI.iflaNumVF:
                numVFs = Int(try value.uint32(at: 0))
            case NetlinkABI.iflaVFInfoList:
                vfs = try Self.parseVFInfoList(value)
            case NetlinkABI.iflaMaster:
                master = try value.int32(at: 0)
            case NetlinkABI.iflaParentDevName:
                parentDevice = value.nulTerminatedString
            case NetlinkABI.iflaLinkInfo:
                try parseLinkInfo(value)
            default:
                continue
            }
        }
        guard let name else { throw NetlinkParseError("RTM_NEWLINK for ifindex \(ifindex) has no IFLA_IFNAME") }
        self.name = name
    }

    /// IFLA_LINKINFO: the kind and, for a bond, its mode and active slave.
    private mutating func parseLinkInfo(_ nest: NetlinkBytes) throws(NetlinkParseError) {
        var data: NetlinkBytes?
        for attribute in try nest.attributes() {
            switch attribute.type {
            case NetlinkABI.iflaInfoKind: kind = attribute.payload.nulTerminatedString
            case NetlinkABI.iflaInfoData: data = attribute.payload
            default: continue
            }
        }
        guard kind == "bond", let data else { return }
        for attribute in try data.attributes() {
            switch attribute.type {
            case NetlinkABI.iflaBondActiveSlave:
                let slave = try attribute.payload.int32(at: 0)
                bondActiveSlave = slave == 0 ? nil : slave
            case NetlinkABI.iflaBondMode:
                bondMode = try attribute.payload.uint8(at: 0)
            default: continue
            }
        }
    }

    /// IF_OPER_* in the order of `include/uapi/linux/if.h`, named as sysfs names them.
    private static func operStateName(_ value: UInt8) -> String? {
        let names = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"]
        return Int(value) < names.count ? names[Int(value)] : nil
    }

    /// IFLA_VFINFO_LIST: one IFLA_VF_INFO nest per VF, as `rtnl_fill_vfinfo` writes it.
    private static func parseVFInfoList(_ list: NetlinkBytes) throws(NetlinkParseError) -> [LinkVF] {
        var vfs: [LinkVF] = []
        for (position, entry) in try list.attributes().enumerated() where entry.type == NetlinkABI.iflaVFInfo {
            do throws(NetlinkParseError) {
                vfs.append(try parseVFInfo(entry.payload))
            } catch {
                throw NetlinkParseError("IFLA_VF_INFO entry \(position): \(error.reason)")
            }
        }
        return vfs.sorted { $0.index < $1.index }
    }

    private static func parseVFInfo(_ nest: NetlinkBytes) throws(NetlinkParseError) -> LinkVF {
        var fields = VFInfoFields()
        var settings = VFSettings()
        var legacyVLAN: (vlan: UInt32, qos: UInt32)?
        var listedVLAN: (vlan: UInt32, qos: UInt32, etherType: UInt16)?
        var legacyMaxRate: UInt32?
        var rates: (min: UInt32, max: UInt32)?
        var counters: VFTrafficCounters?

        for attribute in try nest.attributes() {
            switch attribute.type {
            case NetlinkABI.iflaVFMAC:
                // struct ifla_vf_mac: the address is the first 6 of 32 bytes.
                let mac = try fields.read(attribute, size: 10, name: "IFLA_VF_MAC")
                settings.mac = MACAddress(bytes: try mac.bytes(at: 4, count: 6))
            case NetlinkABI.iflaVFVLAN:
                let vlan = try fields.read(attribute, size: 12, name: "IFLA_VF_VLAN")
                legacyVLAN = (try vlan.uint32(at: 4), try vlan.uint32(at: 8))
            case NetlinkABI.iflaVFVLANList:
                // The kernel sends one entry (MAX_VLAN_LIST_LEN is 1).
                let entries = try attribute.payload.attributes()
                if let entry = entries.first(where: { $0.type == NetlinkABI.iflaVFVLANInfo }) {
                    let info = try fields.read(entry, size: 14, name: "IFLA_VF_VLAN_INFO")
                    listedVLAN = (try info.uint32(at: 4), try info.uint32(at: 8), try info.bigEndianUInt16(at: 12))
                }
            case NetlinkABI.iflaVFTxRate:
                legacyMaxRate = try fields.setting(attribute, name: "IFLA_VF_TX_RATE")
            case NetlinkABI.iflaVFRate:
                let rate = try fields.read(attribute, size: 12, name: "IFLA_VF_RATE")
                rates = (try rate.uint32(at: 4), try rate.uint32(at: 8))
            case NetlinkABI.iflaVFSpoofCheck:
                settings.spoofCheck = reportedSwitch(try fields.setting(attribute, name: "IFLA_VF_SPOOFCHK"))
            case NetlinkABI.iflaVFTrust:
                settings.trust = reportedSwitch(try fields.setting(attribute, name: "IFLA_VF_TRUST"))
            case NetlinkABI.iflaVFRSSQueryEnabled:
                settings.rssQuery = reportedSwitch(try fields.setting(attribute, name: "IFLA_VF_RSS_QUERY_EN"))
            case NetlinkABI.iflaVFLinkState:
                // A value sriovd does not know stays unknown (nil) rather
                // than making the whole PF unreadable.
                settings.linkState = VFLinkState(kernelValue: try fields.setting(attribute, name: "IFLA_VF_LINK_STATE"))
            case NetlinkABI.iflaVFStats:
                counters = try parseCounters(attribute.payload)
            default:
                continue  // IFLA_VF_BROADCAST, IFLA_VF_IB_*_GUID
            }
        }
        guard let vf = fields.vf else { throw NetlinkParseError("no attribute names the VF") }

        // IFLA_VF_VLAN_LIST (Linux 4.9+) adds the protocol; the legacy
        // IFLA_VF_VLAN repeats VLAN and QoS without it.
        // Values the domain types cannot hold (VLAN 4095, which the kernel
        // accepts; an unknown protocol) leave that field unknown (nil).
        if let listedVLAN {
            settings.setVLAN(listedVLAN.vlan, qos: listedVLAN.qos)
            settings.vlanProto = VLANProtocol(etherType: listedVLAN.etherType)
        } else if let legacyVLAN {
            settings.setVLAN(legacyVLAN.vlan, qos: legacyVLAN.qos)
        }
        // IFLA_VF_TX_RATE repeats IFLA_VF_RATE's maximum for old tools.
        if let rates {
            settings.minTxRate = rates.min
            settings.maxTxRate = rates.max
        } else if let legacyMaxRate {
            settings.maxTxRate = legacyMaxRate
        }
        var link = LinkVF(index: Int(vf), settings: settings)
        link.counters = counters
        return link
    }

    /// IFLA_VF_STATS: u64 counters (and IFLA_VF_STATS_PAD) in host order.
    private static func parseCounters(_ nest: NetlinkBytes) throws(NetlinkParseError) -> VFTrafficCounters {
        var c = VFTrafficCounters()
        for attribute in try nest.attributes() where attribute.payload.count >= 8 {
            let value = UInt64(try attribute.payload.uint32(at: 0)) | UInt64(try attribute.payload.uint32(at: 4)) << 32
            switch attribute.type {
            case NetlinkABI.iflaVFStatsRxPackets: c.rxPackets = value
            case NetlinkABI.iflaVFStatsTxPackets: c.txPackets = value
            case NetlinkABI.iflaVFStatsRxBytes: c.rxBytes = value
            case NetlinkABI.iflaVFStatsTxBytes: c.txBytes = value
            case NetlinkABI.iflaVFStatsBroadcast: c.broadcast = value
            case NetlinkABI.iflaVFStatsMulticast: c.multicast = value
            case NetlinkABI.iflaVFStatsRxDropped: c.rxDropped = value
            case NetlinkABI.iflaVFStatsTxDropped: c.txDropped = value
            default: continue
            }
        }
        return c
    }

    /// A spoof-check/trust/RSS-query setting: -1 (which the kernel presets)
    /// means the driver did not report it.
    private static func reportedSwitch(_ value: UInt32) -> Bool? {
        value == NetlinkABI.vfSettingUnreported ? nil : value != 0
    }
}

/// Checks the per-VF structs of one IFLA_VF_INFO: each is long enough, and
/// each names the same VF in its leading `u32 vf`.
private struct VFInfoFields {
    private(set) var vf: UInt32?

    /// The payload of `attribute`, at least `size` bytes, after checking its VF number.
    mutating func read(_ attribute: NetlinkAttribute, size: Int, name: String) throws(NetlinkParseError) -> NetlinkBytes
    {
        let payload = attribute.payload
        try payload.require(atLeast: size, for: name)
        let number = try payload.uint32(at: 0)
        if let vf, vf != number {
            throw NetlinkParseError("\(name) is for VF \(number) inside the entry of VF \(vf)")
        }
        vf = number
        return payload
    }

    /// The `setting` of a `{ u32 vf; u32 setting; }` struct.
    mutating func setting(_ attribute: NetlinkAttribute, name: String) throws(NetlinkParseError) -> UInt32 {
        try read(attribute, size: 8, name: name).uint32(at: 4)
    }
}

extension VFSettings {
    /// Sets VLAN and QoS from the kernel's u32 fields; a value the domain
    /// types cannot hold leaves the field nil (unknown).
    fileprivate mutating func setVLAN(_ vlan: UInt32, qos: UInt32) {
        self.vlan = try? VLANID(Int(vlan))
        self.qos = try? VLANQoS(Int(qos))
    }
}
