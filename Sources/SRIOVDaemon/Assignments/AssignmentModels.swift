import Foundation
import SRIOVCore
import SRIOVHost

extension AssignmentDriver {
    /// What the controller binds for it (only known drivers are accepted).
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
        guard driver.isKnown else {
            throw ValidationError(
                field: "driver", value: driver.rawValue, reason: "is not a driver choice; use \"vfio-pci\" or \"host\"")
        }
        if let numaNode, numaNode < 0 {
            throw ValidationError(field: "numaNode", value: String(numaNode), reason: "must be 0 or more")
        }
        try config.validate()
        return key
    }
}
