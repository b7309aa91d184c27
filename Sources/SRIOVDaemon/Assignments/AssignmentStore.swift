import Foundation
import GRDB
import SRIOVAPI
import SRIOVCore

extension StateStore {
    static func registerAssignmentMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2: assignments") { db in
            try db.create(table: "assignment") { t in
                t.column("vm", .text).notNull()
                t.column("nic", .text).notNull()
                // One NIC per VF, enforced by the database itself.
                t.column("vf", .text).notNull().unique()
                t.column("pf", .text).notNull()
                t.column("vfIndex", .integer).notNull()
                t.column("pool", .text)
                t.column("driver", .text).notNull()
                t.column("request", .text).notNull()
                t.column("config", .text).notNull()
                t.column("state", .text).notNull()
                t.column("previousDriver", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
                t.primaryKey(["vm", "nic"])
            }
            try db.create(table: "operation") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("kind", .text).notNull()
                t.column("vm", .text).notNull()
                t.column("nic", .text).notNull()
                t.column("vf", .text).notNull()
                t.column("step", .text).notNull()
                t.column("startedAt", .datetime).notNull()
            }
        }
    }

    /// After v4: why an assignment is degraded or failed.
    static func registerAssignmentHealthMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5: assignment health") { db in
            try db.alter(table: "assignment") { t in
                t.add(column: "reason", .text)
                // Settings not asked for that drift checks keep as they were
                // when the VF was handed over (trust, spoof check).
                t.add(column: "baseline", .text)
            }
        }
    }

    /// Records the settings the VF had, beyond those asked for, when it was handed over.
    public func setBaseline(_ key: NICKey, _ baseline: VFConfig) throws {
        try database.write { db in
            try db.execute(
                sql: "UPDATE assignment SET baseline = ? WHERE vm = ? AND nic = ?",
                arguments: [try AssignmentRow.json(baseline), key.vm, key.nic])
        }
    }

    /// What a drift check expects of the assignment's VF: the settings asked
    /// for, and the baseline for the others.
    public func expectedSettings(_ key: NICKey) throws -> VFConfig? {
        try database.read { db in
            guard let row = try AssignmentRow.fetchOne(db, key: ["vm": key.vm, "nic": key.nic]) else { return nil }
            var expected = try JSONDecoder().decode(VFConfig.self, from: Data(row.config.utf8))
            if let text = row.baseline {
                let baseline = try JSONDecoder().decode(VFConfig.self, from: Data(text.utf8))
                for group in VFSettingGroup.groups(in: baseline) where !group.isSet(in: expected) {
                    group.copy(from: baseline, to: &expected)
                }
            }
            return expected
        }
    }

    /// Sets the state of an existing assignment (`degraded`, `failed`, back
    /// to `assigned`) with its reason; returns it, or nil when it does not
    /// exist or is not in one of the states `from`.
    public func setHealth(
        _ key: NICKey, to state: AssignmentState, reason: String?, from states: Set<AssignmentState>
    ) throws -> Assignment? {
        try database.write { db in
            guard var row = try AssignmentRow.fetchOne(db, key: ["vm": key.vm, "nic": key.nic]),
                states.contains(AssignmentState(rawValue: row.state))
            else { return nil }
            row.state = state.rawValue
            row.reason = reason
            row.updatedAt = Date()
            try row.update(db)
            return try row.value()
        }
    }

    /// The outcome of trying to reserve a VF for a NIC.
    public enum Reservation: Sendable {
        case reserved(Assignment)
        /// The NIC already has an assignment (same or different request).
        case existing(Assignment, AssignmentRequest)
        /// The VF was taken meanwhile; try another.
        case vfTaken
    }

    /// In one transaction: if the NIC has no assignment and the VF is free,
    /// records the assignment as `assigning` and journals the operation.
    public func reserve(
        _ request: AssignmentRequest, vf: PCIAddress, pf: PCIAddress, index: Int, previousDriver: String?
    ) throws -> Reservation {
        let now = Date()
        return try database.write { db in
            if let row = try AssignmentRow.fetchOne(db, key: ["vm": request.vm, "nic": request.nic]) {
                return .existing(try row.value(), try row.decodedRequest())
            }
            if try AssignmentRow.filter(Column("vf") == vf.description).fetchCount(db) > 0 { return .vfTaken }
            let assignment = Assignment(
                vm: request.vm, nic: request.nic, vf: vf, pf: pf, vfIndex: index, pool: request.pool,
                driver: request.driver, config: request.config, state: .assigning, previousDriver: previousDriver,
                failover: request.failover, createdAt: now, updatedAt: now)
            try AssignmentRow(assignment, request: request).insert(db)
            try OperationRow(kind: "assign", key: assignment.key, vf: vf, step: "reserved", startedAt: now).insert(db)
            return .reserved(assignment)
        }
    }

    public func assignment(_ key: NICKey) throws -> Assignment? {
        try database.read { db in try AssignmentRow.fetchOne(db, key: ["vm": key.vm, "nic": key.nic])?.value() }
    }

    public func assignmentRequest(_ key: NICKey) throws -> AssignmentRequest? {
        try database.read { db in try AssignmentRow.fetchOne(db, key: ["vm": key.vm, "nic": key.nic])?.decodedRequest() }
    }

    public func assignments() throws -> [Assignment] {
        try database.read { db in
            try AssignmentRow.order(Column("vm"), Column("nic")).fetchAll(db).map { try $0.value() }
        }
    }

    /// Whether any assignment holds this VF.
    public func isAssigned(_ vf: PCIAddress) throws -> Bool {
        try database.read { db in try AssignmentRow.filter(Column("vf") == vf.description).fetchCount(db) > 0 }
    }

    /// Records a step of an operation in progress (the journal).
    public func journal(_ key: NICKey, step: String) throws {
        try database.write { db in
            try db.execute(
                sql: "UPDATE operation SET step = ? WHERE vm = ? AND nic = ?", arguments: [step, key.vm, key.nic])
        }
    }

    /// Marks the assignment `assigned` (or updates its config) and closes its journal entry.
    public func commit(_ key: NICKey, config: VFConfig? = nil, request: AssignmentRequest? = nil) throws {
        try database.write { db in
            guard var row = try AssignmentRow.fetchOne(db, key: ["vm": key.vm, "nic": key.nic]) else { return }
            row.state = AssignmentState.assigned.rawValue
            row.reason = nil
            if let config { row.config = try AssignmentRow.json(config) }
            if let request { row.request = try AssignmentRow.json(request) }
            row.updatedAt = Date()
            try row.update(db)
            try db.execute(sql: "DELETE FROM operation WHERE vm = ? AND nic = ?", arguments: [key.vm, key.nic])
        }
    }

    /// Marks an assignment `releasing` and journals the release. Returns it,
    /// or nil when the NIC has no assignment.
    public func beginRelease(_ key: NICKey) throws -> Assignment? {
        try database.write { db in
            guard var row = try AssignmentRow.fetchOne(db, key: ["vm": key.vm, "nic": key.nic]) else { return nil }
            row.state = AssignmentState.releasing.rawValue
            row.updatedAt = Date()
            try row.update(db)
            try db.execute(sql: "DELETE FROM operation WHERE vm = ? AND nic = ?", arguments: [key.vm, key.nic])
            try OperationRow(kind: "release", key: key, vf: try PCIAddress.parse(row.vf, field: "vf"), step: "releasing",
                             startedAt: Date()).insert(db)
            return try row.value()
        }
    }

    /// Deletes the assignment and its journal entry: the VF is free.
    public func remove(_ key: NICKey) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM assignment WHERE vm = ? AND nic = ?", arguments: [key.vm, key.nic])
            try db.execute(sql: "DELETE FROM operation WHERE vm = ? AND nic = ?", arguments: [key.vm, key.nic])
        }
    }

    /// Operations a crash interrupted: (kind, key, step).
    public func pendingOperations() throws -> [(kind: String, key: NICKey, step: String)] {
        try database.read { db in
            try OperationRow.order(Column("id")).fetchAll(db).map { ($0.kind, NICKey(unchecked: $0.vm, nic: $0.nic), $0.step) }
        }
    }
}

