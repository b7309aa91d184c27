import Foundation
import GRDB
import SRIOVAPI
import SRIOVCore

extension StateStore {
    static func registerMigrationMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4: VM migrations") { db in
            try db.create(table: "vmMigration") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("vm", .text).notNull().indexed()
                t.column("role", .text).notNull()
                t.column("state", .text).notNull()
                t.column("nics", .text).notNull()
                t.column("context", .text).notNull()
                // The operation running (or interrupted by a crash): incoming,
                // prepare, complete, abort. NULL when none.
                t.column("pending", .text)
                t.column("error", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
            try db.create(table: "vmMigrationStep") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("migration", .integer).notNull().indexed()
                    .references("vmMigration", onDelete: .cascade)
                t.column("operation", .text).notNull()
                t.column("nic", .text).notNull()
                t.column("step", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("offsetMs", .double).notNull()
                t.column("durationMs", .double)
                t.column("result", .text).notNull()
                t.column("lever", .text)
                t.column("detail", .text)
            }
        }
    }

    static func registerMigrationRollbackMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6: migration rollbacks") { db in
            try db.alter(table: "vmMigration") { t in t.add(column: "rollback", .text) }
        }
    }

    /// What the source remembers of a NIC beyond its body: the VF it had
    /// (given back on abort when still free) and the standby's link before.
    struct MigrationNICContext: Codable, Hashable, Sendable {
        var vf: String?
        var standbyWasUp: Bool?
    }

    /// A migration as stored: the API's view plus what recovery needs.
    struct MigrationRecord: Sendable {
        var migration: Migration
        var context: [String: MigrationNICContext]
        var pending: String?
    }

    /// The VM's latest migration record, if any.
    func latestMigration(vm: String) throws -> MigrationRecord? {
        try database.read { db in
            guard let row = try MigrationRow.filter(Column("vm") == vm).order(Column("id").desc).fetchOne(db) else {
                return nil
            }
            return try row.record(steps: try StepRow.filter(Column("migration") == row.id).order(Column("id")).fetchAll(db))
        }
    }

    /// Records with an operation a crash interrupted.
    func interruptedMigrations() throws -> [MigrationRecord] {
        try database.read { db in
            try MigrationRow.filter(Column("pending") != nil).order(Column("id")).fetchAll(db).map { row in
                try row.record(steps: try StepRow.filter(Column("migration") == row.id).order(Column("id")).fetchAll(db))
            }
        }
    }

    /// Starts a record, unless the VM's latest one is still running.
    /// Returns nil when one is.
    func beginMigration(
        vm: String, role: MigrationRole, state: MigrationState, nics: [MigrationNIC],
        context: [String: MigrationNICContext], pending: String
    ) throws -> MigrationRecord? {
        try database.write { db in
            if let last = try MigrationRow.filter(Column("vm") == vm).order(Column("id").desc).fetchOne(db),
                last.pending != nil || !MigrationState(rawValue: last.state).isSettled
            {
                return nil
            }
            let now = Date()
            var row = MigrationRow(
                id: nil, vm: vm, role: role.rawValue, state: state.rawValue, nics: try Self.json(nics),
                context: try Self.json(context), pending: pending, error: nil, rollback: nil, createdAt: now, updatedAt: now)
            try row.insert(db)
            row.id = db.lastInsertedRowID
            return try row.record(steps: [])
        }
    }

    /// Changes a record's state, operation, error or context (each when given).
    func updateMigration(
        id: Int, state: MigrationState? = nil, pending: String?? = nil, error: MigrationFailure?? = nil,
        rollback: MigrationRollback?? = nil, context: [String: MigrationNICContext]? = nil, nics: [MigrationNIC]? = nil
    ) throws {
        try database.write { db in
            guard var row = try MigrationRow.fetchOne(db, key: id) else { return }
            if let state { row.state = state.rawValue }
            if let pending { row.pending = pending }
            if let error { row.error = try error.map { try Self.json($0) } }
            if let rollback { row.rollback = try rollback.map { try Self.json($0) } }
            if let context { row.context = try Self.json(context) }
            if let nics { row.nics = try Self.json(nics) }
            row.updatedAt = Date()
            try row.update(db)
        }
    }

    /// Forgets a record (an `incoming` refused before it reserved anything for good).
    func deleteMigration(id: Int) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM vmMigrationStep WHERE migration = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM vmMigration WHERE id = ?", arguments: [id])
        }
    }

    /// Journals a step before it is taken; returns its row id.
    func beginStep(migration: Int, _ step: MigrationStep) throws -> Int64 {
        try database.write { db in
            let row = StepRow(step, migration: Int64(migration))
            try row.insert(db)
            return db.lastInsertedRowID
        }
    }

    func finishStep(_ id: Int64, durationMs: Double, result: String, lever: String?, detail: String?) throws {
        try database.write { db in
            try db.execute(
                sql: "UPDATE vmMigrationStep SET durationMs = ?, result = ?, lever = ?, detail = ? WHERE id = ?",
                arguments: [durationMs, result, lever, detail, id])
        }
    }

    private static func json(_ value: some Encodable) throws -> String {
        String(decoding: try APIJSON.encoder().encode(value), as: UTF8.self)
    }
}

private struct MigrationRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "vmMigration"
    var id: Int64?
    var vm: String
    var role: String
    var state: String
    var nics: String
    var context: String
    var pending: String?
    var error: String?
    var rollback: String?
    var createdAt: Date
    var updatedAt: Date

    func record(steps: [StepRow]) throws -> StateStore.MigrationRecord {
        let decoder = APIJSON.decoder()
        let migration = Migration(
            id: Int(id ?? 0), vm: vm, role: MigrationRole(rawValue: role) ?? .source, state: MigrationState(rawValue: state),
            nics: try decoder.decode([MigrationNIC].self, from: Data(nics.utf8)),
            timeline: steps.map(\.value),
            error: try error.map { try decoder.decode(MigrationFailure.self, from: Data($0.utf8)) },
            rollback: try rollback.map { try decoder.decode(MigrationRollback.self, from: Data($0.utf8)) },
            createdAt: createdAt, updatedAt: updatedAt)
        return StateStore.MigrationRecord(
            migration: migration,
            context: try decoder.decode([String: StateStore.MigrationNICContext].self, from: Data(context.utf8)),
            pending: pending)
    }
}

private struct StepRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "vmMigrationStep"
    var id: Int64?
    var migration: Int64
    var operation: String
    var nic: String
    var step: String
    var startedAt: Date
    var offsetMs: Double
    var durationMs: Double?
    var result: String
    var lever: String?
    var detail: String?

    init(_ s: MigrationStep, migration: Int64) {
        self.migration = migration
        operation = s.operation
        nic = s.nic
        step = s.step
        startedAt = s.startedAt
        offsetMs = s.offsetMs
        durationMs = s.durationMs
        result = s.result
        lever = s.lever
        detail = s.detail
    }

    var value: MigrationStep {
        MigrationStep(
            operation: operation, nic: nic, step: step, startedAt: startedAt, offsetMs: offsetMs, durationMs: durationMs,
            result: result, lever: lever, detail: detail)
    }
}
