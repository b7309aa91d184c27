import Foundation
import GRDB
import SRIOVCore

/// sriovd's durable state: SQLite in WAL mode at `<state-dir>/state.db`.
/// Every write is one transaction; a crash leaves either the old or the new
/// state, never a mix.
public final class StateStore: Sendable {
    let database: DatabasePool

    /// Opens (creating when needed) the database in `directory`, and migrates it.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        database = try DatabasePool(path: directory + "/state.db", configuration: configuration)
        try Self.migrator.migrate(database)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: VF originals") { db in
            try db.create(table: "vfOriginal") { t in
                t.primaryKey("vf", .text)
                t.column("pf", .text).notNull()
                t.column("vfIndex", .integer).notNull()
                t.column("settings", .text).notNull()
                t.column("changed", .text).notNull()
                t.column("capturedAt", .datetime).notNull()
            }
        }
        registerAssignmentMigrations(&migrator)
        registerSeenDeviceMigrations(&migrator)
        registerMigrationMigrations(&migrator)
        registerAssignmentHealthMigrations(&migrator)
        registerMigrationRollbackMigrations(&migrator)
        return migrator
    }

    // MARK: VF originals

    /// The settings a VF had before sriovd first changed it, and which of them
    /// sriovd has changed since.
    public struct VFOriginal: Sendable, Equatable {
        public var vf: PCIAddress
        public var pf: PCIAddress
        public var index: Int
        public var settings: VFSettings
        public var changed: Set<VFSettingGroup>
        public var capturedAt: Date
    }

    public func original(of vf: PCIAddress) throws -> VFOriginal? {
        try database.read { db in try OriginalRow.fetchOne(db, key: vf.description)?.value() }
    }

    public func allOriginals() throws -> [VFOriginal] {
        try database.read { db in try OriginalRow.fetchAll(db).map { try $0.value() } }
    }

    /// Records `settings` as the VF's original unless one is recorded already,
    /// and adds `changed` to what sriovd has changed. Returns the record.
    @discardableResult
    public func recordChange(
        vf: PCIAddress, pf: PCIAddress, index: Int, before settings: VFSettings, changed: Set<VFSettingGroup>
    ) throws -> VFOriginal {
        try database.write { db in
            if var row = try OriginalRow.fetchOne(db, key: vf.description) {
                var value = try row.value()
                value.changed.formUnion(changed)
                row = try OriginalRow(value)
                try row.update(db)
                return value
            }
            let value = VFOriginal(vf: vf, pf: pf, index: index, settings: settings, changed: changed, capturedAt: Date())
            try OriginalRow(value).insert(db)
            return value
        }
    }

    /// Forgets a VF's original (after it was restored or scrubbed).
    public func forgetOriginal(of vf: PCIAddress) throws {
        _ = try database.write { db in try OriginalRow.deleteOne(db, key: vf.description) }
    }
}

private struct OriginalRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "vfOriginal"
    var vf: String
    var pf: String
    var vfIndex: Int
    var settings: String
    var changed: String
    var capturedAt: Date

    init(_ v: StateStore.VFOriginal) throws {
        vf = v.vf.description
        pf = v.pf.description
        vfIndex = v.index
        settings = String(decoding: try JSONEncoder().encode(v.settings), as: UTF8.self)
        changed = v.changed.sorted().map(\.rawValue).joined(separator: ",")
        capturedAt = v.capturedAt
    }

    func value() throws -> StateStore.VFOriginal {
        StateStore.VFOriginal(
            vf: try PCIAddress.parse(vf, field: "vfOriginal.vf"),
            pf: try PCIAddress.parse(pf, field: "vfOriginal.pf"),
            index: vfIndex,
            settings: try JSONDecoder().decode(VFSettings.self, from: Data(settings.utf8)),
            changed: Set(changed.split(separator: ",").compactMap { VFSettingGroup(rawValue: String($0)) }),
            capturedAt: capturedAt)
    }
}
