import SRIOVAPI
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
@testable import SRIOVDaemon

/// An invariant that did not hold, and how.
struct Violation: Sendable, CustomStringConvertible {
    var invariant: String
    var detail: String
    var description: String { "\(invariant): \(detail)" }
    /// The invariant and the first words of how it broke (`free VF`,
    /// `guest of`): what a shrunk replay must still show.
    var signature: String { "\(invariant): " + detail.split(separator: " ").prefix(3).joined(separator: " ") }
}

/// What one daemon holds, as its last check found it.
struct DaemonSnapshot {
    /// The VFs each NIC's assignments hold, by `vm/nic`.
    var recordedByNIC: [String: Set<PCIAddress>] = [:]
    /// The VFs each NIC's guest should hold, by `vm/nic`.
    var mustBeAttached: [String: Set<PCIAddress>] = [:]
}

extension SimWorld {
    /// What must hold between any two operations: on daemon `d` (the other
    /// one did nothing meanwhile, its last check stands) and in the guests.
    func checkInvariants(_ d: Int) async -> [Violation] {
        var found: [Violation] = []
        let (snapshot, violations) = await check(daemon: d)
        snapshots[d] = snapshot
        found += violations

        // The guests hold only recorded VFs, and every NIC that should be
        // on its VF is.
        var recordedByNIC: [String: Set<PCIAddress>] = [:]
        var mustBeAttached: [String: Set<PCIAddress>] = [:]
        for snapshot in snapshots {
            recordedByNIC.merge(snapshot.recordedByNIC) { $0.union($1) }
            mustBeAttached.merge(snapshot.mustBeAttached) { $0.union($1) }
        }
        var seen: Set<String> = []
        for (spec, guest) in guests.all {
            let (attached, active) = guest.state.withLock { ($0.attached, $0.active) }
            let key = Self.nicKey(ofGuest: spec)
            seen.insert(key)
            let recorded = recordedByNIC[key] ?? []
            for vf in attached where !recorded.contains(vf) {
                found.append(Violation(invariant: "nothing held unrecorded", detail: "guest of \(key) holds \(vf), recorded by no daemon"))
            }
            if let active, !attached.contains(active) {
                found.append(Violation(invariant: "guest consistent", detail: "guest of \(key) steers to \(active), not attached"))
            }
            for vf in mustBeAttached[key] ?? [] where !attached.contains(vf) {
                found.append(Violation(invariant: "guest on its VF", detail: "\(key) is assigned \(vf), which its guest does not hold"))
            }
        }
        for key in mustBeAttached.keys.sorted() where !seen.contains(key) {
            found.append(Violation(invariant: "guest on its VF", detail: "\(key) is assigned, its guest holds nothing"))
        }
        return found
    }

