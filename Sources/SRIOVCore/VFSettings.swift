/// A VF's settings, field by field. The same fields serve in two roles, named
/// by the two aliases below: what the PF reports (`VFSettings`) and what
/// someone asks for (`VFConfig`). Which fields there are, how they group into
/// kernel attributes and how each is named, parsed and shown is said once, in
/// `VFSettingField` and `VFSettingGroup`.
public struct VFSettingValues: Hashable, Sendable {
    public var mac: MACAddress?
    public var vlan: VLANID?
    public var qos: VLANQoS?
    public var vlanProto: VLANProtocol?
    public var spoofCheck: Bool?
    public var trust: Bool?
    public var linkState: VFLinkState?
    /// Mbit/s; 0 means no minimum.
    public var minTxRate: UInt32?
    /// Mbit/s; 0 means no limit.
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
}

/// A VF's settings as the PF's netlink reply reports them (IFLA_VF_INFO).
/// A nil field means the driver did not report that attribute.
public typealias VFSettings = VFSettingValues

/// VF settings someone asked for. A nil field means "not configured": it is
/// neither applied nor, later, restored.
public typealias VFConfig = VFSettingValues

extension VFSettingValues {
    /// The value of `field`, nil when unset.
    public subscript(field: VFSettingField) -> (any VFSettingValue)? { field.value(in: self) }

    /// True when nothing is set.
    public var isEmpty: Bool { self == VFSettingValues() }

    /// The JSON keys of a config, as requests spell them.
    public static let keys: Set<String> = Set(VFSettingField.all.map(\.key))

    /// The same values without `group`'s fields.
    public func clearing(_ group: VFSettingGroup) -> VFSettingValues {
        var values = self
        for field in group.fields { field.clear(in: &values) }
        return values
    }

    /// Only the fields of `groups`.
    public func keeping(_ groups: some Sequence<VFSettingGroup>) -> VFSettingValues {
        var values = VFSettingValues()
        for group in groups { group.copy(from: self, to: &values) }
        return values
    }

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

extension VFSettingValues: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: VFSettingField.CodingKey.self)
        self.init()
        for field in VFSettingField.all { try field.decode(from: container, into: &self) }
    }

    /// Only the fields that are set, in `VFSettingField.all`'s order.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: VFSettingField.CodingKey.self)
        for field in VFSettingField.all { try field.encode(self, into: &container) }
    }
}
