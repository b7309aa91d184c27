import Foundation
import GRDB
import SRIOVCore

/// The PFs and VFs sriovd has seen, kept in the state store so that what
/// changed while it was down (a NIC removed, a PF driver unbound, a VF count
/// changed behind its back) is known at the next start, and so an operator
/// can ask when a device was last as it is now.
///
/// A row is written only when something in it changes: `firstSeen` is when
/// the device first appeared, `changedAt` when its recorded fields last
/// changed, and `goneSince` is set while it is absent (the row is kept).
extension StateStore {
    /// One PF as recorded.
    public struct SeenPF: Sendable, Hashable, Codable {
        public var pci: PCIAddress
        public var vendorID: UInt16
        public var deviceID: UInt16
        public var driver: String?
        public var netdev: String?
        public var totalVFs: Int
        public var numVFs: Int
        public var firstSeen: Date
        public var changedAt: Date
        public var goneSince: Date?

        /// The fields that count as a change (not the dates).
        struct Observed: Hashable, Sendable {
            var vendorID: UInt16
            var deviceID: UInt16
            var driver: String?
            var netdev: String?
            var totalVFs: Int
            var numVFs: Int
        }
    }

    /// One VF as recorded.
    public struct SeenVF: Sendable, Hashable, Codable {
        public var pci: PCIAddress
        public var pf: PCIAddress
        public var vfIndex: Int
        public var driver: String?
        public var netdev: String?
        /// The administrative MAC the PF reports for it.
        public var mac: MACAddress?
        public var firstSeen: Date
        public var changedAt: Date
        public var goneSince: Date?

        /// The fields that count as a change (not the dates).
        struct Observed: Hashable, Sendable {
            var pf: PCIAddress
            var vfIndex: Int
            var driver: String?
            var netdev: String?
            var mac: MACAddress?
        }
    }

    /// What one recording changed.
    public struct SeenChanges: Sendable, Hashable {
        public var appeared: [PCIAddress] = []
        /// Seen before, absent since, and back now.
        public var returned: [PCIAddress] = []
        public var changed: [PCIAddress] = []
        public var gone: [PCIAddress] = []

        public var isEmpty: Bool { appeared.isEmpty && returned.isEmpty && changed.isEmpty && gone.isEmpty }
    }

    static func registerSeenDeviceMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3: PFs and VFs seen") { db in
            try db.create(table: "seenPF") { t in
                t.primaryKey("pci", .text)
                t.column("vendorID", .integer).notNull()
                t.column("deviceID", .integer).notNull()
                t.column("driver", .text)
                t.column("netdev", .text)
                t.column("totalVFs", .integer).notNull()
                t.column("numVFs", .integer).notNull()
                t.column("firstSeen", .datetime).notNull()
                t.column("changedAt", .datetime).notNull()
                t.column("goneSince", .datetime)
            }
            try db.create(table: "seenVF") { t in
                t.primaryKey("pci", .text)
                t.column("pf", .text).notNull().indexed()
                t.column("vfIndex", .integer).notNull()
                t.column("driver", .text)
                t.column("netdev", .text)
                t.column("mac", .text)
                t.column("firstSeen", .datetime).notNull()
                t.column("changedAt", .datetime).notNull()
                t.column("goneSince", .datetime)
            }
        }
    }

    public func seenPFs() throws -> [SeenPF] {
        try database.read { db in try SeenPFRow.order(Column("pci")).fetchAll(db).map { try $0.value() } }
    }

    public func seenVFs() throws -> [SeenVF] {
        try database.read { db in try SeenVFRow.order(Column("pci")).fetchAll(db).map { try $0.value() } }
    }

    /// Records a complete listing of the host's PFs: each is inserted or
    /// updated when it changed, and every PF recorded as present but not in
    /// `pfs` is marked gone, with its VFs.
    @discardableResult
    public func recordPFs(_ pfs: [PhysicalFunction], at now: Date = Date()) throws -> SeenChanges {
        try database.write { db in
            let stored = try SeenPFRow.fetchAll(db)
            let changes = try Self.record(
                pfs.map { ($0.pciAddress, SeenPF.Observed($0)) }, stored: stored, in: db, at: now)
            for pf in changes.gone {
                try db.execute(
                    sql: "UPDATE seenVF SET goneSince = ? WHERE pf = ? AND goneSince IS NULL",
                    arguments: [now, pf.description])
            }
            return changes
        }
    }

    /// Records a listing of VFs: all of the host's (`pf` nil), or all of one
    /// PF's. VFs recorded as present in that scope but not listed are marked gone.
    @discardableResult
    public func recordVFs(_ vfs: [VirtualFunction], of pf: PCIAddress? = nil, at now: Date = Date()) throws -> SeenChanges {
        try database.write { db in
            var request = SeenVFRow.all()
            if let pf { request = request.filter(Column("pf") == pf.description) }
            return try Self.record(
                vfs.map { ($0.pciAddress, SeenVF.Observed($0)) }, stored: try request.fetchAll(db), in: db, at: now)
        }
    }

    /// Inserts what is new, updates what changed or came back, and marks
    /// what `stored` has as present but `observed` lacks as gone.
    private static func record<Row: SeenRow>(
        _ observed: [(PCIAddress, Row.Observed)], stored: [Row], in db: Database, at now: Date
    ) throws -> SeenChanges {
        var changes = SeenChanges()
        let byAddress = Dictionary(stored.map { ($0.pci, $0) }, uniquingKeysWith: { a, _ in a })
        for (address, value) in observed {
            // A row outside `stored`'s scope (a VF listed under another PF) is updated all the same.
            guard var row = try byAddress[address.description] ?? Row.fetchOne(db, key: address.description) else {
                try Row(address, value, firstSeen: now).insert(db)
                changes.appeared.append(address)
                continue
            }
            let wasGone = row.goneSince != nil
            guard wasGone || row.observed != value else { continue }
            row.set(value)
            row.changedAt = now
            row.goneSince = nil
            try row.update(db)
            if wasGone { changes.returned.append(address) } else { changes.changed.append(address) }
        }
        let present = Set(observed.map(\.0.description))
        for var row in stored where row.goneSince == nil && !present.contains(row.pci) {
            row.goneSince = now
            try row.update(db)
            changes.gone.append(try PCIAddress.parse(row.pci, field: "\(Row.databaseTableName).pci"))
        }
        return changes
    }
}

