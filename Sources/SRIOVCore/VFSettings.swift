/// A VF's settings as the PF's netlink reply reports them (IFLA_VF_INFO).
/// A nil field means the driver did not report that attribute.
public struct VFSettings: Hashable, Sendable, Codable {
    public var mac: MACAddress?
    public var vlan: VLANID?
    public var qos: VLANQoS?
    public var vlanProto: VLANProtocol?
    public var spoofCheck: Bool?
    public var trust: Bool?
    public var linkState: VFLinkState?
    /// Mbit/s; 0 means no limit.
    public var minTxRate: UInt32?
    /// Mbit/s; 0 means no limit.
    public var maxTxRate: UInt32?
    public var rssQuery: Bool?

    public init(
        mac: MACAddress? = nil, vlan: VLANID? = nil, qos: VLANQoS? = nil, vlanProto: VLANProtocol? = nil,
        spoofCheck: Bool? = nil, trust: Bool? = nil, linkState: VFLinkState? = nil,
        minTxRate: UInt32? = nil, maxTxRate: UInt32? = nil, rssQuery: Bool? = nil
    ) {
        self.mac = mac
        self.vlan = vlan
        self.qos = qos
        self.vlanProto = vlanProto
        self.spoofCheck = spoofCheck
        self.trust = trust
        self.linkState = linkState
        self.minTxRate = minTxRate
        self.maxTxRate = maxTxRate
        self.rssQuery = rssQuery
    }
}

/// VF settings someone asked for. A nil field means "not configured": it is
/// neither applied nor, later, restored.
public struct VFConfig: Hashable, Sendable, Codable {
    public var mac: MACAddress?
    public var vlan: VLANID?
    public var qos: VLANQoS?
    public var vlanProto: VLANProtocol?
    public var spoofCheck: Bool?
    public var trust: Bool?
    public var linkState: VFLinkState?
    public var minTxRate: UInt32?
    public var maxTxRate: UInt32?
    /// Whether the VF may query the PF's RSS hash key and indirection table
    /// (IFLA_VF_RSS_QUERY_EN; ixgbe has it, igb does not).
    public var rssQuery: Bool?

    public init(
        mac: MACAddress? = nil, vlan: VLANID? = nil, qos: VLANQoS? = nil, vlanProto: VLANProtocol? = nil,
        spoofCheck: Bool? = nil, trust: Bool? = nil, linkState: VFLinkState? = nil,
        minTxRate: UInt32? = nil, maxTxRate: UInt32? = nil, rssQuery: Bool? = nil
    ) {
        self.mac = mac
        self.vlan = vlan
        self.qos = qos
        self.vlanProto = vlanProto
        self.spoofCheck = spoofCheck
        self.trust = trust
        self.linkState = linkState
        self.minTxRate = minTxRate
        self.maxTxRate = maxTxRate
        self.rssQuery = rssQuery
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mac, vlan, qos, vlanProto, spoofCheck, trust, linkState, minTxRate, maxTxRate, rssQuery
    }

    /// The JSON keys of a config, as requests spell them.
    public static let keys: Set<String> = Set(CodingKeys.allCases.map(\.stringValue))

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mac = try c.decodeIfPresent(MACAddress.self, forKey: .mac)
        vlan = try c.decodeIfPresent(VLANID.self, forKey: .vlan)
        qos = try c.decodeIfPresent(VLANQoS.self, forKey: .qos)
        vlanProto = try c.decodeIfPresent(VLANProtocol.self, forKey: .vlanProto)
        spoofCheck = try c.decodeIfPresent(Bool.self, forKey: .spoofCheck)
        trust = try c.decodeIfPresent(Bool.self, forKey: .trust)
        linkState = try c.decodeIfPresent(VFLinkState.self, forKey: .linkState)
        // Decoded as Int and range-checked here, so a negative or huge rate
        // is an error that names the field (not "invalid JSON").
        func rate(_ key: CodingKeys) throws -> UInt32? {
            guard let value = try c.decodeIfPresent(Int.self, forKey: key) else { return nil }
            guard let rate = UInt32(exactly: value) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: c,
                    debugDescription: ValidationError(
                        field: key.stringValue, value: String(value), reason: "is not a rate in Mbit/s (0 to 4294967295)"
                    ).description)
            }
            return rate
        }
        minTxRate = try rate(.minTxRate)
        maxTxRate = try rate(.maxTxRate)
        rssQuery = try c.decodeIfPresent(Bool.self, forKey: .rssQuery)
    }

    /// True when nothing is configured.
    public var isEmpty: Bool { self == VFConfig() }

    /// Checks the combinations that no single field can check on its own.
    /// Field names are prefixed with `prefix` (e.g. `"vfs[0]."`).
    public func validate(prefix: String = "") throws(ValidationError) {
        if let mac { _ = try mac.validatedAsUnicast(field: prefix + "mac") }
        if let qos, qos.value != 0, vlan == nil || vlan == VLANID.none {
            throw ValidationError(
                field: prefix + "qos", value: qos.description,
                reason: "needs a VLAN: a priority is carried in the VLAN tag, so set vlan to 1-4094 too")
        }
        if let vlanProto, vlanProto != .dot1Q, vlan == nil || vlan == VLANID.none {
            throw ValidationError(
                field: prefix + "vlanProto", value: vlanProto.description,
                reason: "needs a VLAN: set vlan to 1-4094 too")
        }
        if let minTxRate, let maxTxRate, maxTxRate != 0, minTxRate > maxTxRate {
            throw ValidationError(
                field: prefix + "minTxRate", value: String(minTxRate),
                reason: "is above maxTxRate (\(maxTxRate) Mbit/s)")
        }
    }
}
