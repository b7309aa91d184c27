#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SRIOVCore

/// One VM NIC of a migration: the body of `POST /v1/assignments` without
/// `vm` (nic, pool or pf, driver, the VF settings, failover). `prepare`
/// answers with these and `incoming` takes them, so a script passes them on.
public struct MigrationNIC: Sendable, Hashable, Codable {
    public var nic: String
    public var pool: String?
    public var pf: PCIAddress?
    public var numaNode: Int?
    public var driver: AssignmentDriver
    public var config: VFConfig
    public var failover: FailoverSpec?

    public static var keys: Set<String> { AssignmentRequest.keys.subtracting(["vm"]) }

    public init(
        nic: String, pool: String? = nil, pf: PCIAddress? = nil, numaNode: Int? = nil, driver: AssignmentDriver,
        config: VFConfig = VFConfig(), failover: FailoverSpec? = nil
    ) {
        self.nic = nic
        self.pool = pool
        self.pf = pf
        self.numaNode = numaNode
        self.driver = driver
        self.config = config
        self.failover = failover
    }

    /// The NIC of an assignment request.
    public init(_ request: AssignmentRequest) {
        self.init(
            nic: request.nic, pool: request.pool, pf: request.pf, numaNode: request.numaNode, driver: request.driver,
            config: request.config, failover: request.failover)
    }

    public func request(vm: String) -> AssignmentRequest {
        AssignmentRequest(
            vm: vm, nic: nic, pool: pool, pf: pf, numaNode: numaNode, driver: driver, config: config, failover: failover)
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let members = try decoder.container(keyedBy: AnyKey.self)
        for key in members.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) where !Self.keys.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: decoder.codingPath + [key],
                debugDescription: "is not a known field; known fields: \(Self.keys.sorted().joined(separator: ", "))"))
        }
        for key in members.allKeys where try members.decodeNil(forKey: key) {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: decoder.codingPath + [key],
                debugDescription: "must not be null; leave the field out to leave it alone"))
        }
        self.init(try AssignmentRequest(decodingFrom: decoder, vm: ""))
    }

    public func encode(to encoder: any Encoder) throws {
        try request(vm: "").encodeWithoutVM(to: encoder)
    }
}

extension AssignmentRequest {
    func encodeWithoutVM(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(nic, forKey: .nic)
        try c.encodeIfPresent(pool, forKey: .pool)
        try c.encodeIfPresent(pf, forKey: .pf)
        try c.encodeIfPresent(numaNode, forKey: .numaNode)
        try c.encode(driver, forKey: .driver)
        try c.encodeIfPresent(failover, forKey: .failover)
        try config.encode(to: encoder)
    }
}

/// `POST /v1/vms/{vm}/migration/incoming`.
public struct MigrationIncomingBody: Sendable, Hashable, Codable {
    public var nics: [MigrationNIC]
    public static let keys: Set<String> = ["nics"]

    public init(nics: [MigrationNIC]) { self.nics = nics }

    /// Each NIC checked as an assignment of `vm` (failover required, names
    /// unique); refusals name `nics[i].field`.
    public func validated(vm: String) throws(ValidationError) -> [AssignmentRequest] {
        _ = try NICKey.checkedName(vm, field: "vm")
        guard !nics.isEmpty else {
            throw ValidationError(field: "nics", value: "", reason: "is empty; give each NIC of the VM that migrates")
        }
        guard nics.count <= 64 else {
            throw ValidationError(field: "nics", value: String(nics.count), reason: "holds too many NICs (at most 64)")
        }
        var seen: Set<String> = []
        var requests: [AssignmentRequest] = []
        for (i, nic) in nics.enumerated() {
            let request = nic.request(vm: vm)
            do { _ = try request.validated() } catch { throw error.inField("nics[\(i)].\(error.field)") }
            guard nic.failover != nil else {
                throw ValidationError(
                    field: "nics[\(i)].failover", value: "",
                    reason: "is required: a migrating NIC is attached to its guest through its failover adapter")
            }
            guard seen.insert(nic.nic).inserted else {
                throw ValidationError(field: "nics[\(i)].nic", value: nic.nic, reason: "is given twice")
            }
            requests.append(request)
        }
        return requests
    }
}