/// What `StateStore.record` needs of a seen-device row.
private protocol SeenRow: FetchableRecord, PersistableRecord {
    associatedtype Observed: Equatable
    var pci: String { get }
    var changedAt: Date { get set }
    var goneSince: Date? { get set }
    /// The recorded fields; nil when stored text no longer parses (the row then reads as changed).
    var observed: Observed? { get }
    mutating func set(_ observed: Observed)
    init(_ pci: PCIAddress, _ observed: Observed, firstSeen: Date)
}

private struct SeenPFRow: Codable, SeenRow {
    static let databaseTableName = "seenPF"
    var pci: String
    var vendorID: Int
    var deviceID: Int
    var driver: String?
    var netdev: String?
    var totalVFs: Int
    var numVFs: Int
    var firstSeen: Date
    var changedAt: Date
    var goneSince: Date?

    init(_ pci: PCIAddress, _ observed: StateStore.SeenPF.Observed, firstSeen: Date) {
        self.pci = pci.description
        vendorID = 0
        deviceID = 0
        totalVFs = 0
        numVFs = 0
        self.firstSeen = firstSeen
        changedAt = firstSeen
        set(observed)
    }

    mutating func set(_ o: StateStore.SeenPF.Observed) {
        vendorID = Int(o.vendorID)
        deviceID = Int(o.deviceID)
        driver = o.driver
        netdev = o.netdev
        totalVFs = o.totalVFs
        numVFs = o.numVFs
    }

    var observed: StateStore.SeenPF.Observed? {
        .init(
            vendorID: UInt16(truncatingIfNeeded: vendorID), deviceID: UInt16(truncatingIfNeeded: deviceID),
            driver: driver, netdev: netdev, totalVFs: totalVFs, numVFs: numVFs)
    }

    func value() throws -> StateStore.SeenPF {
        StateStore.SeenPF(
            pci: try PCIAddress.parse(pci, field: "seenPF.pci"), vendorID: UInt16(truncatingIfNeeded: vendorID),
            deviceID: UInt16(truncatingIfNeeded: deviceID),
            driver: driver, netdev: netdev, totalVFs: totalVFs, numVFs: numVFs, firstSeen: firstSeen,
            changedAt: changedAt, goneSince: goneSince)
    }
}

private struct SeenVFRow: Codable, SeenRow {
    static let databaseTableName = "seenVF"
    var pci: String
    var pf: String
    var vfIndex: Int
    var driver: String?
    var netdev: String?
    var mac: String?
    var firstSeen: Date
    var changedAt: Date
    var goneSince: Date?

    init(_ pci: PCIAddress, _ observed: StateStore.SeenVF.Observed, firstSeen: Date) {
        self.pci = pci.description
        pf = observed.pf.description
        vfIndex = observed.vfIndex
        self.firstSeen = firstSeen
        changedAt = firstSeen
        set(observed)
    }

    mutating func set(_ o: StateStore.SeenVF.Observed) {
        pf = o.pf.description
        vfIndex = o.vfIndex
        driver = o.driver
        netdev = o.netdev
        mac = o.mac?.description
    }

    /// nil fields where the stored text no longer parses, so the row reads
    /// as changed and is rewritten.
    var observed: StateStore.SeenVF.Observed? {
        guard let pf = try? PCIAddress.parse(pf, field: "seenVF.pf") else { return nil }
        return .init(
            pf: pf, vfIndex: vfIndex, driver: driver, netdev: netdev,
            mac: mac.flatMap { try? MACAddress.parse($0, field: "seenVF.mac") })
    }

    func value() throws -> StateStore.SeenVF {
        StateStore.SeenVF(
            pci: try PCIAddress.parse(pci, field: "seenVF.pci"), pf: try PCIAddress.parse(pf, field: "seenVF.pf"),
            vfIndex: vfIndex, driver: driver, netdev: netdev,
            mac: mac.flatMap { try? MACAddress.parse($0, field: "seenVF.mac") }, firstSeen: firstSeen,
            changedAt: changedAt, goneSince: goneSince)
    }
}

extension StateStore.SeenPF.Observed {
    init(_ pf: PhysicalFunction) {
        self.init(
            vendorID: pf.vendorID, deviceID: pf.deviceID, driver: pf.driver, netdev: pf.netdev,
            totalVFs: pf.totalVFs, numVFs: pf.numVFs)
    }
}

extension StateStore.SeenVF.Observed {
    init(_ vf: VirtualFunction) {
        self.init(pf: vf.pf, vfIndex: vf.index, driver: vf.driver, netdev: vf.netdev, mac: vf.settings.mac)
    }
}
