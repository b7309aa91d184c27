import Foundation
import SRIOVCore

/// A VM NIC's identity: which VM, which of its NICs. Both are names the
/// orchestrator chooses: 1-128 of letters, digits, `.`, `_`, `:`, `-`.
public struct NICKey: Hashable, Sendable, Codable, CustomStringConvertible {
    public var vm: String
    public var nic: String

    public init(vm: String, nic: String) throws(ValidationError) {
        self.vm = try Self.checked(vm, field: "vm")
        self.nic = try Self.checked(nic, field: "nic")
    }

    init(unchecked vm: String, nic: String) {
        self.vm = vm
        self.nic = nic
    }

    static func checked(_ name: String, field: String) throws(ValidationError) -> String {
        guard !name.isEmpty, name.utf8.count <= 128 else {
            throw ValidationError(field: field, value: name, reason: "must be 1-128 characters")
        }
        let allowed = name.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains(Character($0)))) || "._:-".unicodeScalars.contains($0)
        }
        guard allowed else {
            throw ValidationError(field: field, value: name, reason: "may only contain letters, digits, '.', '_', ':' and '-'")
        }
        return name
    }

    public var description: String { "\(vm)/\(nic)" }
}

/// The driver an assigned VF is handed over with.
public enum AssignmentDriver: String, Codable, Sendable, Hashable {
    case vfio = "vfio-pci"
    case host

    var choice: VFDriverChoice { self == .vfio ? .vfio : .host }
}

/// What an orchestrator asks for: `POST /v1/assignments`.
public struct AssignmentRequest: Sendable, Hashable, Codable {
    public var vm: String
    public var nic: String
    public var pool: String?
    public var pf: PCIAddress?
    public var numaNode: Int?
    public var driver: AssignmentDriver
    public var config: VFConfig

    public static let keys: Set<String> = VFConfig.keys.union(["vm", "nic", "pool", "pf", "numaNode", "driver"])

    enum CodingKeys: String, CodingKey { case vm, nic, pool, pf, numaNode, driver }

    public init(vm: String, nic: String, pool: String? = nil, pf: PCIAddress? = nil, numaNode: Int? = nil,
                driver: AssignmentDriver, config: VFConfig = VFConfig()) {
        self.vm = vm
        self.nic = nic
        self.pool = pool
        self.pf = pf
        self.numaNode = numaNode
        self.driver = driver
        self.config = config
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vm = try c.decode(String.self, forKey: .vm)
        nic = try c.decode(String.self, forKey: .nic)
        pool = try c.decodeIfPresent(String.self, forKey: .pool)
        pf = try c.decodeIfPresent(PCIAddress.self, forKey: .pf)
        numaNode = try c.decodeIfPresent(Int.self, forKey: .numaNode)
        driver = try c.decode(AssignmentDriver.self, forKey: .driver)
        config = try VFConfig(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vm, forKey: .vm)
        try c.encode(nic, forKey: .nic)
        try c.encodeIfPresent(pool, forKey: .pool)
        try c.encodeIfPresent(pf, forKey: .pf)
        try c.encodeIfPresent(numaNode, forKey: .numaNode)
        try c.encode(driver, forKey: .driver)
        try config.encode(to: encoder)
    }

    /// Checks what no single field can: names, one of pool/pf, the settings.
    public func validated() throws(ValidationError) -> NICKey {
        let key = try NICKey(vm: vm, nic: nic)
        switch (pool, pf) {
        case (nil, nil):
            throw ValidationError(field: "pool", value: "", reason: "or pf is required: say where the VF comes from")
        case (.some, .some):
            throw ValidationError(field: "pf", value: pf!.description, reason: "cannot be given with pool; give one of them")
        default: break
        }
        if let numaNode, numaNode < 0 {
            throw ValidationError(field: "numaNode", value: String(numaNode), reason: "must be 0 or more")
        }
        try config.validate()
        return key
    }
}

/// Where an assignment is in its life. `assigning` and `releasing` are
/// intents written before the hardware is touched: after a crash, the
/// daemon rolls an `assigning` back and a `releasing` forward.
public enum AssignmentState: String, Codable, Sendable {
    case assigning
    case assigned
    case releasing
    /// Only in answers: the assignment no longer exists.
    case released
}

/// A VF given to a VM NIC, as the API shows it.
public struct Assignment: Sendable, Hashable, Codable {
    public var vm: String
    public var nic: String
    public var vf: PCIAddress
    public var pf: PCIAddress
    public var vfIndex: Int
    public var pool: String?
    public var driver: AssignmentDriver
    /// The settings asked for (nil: left alone).
    public var config: VFConfig
    public var state: AssignmentState
    /// The driver the VF had before; it gets it back on release.
    public var previousDriver: String?
    /// The VF's network interface (driver "host").
    public var netdev: String?
    /// `/dev/vfio/<group>` (driver "vfio-pci").
    public var vfioDevice: String?
    public var iommuGroup: Int?
    public var numaNode: Int?
    public var createdAt: Date
    public var updatedAt: Date

    var key: NICKey { NICKey(unchecked: vm, nic: nic) }
}