    private func check(daemon d: Int) async -> (DaemonSnapshot, [Violation]) {
        var found: [Violation] = []
        var snapshot = DaemonSnapshot()
        let daemon = daemons[d]
        let host = hosts[d].fake.state.withLock { $0.pfs }
        let name = d == 0 ? "A" : "B"
        func violation(_ invariant: String, _ detail: String) {
            found.append(Violation(invariant: invariant, detail: "\(name): \(detail)"))
        }
        let assignments: [Assignment]
        let originals: [StateStore.VFOriginal]
        let interrupted: [StateStore.MigrationRecord]
        do {
            assignments = try daemon.store.assignments()
            originals = try daemon.store.allOriginals()
            interrupted = try daemon.store.interruptedMigrations()
        } catch {
            violation("store", "cannot be read: \(error)")
            return (snapshot, found)
        }

        // No VF held by two NICs.
        let byVF = Dictionary(grouping: assignments, by: \.vf)
        for (vf, holders) in byVF where holders.count > 1 {
            violation("one NIC per VF", "\(vf) is held by \(holders.map { "\($0.key)" }.sorted())")
        }

        // The store and the host agree on every assigned VF.
        var latest: [String: Migration?] = [:]
        for a in assignments {
            snapshot.recordedByNIC["\(a.key)", default: []].insert(a.vf)
            guard a.state == .assigned else { continue }
            guard let vf = host[a.pf]?.vfs[a.vfIndex], FakeHost.vfAddress(a.vfIndex, of: a.pf) == a.vf else {
                violation("store agrees with host", "\(a.key) is assigned VF \(a.vf), which does not exist")
                continue
            }
            if latest[a.vm] == nil {
                do { latest[a.vm] = .some(try daemon.store.latestMigration(vm: a.vm)?.migration) } catch {
                    violation("store", "migrations of \(a.vm) cannot be read: \(error)")
                }
            }
            let expected = ((try? daemon.store.expectedSettings(a.key)) ?? nil) ?? a.config
            // A destination's reservation carries its MAC only from complete on
            // (the source's VF still has it): the MAC is withheld until then.
            let reservation = Self.isReservation(a, latest[a.vm] ?? nil)
            let differences = DriftComparison.differences(expected: expected, reported: vf.settings)
                .filter { !(reservation && $0.group == .mac) }
            if !differences.isEmpty {
                violation(
                    "store agrees with host",
                    "\(a.key) on \(a.vf): "
                        + differences.map { "\($0.group.rawValue) is \($0.found), recorded \($0.expected)" }.joined(separator: "; "))
            }
            if !a.driver.choice.isSatisfied(by: vf.driver) {
                violation("store agrees with host", "\(a.key) on \(a.vf): driver \(vf.driver ?? "none"), recorded \(a.driver)")
            }
            if a.failover != nil {
                if Self.guestShouldHold(a, latest[a.vm] ?? nil) { snapshot.mustBeAttached["\(a.key)", default: []].insert(a.vf) }
            }
        }

        // Nothing held that is not recorded: a VF without an assignment
        // is as the host made it (fresh settings, no driver) and has no
        // original on record.
        let held = Set(assignments.map(\.vf))
        for (pf, p) in host {
            for (index, vf) in p.vfs {
                let address = FakeHost.vfAddress(index, of: pf)
                guard !held.contains(address) else { continue }
                if vf.settings != FakeHost.freshSettings || vf.driver != nil {
                    violation("nothing held unrecorded", "free VF \(address) has \(vf.settings) and driver \(vf.driver ?? "none")")
                }
            }
        }
        for original in originals where !held.contains(original.vf) {
            violation("nothing held unrecorded", "free VF \(original.vf) has an original on record (it counts as in use)")
        }

        // Every migration settles: no operation of one is left pending.
        for record in interrupted {
            violation(
                "migrations settle",
                "\(record.migration.vm)'s migration \(record.migration.id) is \(record.migration.state) with \(record.pending ?? "?") pending")
        }

        // The event stream has no gap.
        for gap in daemon.sequence.takeGaps() { violation("event seq has no gap", gap) }

        // No lock held once the operation is over.
        let locks = await daemon.heldLocks()
        if !locks.isEmpty { violation("no lock held when idle", locks.joined(separator: ", ")) }
        return (snapshot, found)
    }

    /// After a restart's recovery: nothing is left half done.
    func recovered(_ d: Int) async -> [Violation] {
        let name = d == 0 ? "A" : "B"
        do {
            return try daemons[d].store.assignments().filter { $0.state == .assigning || $0.state == .releasing }.map {
                Violation(invariant: "recovery finishes", detail: "\(name): \($0.key) is still \($0.state) after recovery")
            }
        } catch {
            return [Violation(invariant: "store", detail: "\(name): cannot be read after recovery: \(error)")]
        }
    }

    /// Whether the guest should hold an assigned failover NIC's VF: always,
    /// but for a destination's reservation (not attached before complete,
    /// taken out again when complete failed) and a source whose migration
    /// failed (its rollback may have left the guest on its standby, which
    /// the failure names: abort finishes it).
    static func guestShouldHold(_ a: Assignment, _ latest: Migration?) -> Bool {
        guard let latest, latest.nics.contains(where: { $0.nic == a.nic }) else { return true }
        switch (latest.role, latest.state) {
        case (.destination, .completed), (.source, .aborted): return true
        default: return false
        }
    }

    /// Whether the assignment is a destination's reservation not completed
    /// (incoming, or complete failed).
    static func isReservation(_ a: Assignment, _ latest: Migration?) -> Bool {
        guard let latest, latest.role == .destination, latest.nics.contains(where: { $0.nic == a.nic }) else { return false }
        return latest.state == .incoming || latest.state == .failed
    }

    /// `vm0/net1` for the guest whose spec is `netns vm0 bond1 veth1`.
    static func nicKey(ofGuest spec: String) -> String {
        for vm in 0..<SimOperation.vms {
            for nic in 0..<SimOperation.nics where SimOperation.failover(vm: vm, nic: nic).description == spec {
                return "\(SimOperation.vmName(vm))/\(SimOperation.nicName(nic))"
            }
        }
        return spec
    }
}
