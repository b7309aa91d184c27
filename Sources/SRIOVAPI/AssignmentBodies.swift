import SRIOVCore

/// `POST /v1/assignments`: a VF for a VM NIC, from a pool or a PF, with the
/// driver to hand it over with and the settings to give it. One flat object:
/// the settings beside vm, nic... Decoded as sent, then `validated()`, so
/// that a refusal names the field.
public struct AssignmentRequest: Sendable, Hashable, Codable {
    public var vm: String
    public var nic: String
    public var pool: String?
    public var pf: PCIAddress?
    /// Prefer VFs of PFs on this NUMA node.
    public var numaNode: Int?
    public var driver: AssignmentDriver
    /// The VF settings asked for; any may be left out.
    public var config: VFConfig
    /// How to reach the guest and its standby NIC; the VF is attached
    /// through this adapter when it is assigned. nil: the VM is given the
    /// VF as a device and attaches it itself.
    public var failover: FailoverSpec?

    enum CodingKeys: String, CodingKey, CaseIterable { case vm, nic, pool, pf, numaNode, driver, failover }

    /// The members a request may have: its own and the VF settings.
    public static var keys: Set<String> { VFConfig.keys.union(CodingKeys.names) }

    public init(
        vm: String, nic: String, pool: String? = nil, pf: PCIAddress? = nil, numaNode: Int? = nil,
        driver: AssignmentDriver, config: VFConfig = VFConfig(), failover: FailoverSpec? = nil
    ) {
        self.vm = vm
        self.nic = nic
        self.pool = pool
        self.pf = pf
        self.numaNode = numaNode
        self.driver = driver
        self.config = config
        self.failover = failover
    }

    public init(from decoder: any Decoder) throws {
        try self.init(decodingFrom: decoder, vm: nil)
    }

    /// Decodes a request; with `vm` given, the body has no `vm` member (a
    /// migrating NIC's body).
    init(decodingFrom decoder: any Decoder, vm givenVM: String?) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vm = try givenVM ?? c.decode(String.self, forKey: .vm)
        nic = try c.decode(String.self, forKey: .nic)
        pool = try c.decodeIfPresent(String.self, forKey: .pool)
        pf = try c.decodeIfPresent(PCIAddress.self, forKey: .pf)
        numaNode = try c.decodeIfPresent(Int.self, forKey: .numaNode)
        driver = try c.decode(AssignmentDriver.self, forKey: .driver)
        config = try VFConfig(from: decoder)
        failover = try c.decodeIfPresent(FailoverSpec.self, forKey: .failover)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vm, forKey: .vm)
        try c.encode(nic, forKey: .nic)
        try c.encodeIfPresent(pool, forKey: .pool)
        try c.encodeIfPresent(pf, forKey: .pf)
        try c.encodeIfPresent(numaNode, forKey: .numaNode)
        try c.encode(driver, forKey: .driver)
        try c.encodeIfPresent(failover, forKey: .failover)
        try config.encode(to: encoder)
    }

    /// Checks what no single field can: names, one of pool/pf, the settings.
    public func validated() throws(ValidationError) -> NICKey {
        let key = try NICKey(vm: vm, nic: nic)
        switch (pool, pf) {
        case (nil, nil):
            throw ValidationError(field: "pool", value: "", reason: "or pf is required: say where the VF comes from")
        case (.some, .some(let pf)):
            throw ValidationError(field: "pf", value: pf.description, reason: "cannot be given with pool; give one of them")
        default: break
        }
        guard driver.isKnown else {
            throw ValidationError(
                field: "driver", value: driver.rawValue, reason: "is not a driver choice; use \"vfio-pci\" or \"host\"")
        }
        if let numaNode, numaNode < 0 {
            throw ValidationError(field: "numaNode", value: String(numaNode), reason: "must be 0 or more")
        }
        try config.validate()
        if let failover { try Self.check(failover, driver: driver, mac: config.mac, field: "failover") }
        return key
    }

    /// What a failover NIC needs beyond its own members: the driver its
    /// adapter attaches (a netdev for a namespace, vfio-pci for QEMU) and
    /// the guest's MAC, which the standby also has.
    public static func check(
        _ failover: FailoverSpec, driver: AssignmentDriver, mac: MACAddress?, field: String
    ) throws(ValidationError) {
        switch failover {
        case .netns where driver != .host:
            throw ValidationError(
                field: "driver", value: driver.rawValue,
                reason: "must be \"host\" with a netns failover: the VF's netdev is moved into the namespace")
        case .qmp where driver != .vfio:
            throw ValidationError(
                field: "driver", value: driver.rawValue,
                reason: "must be \"vfio-pci\" with a qmp failover: QEMU plugs the VF as a vfio-pci device")
        default: break
        }
        if mac == nil {
            throw ValidationError(
                field: "mac", value: "",
                reason: "is required with \(field): the VF must carry the guest's MAC, the one its standby NIC has")
        }
    }
}

/// The body of `PATCH /v1/assignments/{vm}/{nic}` is a `VFConfig` of live
/// settings only: the MAC is the guest's identity and stays as assigned.
public enum AssignmentChangeBody {
    /// The members a change may have.
    public static var keys: Set<String> { VFConfig.keys.subtracting(["mac"]) }
}

/// The answer to `PATCH /v1/assignments/{vm}/{nic}`: the assignment
/// afterwards and what happened to each setting group.
public struct AssignmentChangeResponse: Hashable, Sendable, Codable {
    public var assignment: Assignment
    public var results: [SettingResult]

    public init(assignment: Assignment, results: [SettingResult]) {
        self.assignment = assignment
        self.results = results
    }
}

/// `GET /v1/assignments`.
public struct AssignmentList: Hashable, Sendable, Codable {
    public var assignments: [Assignment]
    public init(assignments: [Assignment]) { self.assignments = assignments }
}
