#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A VM NIC's identity: which VM, which of its NICs. Both are names the
/// orchestrator chooses: 1-128 of ASCII letters, digits, `.`, `_`, `:`, `-`
/// (always safe in a request path). The daemon and sriovctl check them with
/// this one rule.
public struct NICKey: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let vm: String
    public let nic: String

    public init(vm: String, nic: String) throws(ValidationError) {
        self.vm = try Self.checkedName(vm, field: "vm")
        self.nic = try Self.checkedName(nic, field: "nic")
    }

    /// For names read back from where they were checked before (the state store).
    package init(unchecked vm: String, nic: String) {
        self.vm = vm
        self.nic = nic
    }

    /// One VM or NIC name, checked; refusals name `field`.
    public static func checkedName(_ name: String, field: String) throws(ValidationError) -> String {
        guard !name.isEmpty, name.utf8.count <= 128 else {
            throw ValidationError(field: field, value: name, reason: "must be 1-128 characters")
        }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII
                && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                    || "._:-".unicodeScalars.contains(scalar))
        }
        guard allowed else {
            throw ValidationError(field: field, value: name, reason: "may only contain letters, digits, '.', '_', ':' and '-'")
        }
        return name
    }

    public static func < (a: NICKey, b: NICKey) -> Bool { (a.vm, a.nic) < (b.vm, b.nic) }

    /// "vm/nic", as messages write it.
    public var description: String { "\(vm)/\(nic)" }
}

/// A pool name of the configuration: 1-64 ASCII letters, digits, `_`, `.`,
/// `-`, starting with a letter or digit.
public enum PoolName {
    public static func isValid(_ name: String) -> Bool {
        func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
            c.isASCII && (("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c))
        }
        guard let first = name.unicodeScalars.first, name.utf8.count <= 64, isAlphanumeric(first) else { return false }
        return name.unicodeScalars.allSatisfy { isAlphanumeric($0) || "_.-".unicodeScalars.contains($0) }
    }

    public static let rule = "1-64 letters, digits, '_', '.' and '-', starting with a letter or digit"

    public static func checked(_ name: String, field: String) throws(ValidationError) -> String {
        guard isValid(name) else { throw ValidationError(field: field, value: name, reason: "is not a pool name: \(rule)") }
        return name
    }
}

/// The driver an assigned VF is handed over with. Coded as its name (the
/// standard library's RawRepresentable coding); any name is kept when
/// decoded, so a client shows a newer daemon's drivers; `isKnown` says
/// whether this version can hand a VF over with it.
public struct AssignmentDriver: RawRepresentable, Hashable, Sendable, Codable, TextParsable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// For passing the VF to a VM: the VM opens `/dev/vfio/<group>`.
    public static let vfio = AssignmentDriver(rawValue: "vfio-pci")
    /// The kernel's own VF driver: the VM NIC is the VF's netdev (e.g. macvtap).
    public static let host = AssignmentDriver(rawValue: "host")

    public var isKnown: Bool { self == .vfio || self == .host }

    public static func parse(_ text: String, field: String) throws(ValidationError) -> AssignmentDriver {
        let driver = AssignmentDriver(rawValue: text.lowercased())
        guard driver.isKnown else {
            throw ValidationError(field: field, value: text, reason: "is not a driver choice; use \"vfio-pci\" or \"host\"")
        }
        return driver
    }

    public var description: String { rawValue }
}

/// Where an assignment is in its life. `assigning` and `releasing` are
/// intents written before the hardware is touched: after a crash, the daemon
/// rolls an `assigning` back and a `releasing` forward. Any name is kept
/// when decoded, as for `AssignmentDriver`.
public struct AssignmentState: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Being set up; after a crash the daemon rolls it back.
    public static let assigning = AssignmentState(rawValue: "assigning")
    public static let assigned = AssignmentState(rawValue: "assigned")
    /// Being taken back; after a crash the daemon finishes it.
    public static let releasing = AssignmentState(rawValue: "releasing")
    /// Only in the answer to a release: the assignment no longer exists.
    public static let released = AssignmentState(rawValue: "released")
    /// Its VF is gone with its PF's driver (or the PF left the bus): the
    /// assignment is kept, and healed when the PF is back (`reason` says why).
    public static let degraded = AssignmentState(rawValue: "degraded")
    /// Healing gave up after its attempts (`reason` says why); the next
    /// return of the PF tries again, or the NIC is released.
    public static let failed = AssignmentState(rawValue: "failed")

    public var description: String { rawValue }
}

/// A VF given to a VM NIC, as the API shows it.
public struct Assignment: Hashable, Sendable, Codable {
    public var vm: String
    public var nic: String
    public var vf: PCIAddress
    public var pf: PCIAddress
    public var vfIndex: Int
    public var pool: String?
    public var driver: AssignmentDriver
    /// The settings asked for; nil fields were left as the VF had them.
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
    /// How the guest is reached (see `FailoverSpec`); nil when sriovd only hands the VF over.
    public var failover: FailoverSpec?
    /// Why the assignment is `degraded` or `failed`; nil otherwise.
    public var reason: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        vm: String, nic: String, vf: PCIAddress, pf: PCIAddress, vfIndex: Int, pool: String? = nil,
        driver: AssignmentDriver, config: VFConfig = VFConfig(), state: AssignmentState,
        previousDriver: String? = nil, netdev: String? = nil, vfioDevice: String? = nil, iommuGroup: Int? = nil,
        numaNode: Int? = nil, failover: FailoverSpec? = nil, reason: String? = nil, createdAt: Date, updatedAt: Date
    ) {
        self.reason = reason
        self.vm = vm
        self.nic = nic
        self.vf = vf
        self.pf = pf
        self.vfIndex = vfIndex
        self.pool = pool
        self.driver = driver
        self.config = config
        self.state = state
        self.previousDriver = previousDriver
        self.netdev = netdev
        self.vfioDevice = vfioDevice
        self.iommuGroup = iommuGroup
        self.numaNode = numaNode
        self.failover = failover
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Whose VF it is.
    public var key: NICKey { NICKey(unchecked: vm, nic: nic) }

    /// What the VM is given: `/dev/vfio/N` for vfio-pci, else the VF's
    /// netdev. nil when the daemon found neither.
    public var device: String? { driver == .vfio ? vfioDevice : netdev ?? vfioDevice }
}
