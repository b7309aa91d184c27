/// The VF settings, each defined once: the groups the kernel takes as one
/// attribute, and the fields they hold. The writer, the controller (read
/// back, original, rollback, restore, scrub), assignments, reconcile, the
/// API, the configuration file and sriovctl all work from these two tables.
///
/// Adding a setting: a stored property in `VFSettingValues`, a field in
/// `VFSettingField.all`, a group here (with its netlink attribute), its
/// libnl call in SRIOVHost's `VFChangeRequest`, and its sriovctl option.

/// A group of VF settings that the kernel takes as one netlink attribute,
/// so they are written, verified, recorded and restored together. The
/// order of the cases is the order results are reported in.
public enum VFSettingGroup: String, Codable, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case mac
    /// VLAN id, QoS and protocol: one kernel attribute.
    case vlan
    case spoofCheck
    case trust
    /// IFLA_VF_RSS_QUERY_EN: the VF may query the PF's RSS key and table.
    case rssQuery
    case linkState
    /// Minimum and maximum TX rate: one kernel attribute.
    case txRate

    /// The netlink attribute that carries the group.
    public var attribute: VFNetlinkAttribute {
        switch self {
        case .mac: .mac
        case .vlan: .vlanList
        case .spoofCheck: .spoofCheck
        case .trust: .trust
        case .rssQuery: .rssQueryEnabled
        case .linkState: .linkState
        case .txRate: .rate
        }
    }

    /// How help texts name the group: "spoof check", "TX rates".
    public var name: String {
        switch self {
        case .mac: "MAC"
        case .vlan: "VLAN"
        case .spoofCheck: "spoof check"
        case .trust: "trust"
        case .rssQuery: "RSS query"
        case .linkState: "link state"
        case .txRate: "TX rates"
        }
    }

    /// `groups` named in a sentence, in the order sriovctl lists their
    /// options: "MAC, VLAN, ... or RSS query".
    public static func named(_ groups: [VFSettingGroup]) -> String {
        var names: [String] = []
        for field in VFSettingField.all where groups.contains(field.group) && !names.contains(field.group.name) {
            names.append(field.group.name)
        }
        guard let last = names.popLast() else { return "" }
        return names.isEmpty ? last : names.joined(separator: ", ") + " or " + last
    }

    /// The fields the group holds, in `VFSettingField.all`'s order.
    public var fields: [VFSettingField] { VFSettingField.all.filter { $0.group == self } }

    /// Whether a VF's settings may change while it is assigned to a VM NIC.
    /// The MAC is the guest's identity and stays as assigned.
    public var changesLive: Bool { self != .mac }

    /// The order in which groups are sent: link state last, so a VF is
    /// enabled only after the rest is set.
    public static let sendingOrder: [VFSettingGroup] = allCases.filter { $0 != .linkState } + [.linkState]

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    public var description: String { rawValue }

    // MARK: Rules

    /// The groups that have a field set in `values`.
    public static func groups(in values: VFSettingValues) -> Set<VFSettingGroup> {
        Set(allCases.filter { $0.isSet(in: values) })
    }

    public func isSet(in values: VFSettingValues) -> Bool { fields.contains { field in values[field] != nil } }

    /// Copies the group's fields (set or not) from `source` into `target`.
    public func copy(from source: VFSettingValues, to target: inout VFSettingValues) {
        for field in fields { field.copy(from: source, to: &target) }
    }

    /// What is sent to the kernel for `config`: the kernel takes a group
    /// whole, so a part not given is sent as its default (VLAN 0, QoS 0,
    /// 802.1Q; rate 0 = no limit).
    public func sent(_ config: VFSettingValues) -> VFSettingValues {
        var values = config.keeping([self])
        for field in fields where values[field] == nil { field.setKernelDefault(in: &values) }
        return values
    }

    /// A request completed from what the PF reports: a part the request does
    /// not give keeps its current value where the field says so (a minimum
    /// rate alone keeps the maximum), else its default when the PF reports
    /// none. Other parts not given are sent as their defaults (`sent`).
    public func completing(_ config: VFSettingValues, from reported: VFSettingValues) -> VFSettingValues {
        guard isSet(in: config) else { return config }
        var values = config
        for field in fields where field.keepsCurrent && values[field] == nil {
            field.copy(from: reported, to: &values)
            if values[field] == nil { field.setKernelDefault(in: &values) }
        }
        return values
    }

    /// `change` merged into `base` (an assignment's recorded settings, a
    /// PATCH): a field given replaces its value. A VLAN id given starts the
    /// tag anew: QoS not given goes back to 0, a protocol not given to unset.
    public func merge(_ change: VFSettingValues, into base: inout VFSettingValues) {
        guard isSet(in: change) else { return }
        if self == .vlan, let vlan = change.vlan {
            base.vlan = vlan
            base.qos = change.qos ?? .zero
            base.vlanProto = change.vlanProto
            return
        }
        for field in fields where change[field] != nil { field.copy(from: change, to: &base) }
    }

    /// Whether `reported` shows what `config` asks for in this group. A value
    /// the driver does not report cannot be confirmed and does not match.
    public func matches(_ config: VFSettingValues, reported: VFSettingValues) -> Bool {
        if self == .vlan {
            // One attribute: what is not given is sent as its default.
            let tag = sent(config)
            guard reported.vlan == tag.vlan, (reported.qos ?? .zero) == tag.qos else { return false }
            // Untagged has no protocol to compare.
            return tag.vlan == VLANID.none || (reported.vlanProto ?? .dot1Q) == tag.vlanProto
        }
        return fields.allSatisfy { field in config[field] == nil || field.isSame(in: config, and: reported) }
    }

    /// What the PF reports, as a config that writes this group back (for
    /// restore and rollback); empty when the driver did not report it.
    public func writingBack(_ reported: VFSettingValues) -> VFSettingValues {
        var config = reported.keeping([self])
        if self == .vlan {
            guard let vlan = reported.vlan else { return VFSettingValues() }
            config.qos = reported.qos ?? .zero
            config.vlanProto = vlan == VLANID.none ? nil : (reported.vlanProto ?? .dot1Q)
        }
        return config
    }

    /// The group as `name value` pairs, for messages: `vlan 100 qos 3`.
    /// QoS 0 and 802.1Q, and the protocol of an untagged VLAN, go without
    /// saying. For a request (`missing` nil), fields not given are left out;
    /// for what the PF reports, they are shown as `missing` ("unknown").
    public func summary(of values: VFSettingValues, naming: VFSettingField.Naming, missing: String?) -> String {
        var parts: [String] = []
        for field in fields where field.applies(to: values) {
            guard let value = values[field] else {
                if let missing, !field.goesWithoutSaying(nil) { parts.append("\(field.name(naming)) \(missing)") }
                continue
            }
            if !field.goesWithoutSaying(value) { parts.append("\(field.name(naming)) \(value)") }
        }
        if parts.isEmpty, let lead = fields.first {
            // A VLAN tag given only as QoS 0 or 802.1Q: untagged.
            parts.append("\(lead.name(naming)) \(sent(values)[lead].map { "\($0)" } ?? missing ?? "unset")")
        }
        return parts.joined(separator: " ")
    }
}