private struct AssignmentRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "assignment"
    var vm: String
    var nic: String
    var vf: String
    var pf: String
    var vfIndex: Int
    var pool: String?
    var driver: String
    var request: String
    var config: String
    var state: String
    var previousDriver: String?
    var reason: String?
    var baseline: String?
    var createdAt: Date
    var updatedAt: Date

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    init(_ a: Assignment, request: AssignmentRequest) throws {
        vm = a.vm
        nic = a.nic
        vf = a.vf.description
        pf = a.pf.description
        vfIndex = a.vfIndex
        pool = a.pool
        driver = a.driver.rawValue
        self.request = try Self.json(request)
        config = try Self.json(a.config)
        state = a.state.rawValue
        previousDriver = a.previousDriver
        reason = a.reason
        createdAt = a.createdAt
        updatedAt = a.updatedAt
    }

    func decodedRequest() throws -> AssignmentRequest {
        try JSONDecoder().decode(AssignmentRequest.self, from: Data(request.utf8))
    }

    func value() throws -> Assignment {
        Assignment(
            vm: vm, nic: nic, vf: try PCIAddress.parse(vf, field: "assignment.vf"),
            pf: try PCIAddress.parse(pf, field: "assignment.pf"), vfIndex: vfIndex, pool: pool,
            driver: AssignmentDriver(rawValue: driver),
            config: try JSONDecoder().decode(VFConfig.self, from: Data(config.utf8)),
            state: AssignmentState(rawValue: state), previousDriver: previousDriver,
            failover: try decodedRequest().failover, reason: reason, createdAt: createdAt, updatedAt: updatedAt)
    }
}

private struct OperationRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "operation"
    var id: Int64?
    var kind: String
    var vm: String
    var nic: String
    var vf: String
    var step: String
    var startedAt: Date

    init(kind: String, key: NICKey, vf: PCIAddress, step: String, startedAt: Date) {
        self.kind = kind
        self.vm = key.vm
        self.nic = key.nic
        self.vf = vf.description
        self.step = step
        self.startedAt = startedAt
    }
}
