import SRIOVCore

/// `PUT /v1/pfs/{pciAddress}`: a PF's VF count and/or `sriov_drivers_autoprobe`.
/// Only what is set is sent; `force` only when it is true.
public struct PFChange: Hashable, Sendable, Codable {
    public var numVFs: Int?
    public var driversAutoprobe: Bool?
    /// Lower the VF count even when a VF that would go is in use.
    public var force: Bool

    public init(numVFs: Int? = nil, driversAutoprobe: Bool? = nil, force: Bool = false) {
        self.numVFs = numVFs
        self.driversAutoprobe = driversAutoprobe
        self.force = force
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case numVFs, driversAutoprobe, force }

    /// The members a request may have.
    public static var keys: Set<String> { CodingKeys.names }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numVFs = try c.decodeIfPresent(Int.self, forKey: .numVFs)
        driversAutoprobe = try c.decodeIfPresent(Bool.self, forKey: .driversAutoprobe)
        force = try c.decodeIfPresent(Bool.self, forKey: .force) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(numVFs, forKey: .numVFs)
        try c.encodeIfPresent(driversAutoprobe, forKey: .driversAutoprobe)
        if force { try c.encode(true, forKey: .force) }
    }

    /// Whether the change sets anything (`force` alone does not).
    public var isEmpty: Bool { numVFs == nil && driversAutoprobe == nil }
}

/// `POST /v1/vfs/{pciAddress}/driver`.
public struct DriverChange: Hashable, Sendable, Codable {
    public var driver: VFDriverChoice

    public init(driver: VFDriverChoice) { self.driver = driver }

    enum CodingKeys: String, CodingKey, CaseIterable { case driver }

    /// The members a request may have.
    public static var keys: Set<String> { CodingKeys.names }
}

/// The outcome of one group of VF settings. VLAN id, QoS and protocol are
/// one group (`vlan`), as are the minimum and maximum TX rate (`txRate`).
public struct SettingResult: Hashable, Sendable, Codable {
    public var setting: Setting
    public var outcome: Outcome
    /// Why, for the outcomes that need saying: the driver's error, what the PF reads back.
    public var detail: String?

    public init(setting: Setting, outcome: Outcome, detail: String? = nil) {
        self.setting = setting
        self.outcome = outcome
        self.detail = detail
    }

    /// One of this version's setting groups.
    public init(setting: VFSettingGroup, outcome: Outcome, detail: String? = nil) {
        self.init(setting: Setting(setting), outcome: outcome, detail: detail)
    }

    /// A group of settings as the API names it (`VFSettingGroup`). Any name
    /// is kept, so a newer daemon's groups are still shown.
    public struct Setting: OpenName {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(_ group: VFSettingGroup) { rawValue = group.rawValue }

        /// The group, when this version knows it.
        public var group: VFSettingGroup? { VFSettingGroup(rawValue: rawValue) }
    }

    /// What happened to a group. Any name is kept, as for `Setting`.
    public struct Outcome: OpenName {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// Written and read back as asked.
        public static let applied: Outcome = "applied"
        /// Already as asked; nothing written.
        public static let unchanged: Outcome = "unchanged"
        /// The VF's driver cannot do it; the other settings went on. Not an error.
        public static let unsupported: Outcome = "unsupported"
        public static let failed: Outcome = "failed"
        /// Written, then undone because another setting of the request failed.
        public static let rolledBack: Outcome = "rolledBack"
        /// Not attempted: nothing is known to restore it to.
        public static let skipped: Outcome = "skipped"
    }
}

/// The answer to `PATCH /v1/vfs/{pciAddress}`, `.../restore` and `.../scrub`:
/// the VF afterwards and what happened to each setting group. A change that
/// failed answers with a `FailedVFChange` instead.
public struct VFChangeResponse: Hashable, Sendable, Codable {
    public var vf: VirtualFunction
    public var results: [SettingResult]

    public init(vf: VirtualFunction, results: [SettingResult]) {
        self.vf = vf
        self.results = results
    }
}