/// The netlink attributes (inside IFLA_VFINFO_LIST > IFLA_VF_INFO) that
/// carry the groups, by their kernel names. The libnl calls that build them
/// are SRIOVHost's.
public enum VFNetlinkAttribute: String, Sendable, Hashable, CaseIterable {
    case mac = "IFLA_VF_MAC"
    /// libnl sends an 802.1Q tag as the plain IFLA_VF_VLAN, which every
    /// driver takes, and any other protocol in IFLA_VF_VLAN_LIST.
    case vlanList = "IFLA_VF_VLAN_LIST"
    case spoofCheck = "IFLA_VF_SPOOFCHK"
    case trust = "IFLA_VF_TRUST"
    case rssQueryEnabled = "IFLA_VF_RSS_QUERY_EN"
    case linkState = "IFLA_VF_LINK_STATE"
    /// Minimum and maximum together (the old IFLA_VF_TX_RATE has only the maximum).
    case rate = "IFLA_VF_RATE"
}

/// One field of a VF setting group, with its names at each edge: `key` in
/// the API (`vlanProto`), from which the configuration file's key
/// (`vlan_proto`) and sriovctl's option (`--vlan-proto`) follow.
public struct VFSettingField: Sendable, Hashable, CustomStringConvertible {
    /// Every field, in the order the API writes them and sriovctl lists them.
    public static let all: [VFSettingField] = [
        VFSettingField(
            "mac", \.mac, group: .mac, label: "MAC", scrubbed: .zero,
            help: "The VF's MAC address, unicast, e.g. 52:54:00:12:34:56.", valueName: "mac"),
        VFSettingField(
            "vlan", \.vlan, group: .vlan, label: "VLAN", kernelDefault: VLANID.none, scrubbed: VLANID.none,
            help: "The port VLAN id, 1-4094; 0 removes the VLAN.", valueName: "id"),
        VFSettingField(
            "qos", \.qos, group: .vlan, label: "QoS", kernelDefault: .zero, scrubbed: .zero, quietAtDefault: true,
            help: "The 802.1p priority of the VLAN tag, 0-7; needs a VLAN (--vlan).", valueName: "n"),
        VFSettingField(
            "vlanProto", \.vlanProto, group: .vlan, label: "VLAN protocol", kernelDefault: .dot1Q, scrubbed: .dot1Q,
            quietAtDefault: true, appliesWhenTagged: true,
            help: "The VLAN tag protocol; 802.1ad needs a VLAN (--vlan).", valueName: "802.1Q|802.1ad"),
        VFSettingField(
            "spoofCheck", \.spoofCheck, group: .spoofCheck, label: "Spoof check", scrubbed: true,
            help: "Whether the PF drops frames with a source MAC not the VF's.", valueName: "on|off"),
        VFSettingField(
            "trust", \.trust, group: .trust, label: "Trust", scrubbed: false,
            help: "Whether the VF may change its MAC and use promiscuous modes.", valueName: "on|off"),
        VFSettingField(
            "linkState", \.linkState, group: .linkState, label: "Link state", scrubbed: .disable,
            help: "The VF's link: follow the PF's, or force it up or down.", valueName: "auto|enable|disable"),
        VFSettingField(
            "minTxRate", \.minTxRate, group: .txRate, label: "Min TX rate", kernelDefault: 0, keepsCurrent: true,
            configForm: .integer(0...Int(UInt32.max), meaning: "Mbit/s; 0 means no minimum"),
            display: { $0 == 0 ? "0 (none)" : "\($0) Mbit/s" },
            help: "Guaranteed TX rate in Mbit/s; 0 is none.", valueName: "mbps"),
        VFSettingField(
            "maxTxRate", \.maxTxRate, group: .txRate, label: "Max TX rate", kernelDefault: 0, keepsCurrent: true,
            configForm: .integer(0...Int(UInt32.max), meaning: "Mbit/s; 0 means no limit"),
            display: { $0 == 0 ? "0 (no limit)" : "\($0) Mbit/s" },
            help: "TX rate limit in Mbit/s; 0 is no limit.", valueName: "mbps"),
        VFSettingField(
            "rssQuery", \.rssQuery, group: .rssQuery, label: "RSS query", scrubbed: false,
            help: "Whether the VF may query the PF's RSS hash key and table (not every driver has it).",
            valueName: "on|off"),
    ]