/// Where a VM's migration is on this host.
public struct MigrationState: OpenName {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Destination: VFs reserved and programmed, not attached yet.
    public static let incoming: MigrationState = "incoming"
    /// Source: moving the guest to its standbys and freeing the VFs.
    public static let preparing: MigrationState = "preparing"
    /// Source: the guest runs on its standbys, its VFs are free.
    public static let prepared: MigrationState = "prepared"
    /// Destination: attaching the reserved VFs and steering traffic back.
    public static let completing: MigrationState = "completing"
    public static let completed: MigrationState = "completed"
    public static let aborted: MigrationState = "aborted"
    /// A step failed; what the operation had done was rolled back.
    public static let failed: MigrationState = "failed"

    /// No operation of the migration is running or due: a new one may start.
    public var isSettled: Bool { self == .prepared || self == .completed || self == .aborted || self == .failed }
}

/// Which end of a migration this host is.
public enum MigrationRole: String, Sendable, Hashable, Codable {
    case source
    case destination
}

/// One step of one NIC, as it happened.
public struct MigrationStep: Sendable, Hashable, Codable {
    /// Which operation it belonged to: incoming, prepare, complete, abort, rollback, recover.
    public var operation: String
    public var nic: String
    /// e.g. standby-up, steer, link-state, clear-mac, detach, release, reserve, attach, wait, standby-restore.
    public var step: String
    public var startedAt: Date
    /// Milliseconds since the operation began.
    public var offsetMs: Double
    /// nil while it runs (or when a crash interrupted it).
    public var durationMs: Double?
    /// running, ok, failed, or skipped (a steering step with no lever).
    public var result: String
    /// The lever used, for steering steps.
    public var lever: String?
    /// What happened, or why no lever was available, or the error.
    public var detail: String?

    public init(
        operation: String, nic: String, step: String, startedAt: Date, offsetMs: Double, durationMs: Double? = nil,
        result: String, lever: String? = nil, detail: String? = nil
    ) {
        self.operation = operation
        self.nic = nic
        self.step = step
        self.startedAt = startedAt
        self.offsetMs = offsetMs
        self.durationMs = durationMs
        self.result = result
        self.lever = lever
        self.detail = detail
    }
}

/// Why a migration operation failed.
public struct MigrationFailure: Sendable, Hashable, Codable {
    public var operation: String
    public var nic: String?
    public var step: String
    public var reason: String

    public init(operation: String, nic: String?, step: String, reason: String) {
        self.operation = operation
        self.nic = nic
        self.step = step
        self.reason = reason
    }
}

/// One step of a rollback (or of an abort): the NIC, the step as the
/// timeline names it, and for a step not undone, why.
public struct MigrationRollbackStep: Sendable, Hashable, Codable {
    public var nic: String
    public var step: String
    /// Why it was not undone: the step's error, or which failure kept it
    /// from being tried. nil for a step undone.
    public var reason: String?

    public init(nic: String, step: String, reason: String? = nil) {
        self.nic = nic
        self.step = step
        self.reason = reason
    }
}

/// What a failed operation's rollback (or a failed abort) put back and what
/// it did not. `notUndone` empty: everything the operation had done is undone.
public struct MigrationRollback: Sendable, Hashable, Codable {
    public var undone: [MigrationRollbackStep]
    public var notUndone: [MigrationRollbackStep]

    public init(undone: [MigrationRollbackStep] = [], notUndone: [MigrationRollbackStep] = []) {
        self.undone = undone
        self.notUndone = notUndone
    }

    public var isComplete: Bool { notUndone.isEmpty }
}

/// `GET /v1/vms/{vm}/migration`, and the answer to each migration call.
public struct Migration: Sendable, Hashable, Codable {
    public var id: Int
    public var vm: String
    public var role: MigrationRole
    public var state: MigrationState
    /// Each NIC as `incoming` takes it on the destination.
    public var nics: [MigrationNIC]
    public var timeline: [MigrationStep]
    public var error: MigrationFailure?
    /// With a `failed` state: what the rollback of the failed operation (or
    /// the failed abort) undid and what it did not.
    public var rollback: MigrationRollback?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: Int, vm: String, role: MigrationRole, state: MigrationState, nics: [MigrationNIC],
        timeline: [MigrationStep] = [], error: MigrationFailure? = nil, rollback: MigrationRollback? = nil,
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.vm = vm
        self.role = role
        self.state = state
        self.nics = nics
        self.timeline = timeline
        self.error = error
        self.rollback = rollback
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