    /// The API's (JSON) name.
    public let key: String
    public let group: VFSettingGroup
    /// How sriovctl names it in a list of settings: "VLAN protocol".
    public let label: String
    /// sriovctl's help for its option, and the option's value name.
    public let help: String
    public let valueName: String
    /// How the configuration file writes it.
    public let configForm: VFSettingConfigForm
    private let access: Access

    /// The names of a field at each edge.
    public enum Naming: Sendable {
        /// `vlanProto`, as the API and log records name it.
        case api
        /// `vlan_proto`, as the configuration file names it.
        case config
    }

    /// `vlan_proto`.
    public var configKey: String { Self.separated(key, by: "_") }
    /// `--vlan-proto`.
    public var option: String { "--" + Self.separated(key, by: "-") }

    public func name(_ naming: Naming) -> String {
        switch naming {
        case .api: key
        case .config: configKey
        }
    }

    /// The field with this API name.
    public static func named(_ key: String) -> VFSettingField? { all.first { $0.key == key } }

    public var description: String { key }
    public static func == (a: Self, b: Self) -> Bool { a.key == b.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    // MARK: Values

    public func value(in values: VFSettingValues) -> (any VFSettingValue)? { access.get(values) }

    /// Sets the field from an input (command-line text, a configuration
    /// value); a refusal names `field`.
    public func set(_ input: VFSettingInput, field: String, in values: inout VFSettingValues) throws(ValidationError) {
        try access.set(input, field, &values)
    }

    public func clear(in values: inout VFSettingValues) { access.clear(&values) }

    public func copy(from source: VFSettingValues, to target: inout VFSettingValues) { access.copy(source, &target) }

    /// As sriovctl shows it in a list of settings; nil when unset.
    public func displayText(in values: VFSettingValues) -> String? { access.display(values) }

    /// Sets the value a cleared VF has (`scrub`); false when scrub leaves the field alone.
    @discardableResult
    public func setScrubbed(in values: inout VFSettingValues) -> Bool { access.setScrubbed(&values) }

    func setKernelDefault(in values: inout VFSettingValues) { access.setKernelDefault(&values) }

    /// Whether `a` and `b` hold the same value (or both none) in this field.
    func isSame(in a: VFSettingValues, and b: VFSettingValues) -> Bool { access.same(a, b) }

    /// Whether a request that sets the group but not this part keeps the
    /// part's current value (rather than its default).
    var keepsCurrent: Bool { access.keepsCurrent }

    /// Whether the field means anything given the rest (a VLAN protocol
    /// only with a VLAN tag); a VLAN not known counts as tagged.
    func applies(to values: VFSettingValues) -> Bool { !access.appliesWhenTagged || values.vlan != VLANID.none }

    /// QoS 0 and 802.1Q (or their absence) go without saying next to a VLAN id.
    func goesWithoutSaying(_ value: (any VFSettingValue)?) -> Bool {
        guard access.isDetail else { return false }
        return value.map { access.isKernelDefault($0) } ?? true
    }

    // MARK: Coding

    public struct CodingKey: Swift.CodingKey, Sendable {
        public let stringValue: String
        public init(stringValue: String) { self.stringValue = stringValue }
        public var intValue: Int? { nil }
        public init?(intValue: Int) { nil }
    }

    func decode(from container: KeyedDecodingContainer<CodingKey>, into values: inout VFSettingValues) throws {
        try access.decode(container, CodingKey(stringValue: key), &values)
    }

    func encode(_ values: VFSettingValues, into container: inout KeyedEncodingContainer<CodingKey>) throws {
        try access.encode(values, CodingKey(stringValue: key), &container)
    }

    // MARK: Definition

    /// The typed operations on the field's stored property.
    private struct Access: Sendable {
        let get: @Sendable (VFSettingValues) -> (any VFSettingValue)?
        let set: @Sendable (VFSettingInput, String, inout VFSettingValues) throws(ValidationError) -> Void
        let clear: @Sendable (inout VFSettingValues) -> Void
        let copy: @Sendable (VFSettingValues, inout VFSettingValues) -> Void
        let display: @Sendable (VFSettingValues) -> String?
        let setScrubbed: @Sendable (inout VFSettingValues) -> Bool
        let setKernelDefault: @Sendable (inout VFSettingValues) -> Void
        let isKernelDefault: @Sendable (any VFSettingValue) -> Bool
        let same: @Sendable (VFSettingValues, VFSettingValues) -> Bool
        let decode: @Sendable (KeyedDecodingContainer<CodingKey>, CodingKey, inout VFSettingValues) throws -> Void
        let encode: @Sendable (VFSettingValues, CodingKey, inout KeyedEncodingContainer<CodingKey>) throws -> Void
        /// A part of a group that goes without saying at its default (QoS, protocol).
        let isDetail: Bool
        let appliesWhenTagged: Bool
        let keepsCurrent: Bool
    }

    /// - Parameters:
    ///   - kernelDefault: what the kernel is sent for this part of its group
    ///     when it is not given (the group is one attribute).
    ///   - scrubbed: its value on a VF cleared for its next user; nil: scrub leaves it.
    ///   - quietAtDefault: goes without saying at its kernel default (QoS 0, 802.1Q).
    ///   - appliesWhenTagged: meaningful only with a VLAN tag.
    ///   - keepsCurrent: a request that sets its group but not this part
    ///     keeps the part's current value.
    init<Value: VFSettingValue>(
        _ key: String, _ path: WritableKeyPath<VFSettingValues, Value?> & Sendable, group: VFSettingGroup,
        label: String, kernelDefault: Value? = nil, scrubbed: Value? = nil, quietAtDefault: Bool = false,
        appliesWhenTagged: Bool = false, keepsCurrent: Bool = false,
        configForm: VFSettingConfigForm = Value.configForm, display: (@Sendable (Value) -> String)? = nil,
        help: String, valueName: String
    ) {
        self.key = key
        self.group = group
        self.label = label
        self.help = help
        self.valueName = valueName
        self.configForm = configForm
        access = Access(
            get: { $0[keyPath: path] },
            set: { input, field, values throws(ValidationError) in values[keyPath: path] = try Value(input, field: field) },
            clear: { $0[keyPath: path] = nil },
            copy: { source, target in target[keyPath: path] = source[keyPath: path] },
            display: { values in values[keyPath: path].map { display?($0) ?? $0.displayText } },
            setScrubbed: { values in
                guard let scrubbed else { return false }
                values[keyPath: path] = scrubbed
                return true
            },
            setKernelDefault: { $0[keyPath: path] = kernelDefault },
            isKernelDefault: { value in (value as? Value) == kernelDefault },
            same: { a, b in a[keyPath: path] == b[keyPath: path] },
            decode: { container, codingKey, values in
                values[keyPath: path] = try Value.decodeJSON(from: container, key: codingKey)
            },
            encode: { values, codingKey, container in
                try container.encodeIfPresent(values[keyPath: path], forKey: codingKey)
            },
            isDetail: quietAtDefault,
            appliesWhenTagged: appliesWhenTagged, keepsCurrent: keepsCurrent)
    }

    /// `vlanProto` → `vlan_proto` with `_`.
    private static func separated(_ camelCase: String, by separator: Character) -> String {
        var out = ""
        for character in camelCase {
            if character.isUppercase {
                out.append(separator)
                out += character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }
}
