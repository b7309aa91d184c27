import Foundation
import Logging
import SRIOVAPI
import SRIOVCore
import SRIOVHypervisor
import Synchronization

/// Moves a VM's failover NICs off their VFs before a live migration (the
/// source's `prepare`) and onto new VFs after it (the destination's
/// `incoming`, then `complete`), or back (`abort`). Every step is journaled
/// in the state store before it is taken and timed into the migration's
/// timeline; a failed step rolls back what the operation did; a restart
/// finishes or rolls back what a crash interrupted (`recover`).
public final class MigrationService: Sendable {
    let assignments: AssignmentService
    let controller: VFController
    let store: StateStore
    let logger: Logger
    let events: EventBus
    /// How long an attached VF may take to show carrier.
    let readyDeadline: Duration
    /// How long a VF that shows carrier is left to settle before traffic
    /// is steered to it (the bond's backup keeps carrying meanwhile).
    let settle: Duration
    /// Where tests stop an operation (the assignments'; see `CrashPoints`).
    let crashPoints: CrashPoints
    private let running = Mutex<Set<String>>([])

    public init(
        assignments: AssignmentService, readyDeadline: Duration = .seconds(15), settle: Duration = .milliseconds(1000)
    ) {
        self.assignments = assignments
        self.controller = assignments.controller
        self.store = assignments.store
        self.logger = assignments.logger
        self.events = assignments.events
        self.readyDeadline = readyDeadline
        self.settle = settle
        self.crashPoints = assignments.crashPoints
    }

    // MARK: API

    public func show(vm: String) throws(ControllerError) -> Migration {
        do { _ = try NICKey.checkedName(vm, field: "vm") } catch { throw .invalid(error) }
        guard let record = try latest(vm) else { throw .notFound("no migration of VM \(vm) on this host") }
        return record.migration
    }

    /// Destination: reserves and programs a VF for each NIC, not attached.
    public func incoming(vm: String, _ body: MigrationIncomingBody) async throws(ControllerError) -> Migration {
        let requests: [AssignmentRequest]
        do { requests = try body.validated(vm: vm) } catch { throw .invalid(error) }
        for (i, request) in requests.enumerated() {
            if case .hook(let command) = request.failover {
                do { try HookCommand.validate(path: command, field: "nics[\(i)].failover.command") } catch { throw .invalid(error) }
            }
        }
        return try await exclusively(vm) { () throws(ControllerError) in
            for request in requests {
                if let a = try self.assignment(request.vm, request.nic) {
                    throw .conflict("\(a.key) already has VF \(a.vf) on this host; release it before an incoming migration")
                }
            }
            // The guest is checked before anything is reserved or programmed.
            for (i, request) in requests.enumerated() {
                try await self.assignments.preflight(request, field: "nics[\(i)].")
            }
            guard
                let record = try self.storing({
                    try self.store.beginMigration(
                        vm: vm, role: .destination, state: .incoming, nics: body.nics, context: [:], pending: "incoming")
                })
            else { throw .conflict(try self.runningMessage(vm)) }
            self.announce(record, previous: nil)
            let run = Run(service: self, id: record.migration.id, vm: vm, operation: "incoming")
            var reserved: [AssignmentRequest] = []
            for request in requests {
                do throws(StepFailure) {
                    try await run.step(request.nic, "reserve") { () throws(ControllerError) in
                        let outcome = try await self.assignments.assign(request, attach: false, withholdingMAC: true)
                        guard case .created(let a) = outcome else {
                            throw ControllerError.conflict("\(request.vm)/\(request.nic) already has a VF")
                        }
                        reserved.append(request)
                        return (
                            nil,
                            "VF \(a.vf) (index \(a.vfIndex) of \(a.pf)) programmed and bound to \(a.driver), without its MAC (set by complete, once the source cleared its own)"
                        )
                    }
                } catch {
                    return try await self.rollBackIncoming(record, reserved: reserved, failure: error, run: run)
                }
            }
            return try self.settle(record, .incoming, pending: .some(nil))
        }
    }

    /// Releases what a failed `incoming` reserved. All released: the record
    /// goes too and the failure is the answer (a refusal leaves nothing).
    /// Otherwise the record stays, `failed`, saying what is still reserved
    /// (an abort releases it).
    private func rollBackIncoming(
        _ record: StateStore.MigrationRecord, reserved: [AssignmentRequest], failure: StepFailure, run: Run
    ) async throws(ControllerError) -> Migration {
        let vm = record.migration.vm
        var rollback = MigrationRollback()
        for done in reserved.reversed() {
            do throws(StepFailure) {
                try await run.step(done.nic, "release", operation: "rollback") { () throws(ControllerError) in
                    let a = try await self.assignments.release(NICKey(unchecked: vm, nic: done.nic))
                    return (nil, "VF \(a.vf) free again")
                }
                rollback.undone.append(MigrationRollbackStep(nic: done.nic, step: "release"))
            } catch {
                rollback.notUndone.append(MigrationRollbackStep(nic: done.nic, step: "release", reason: error.error.description))
            }
        }
        // The failed reservation undoes itself; when that failed, its
        // assignment stays recorded (rolled back at the next start).
        if let nic = failure.nic, let left = try assignment(vm, nic) {
            rollback.notUndone.append(MigrationRollbackStep(
                nic: nic, step: "reserve",
                reason: "VF \(left.vf) could not be freed after the failure; its assignment stays recorded (\(left.state.rawValue)) and is rolled back at the next start"))
        }
        guard rollback.isComplete else {
            let stored = MigrationFailure(operation: "incoming", nic: failure.nic, step: failure.step, reason: failure.error.description)
            _ = try settle(record, .failed, pending: .some(nil), error: stored, rollback: rollback)
            throw .hostFailure(
                "incoming failed at step \(failure.step) of \(vm)/\(failure.nic ?? "?"): \(failure.error); "
                    + Self.summary(rollback) + "; the migration record stays (failed): abort releases what is left")
        }
        do { try store.deleteMigration(id: record.migration.id) } catch {
            throw .hostFailure(
                "\(failure.error) (incoming refused; its reservations were released, but its migration record could not be removed: \(error); it is settled at the next start)")
        }
        throw failure.error
    }

    /// Source: for each NIC, standby up, traffic steered to it, the VF's MAC
    /// cleared, the VF detached and released.
    public func prepare(vm: String) async throws(ControllerError) -> Migration {
        do { _ = try NICKey.checkedName(vm, field: "vm") } catch { throw .invalid(error) }
        return try await exclusively(vm) { () throws(ControllerError) in
            let held = try self.failoverAssignments(vm)
            guard !held.isEmpty else {
                throw .conflict("VM \(vm) has no assigned NIC with a failover adapter on this host; nothing to prepare")
            }
            if let busy = held.first(where: { $0.state != .assigned }) {
                throw .conflict("\(busy.key) is being \(busy.state.rawValue) right now; retry shortly")
            }
            var nics: [MigrationNIC] = []
            var context: [String: StateStore.MigrationNICContext] = [:]
            for a in held {
                guard let request = try self.loadRequest(a.key) else { throw .conflict("\(a.key) was released meanwhile") }
                nics.append(MigrationNIC(request))
                context[a.nic] = StateStore.MigrationNICContext(vf: a.vf.description)
            }
            guard
                let record = try self.storing({
                    try self.store.beginMigration(
                        vm: vm, role: .source, state: .preparing, nics: nics, context: context, pending: "prepare")
                })
            else { throw .conflict(try self.runningMessage(vm)) }
            self.announce(record, previous: nil)
            let run = Run(service: self, id: record.migration.id, vm: vm, operation: "prepare")
            var touched: [MigrationNIC] = []
            for (a, nic) in zip(held, nics) {
                touched.append(nic)
                do throws(StepFailure) {
                    try await self.prepareNIC(a, run: run, record: record)
                } catch {
                    return try await self.rollBackPrepare(record, touched: touched, failure: error, run: run)
                }
            }
            return try self.settle(record, .prepared, pending: .some(nil))
        }
    }

    /// Destination: attaches each reserved VF, waits for it, steers traffic
    /// to it, and puts the standby back as it was.
    public func complete(vm: String) async throws(ControllerError) -> Migration {
        do { _ = try NICKey.checkedName(vm, field: "vm") } catch { throw .invalid(error) }
        return try await exclusively(vm) { () throws(ControllerError) in
            guard let record = try self.latest(vm), record.migration.role == .destination,
                record.migration.state == .incoming || record.migration.state == .failed, record.pending == nil,
                try self.hasReservations(record)
            else {
                throw .conflict("VM \(vm) has no incoming migration to complete on this host (POST .../migration/incoming first)")
            }
            try self.storing { try self.store.updateMigration(id: record.migration.id, state: .completing, pending: .some("complete")) }
            self.announce(record, state: .completing)
            return try await self.runComplete(record, operation: "complete")
        }
    }

    /// Source after `prepare`: the guest gets a VF again (the same one when
    /// still free) and its traffic back. Destination before `complete`: the
    /// reservations are released.
    public func abort(vm: String) async throws(ControllerError) -> Migration {
        do { _ = try NICKey.checkedName(vm, field: "vm") } catch { throw .invalid(error) }
        return try await exclusively(vm) { () throws(ControllerError) in
            guard let record = try self.latest(vm), record.pending == nil,
                ([.prepared, .incoming, .failed] as [MigrationState]).contains(record.migration.state)
            else {
                throw .conflict(
                    "VM \(vm) has no migration to abort on this host (abort follows prepare on the source, incoming on the destination)")
            }
            try self.storing { try self.store.updateMigration(id: record.migration.id, pending: .some("abort")) }
            return try await self.runAbort(record)
        }
    }

    // MARK: Recovery

    /// Run at start, after assignments are recovered: an interrupted
    /// `prepare` is rolled back, `complete` and `abort` finished, an
    /// interrupted `incoming` released.
    public func recover() async {
        let records: [StateStore.MigrationRecord]
        do { records = try store.interruptedMigrations() } catch {
            logger.critical("cannot read migrations for recovery", metadata: ["error": "\(error)"])
            return
        }
        for record in records {
            let vm = record.migration.vm
            logger.notice(
                "finishing a migration a restart interrupted",
                metadata: ["op": "migration.recover", "vm": "\(vm)", "pending": "\(record.pending ?? "")"])
            do {
                _ = try await exclusively(vm) { () throws(ControllerError) in
                    switch record.pending {
                    case "prepare":
                        let run = Run(service: self, id: record.migration.id, vm: vm, operation: "recover")
                        let failure = StepFailure(
                            nic: nil, step: record.migration.timeline.last?.step ?? "prepare",
                            error: .hostFailure("the daemon stopped during prepare; rolled back at start"))
                        return try await self.rollBackPrepare(
                            record, touched: record.migration.nics, failure: failure, run: run, rethrow: false)
                    case "complete":
                        return try await self.runComplete(record, operation: "recover")
                    case "abort":
                        return try await self.runAbort(record)
                    default:
                        return try await self.recoverIncoming(record)
                    }
                }
            } catch {
                logger.error(
                    "migration recovery failed; its record says what is left",
                    metadata: ["op": "migration.recover", "vm": "\(vm)", "error": "\(error)"])
            }
        }
    }

    /// An `incoming` a crash interrupted: what it reserved is released and
    /// the record settles `failed`, with what could not be released.
    private func recoverIncoming(_ record: StateStore.MigrationRecord) async throws(ControllerError) -> Migration {
        let vm = record.migration.vm
        let run = Run(service: self, id: record.migration.id, vm: vm, operation: "recover")
        var failures: [StepFailure] = []
        for nic in record.migration.nics {
            do throws(StepFailure) { try await releaseReservation(vm: vm, nic: nic.nic, run: run) } catch {
                failures.append(error)
            }
        }
        var rollback = Self.rollback(of: run, operation: "recover", failures: failures, role: .destination)
        rollback.notUndone.removeAll { $0.reason?.hasPrefix("not tried") == true }
        let reason = "the daemon stopped during incoming; "
            + (failures.isEmpty ? "the reservations were released at start" : "releasing its reservations at start failed")
        let migration = try settle(
            record, .failed, pending: .some(nil),
            error: MigrationFailure(operation: "incoming", nic: failures.first?.nic, step: failures.first?.step ?? "reserve", reason: reason),
            rollback: rollback)
        guard let first = failures.first else { return migration }
        throw .hostFailure("releasing \(vm)/\(first.nic ?? "?") at start: \(first.error); abort releases what is left")
    }

    // MARK: Steps

    private func prepareNIC(_ a: Assignment, run: Run, record: StateStore.MigrationRecord) async throws(StepFailure) {
        guard let failover = a.failover else { return }
        let adapter = assignments.adapters(failover)
        let vf = await assignments.failoverVF(a)
        try await run.step(a.nic, "standby-up") { () throws(ControllerError) in
            var wasUp: Bool?
            var unread: String?
            do { wasUp = try await adapter.standbyIsUp() } catch {
                unread = "the standby's link could not be read (\(error)); an abort leaves it up"
            }
            if let wasUp {
                var context = (try self.latest(a.vm)?.context) ?? record.context
                context[a.nic, default: .init(vf: a.vf.description)].standbyWasUp = wasUp
                try self.storing { try self.store.updateMigration(id: record.migration.id, context: context) }
            }
            let outcome = try await Self.adapting { () throws(FailoverError) in try await adapter.setStandby(up: true, vf: vf) }
            let notes = [outcome.note ?? (wasUp == true ? "was up" : nil), unread].compactMap { $0 }
            return (outcome.lever, notes.isEmpty ? nil : notes.joined(separator: "; "))
        }
        // Whether a lever moved the guest's traffic off the VF.
        var moved = false
        try await run.step(a.nic, "steer") { () throws(ControllerError) in
            let outcome = try await Self.adapting { () throws(FailoverError) in try await adapter.steer(to: .standby, vf: vf) }
            moved = moved || outcome.lever != nil
            return (outcome.lever, outcome.note)
        }
        try await run.step(a.nic, "link-state") { () throws(ControllerError) in
            let report = try await self.controller.configure(vf: a.vf, VFConfig(linkState: .disable))
            let lever = Self.linkStateLever(report, to: .disable)
            moved = moved || lever.0 != nil
            return lever
        }
        let clearMAC = { () async throws(StepFailure) in
            try await run.step(a.nic, "clear-mac") { () throws(ControllerError) in
                let report = try await self.controller.clearMAC(vf: a.vf)
                if report.failed { throw .hostFailure(report.failures) }
                return ("PF \(a.pf) vf \(a.vfIndex) mac 00:00:00:00:00:00", nil)
            }
        }
        let detach = { () async throws(StepFailure) in
            try await run.step(a.nic, "detach") { () throws(ControllerError) in
                let removed = try await Self.adapting { () throws(FailoverError) in try await adapter.detach(vf) }
                var detail = removed ? "detached through \(adapter.name)" : "the guest did not hold it"
                if !moved {
                    detail += "; unplugged before the MAC is cleared: no lever moved the traffic, the guest's bond fails over on the removal"
                }
                return (nil, detail)
            }
        }
        // With the traffic on the standby, frames for the guest's MAC stop
        // going to the VF before it goes. Without a lever the VF still
        // carries the traffic: clearing its MAC first would only cut it
        // until the unplug, so the unplug comes first.
        if moved {
            try await clearMAC()
            try await detach()
        } else {
            try await detach()
            try await clearMAC()
        }
        try await run.step(a.nic, "release") { () throws(ControllerError) in
            let released = try await self.assignments.release(a.key, detached: true)
            let action = self.assignments.configuration().daemon.releaseAction == .scrub ? "scrubbed" : "restored"
            return (nil, "VF \(released.vf) \(action) and free")
        }
    }

    /// Puts a source NIC back on a VF: assigned again (the same VF when
    /// free), settings re-applied, attached, ready, traffic steered to it,
    /// standby as it was. Each step is idempotent.
    private func restoreNIC(
        vm: String, nic: MigrationNIC, context: StateStore.MigrationNICContext?, run: Run, operation: String
    ) async throws(StepFailure) {
        let key = NICKey(unchecked: vm, nic: nic.nic)
        var assignment = try await run.step(nic.nic, "reassign", operation: operation) { () throws(ControllerError) -> ((String?, String?), Assignment) in
            if let a = try self.assignment(vm, nic.nic), a.state == .assigned {
                let report = try await self.controller.configure(vf: a.vf, Self.restoring(a.config))
                if report.failed { throw .hostFailure(report.failures) }
                return ((nil, "still assigned VF \(a.vf); settings re-applied"), a)
            }
            let preferred = context?.vf.flatMap { try? PCIAddress.parse($0, field: "vf") }
            let outcome = try await self.assignments.assign(nic.request(vm: vm), attach: false, preferring: preferred)
            guard case .created(let a) = outcome else { throw .conflict("\(key) already has a VF") }
            let same = preferred == a.vf ? "the same VF" : "another VF (\(preferred.map(\.description) ?? "?") was taken)"
            return ((nil, "VF \(a.vf), \(same)"), a)
        }
        guard let failover = assignment.failover else { return }
        let adapter = assignments.adapters(failover)
        let vf = await assignments.failoverVF(assignment)
        try await attachAndSteer(nic.nic, vf: vf, adapter: adapter, run: run, operation: operation)
        if context?.standbyWasUp == false {
            try await run.step(nic.nic, "standby-restore", operation: operation) { () throws(ControllerError) in
                let outcome = try await Self.adapting { () throws(FailoverError) in try await adapter.setStandby(up: false, vf: vf) }
                return (outcome.lever, "it was down before prepare")
            }
        }
        assignment.state = .assigned
    }

    private func attachAndSteer(
        _ nic: String, vf: FailoverVF, adapter: any FailoverAdapter, run: Run, operation: String
    ) async throws(StepFailure) {
        try await run.step(nic, "attach", operation: operation) { () throws(ControllerError) in
            let plugged = try await Self.adapting { () throws(FailoverError) in try await adapter.attach(vf) }
            return (nil, plugged ? "attached through \(adapter.name)" : "the guest held it already")
        }
        let settle = self.settle
        let deadline = readyDeadline
        try await run.step(nic, "wait", operation: operation) { () throws(ControllerError) in
            let seen = try await Self.adapting { () throws(FailoverError) in try await adapter.waitUntilReady(vf, deadline: deadline) }
            try? await Task.sleep(for: settle)
            return (nil, "\(seen); held \(NetnsGuest.milliseconds(settle)) ms more before steering")
        }
        try await run.step(nic, "steer", operation: operation) { () throws(ControllerError) in
            let outcome = try await Self.adapting { () throws(FailoverError) in try await adapter.steer(to: .vf, vf: vf) }
            return (outcome.lever, outcome.note)
        }
    }

    private func runComplete(_ record: StateStore.MigrationRecord, operation: String) async throws(ControllerError) -> Migration {
        let vm = record.migration.vm
        let run = Run(service: self, id: record.migration.id, vm: vm, operation: operation)
        var touched: [(Assignment, any FailoverAdapter)] = []
        for nic in record.migration.nics {
            do throws(StepFailure) {
                let found: Assignment?
                do { found = try assignment(vm, nic.nic) } catch { throw StepFailure(nic: nic.nic, step: "mac", error: error) }
                guard let a = found, let failover = a.failover else {
                    throw StepFailure(nic: nic.nic, step: "mac", error: .conflict("the reservation of \(vm)/\(nic.nic) is gone"))
                }
                let adapter = assignments.adapters(failover)
                touched.append((a, adapter))
                var standbyWasUp: Bool?
                do { standbyWasUp = try await adapter.standbyIsUp() } catch { standbyWasUp = nil }
                try await programMAC(a, adapter: adapter, run: run, operation: operation)
                // After the MAC step: a re-probed host-driver VF has a new netdev.
                let vf = await assignments.failoverVF(a)
                try await attachAndSteer(nic.nic, vf: vf, adapter: adapter, run: run, operation: operation)
                try await run.step(nic.nic, "standby-restore", operation: operation) { () throws(ControllerError) in
                    guard let standbyWasUp else { return (nil, "the adapter cannot read the standby's link; left as it is") }
                    let outcome = try await Self.adapting { () throws(FailoverError) in
                        try await adapter.setStandby(up: standbyWasUp, vf: vf)
                    }
                    return (outcome.lever, "as it was before complete (\(standbyWasUp ? "up" : "down"))")
                }
            } catch {
                return try await rollBackComplete(record, touched: touched, failure: error, run: run, operation: operation)
            }
        }
        return try settle(record, .completed, pending: .some(nil), error: .some(nil), rollback: .some(nil))
    }

    /// The `mac` step of `complete`: the guest's MAC, withheld since
    /// `incoming` (the source cleared its own in `prepare`), is set on the
    /// reserved VF before it is attached. A host-driver VF (igbvf, iavf)
    /// takes a MAC only when its driver probes: it is unbound and bound
    /// again, here, while the guest runs on its standby. A VF the guest
    /// holds already (a complete finished after a crash past its attach)
    /// is not re-probed under it.
    private func programMAC(_ a: Assignment, adapter: any FailoverAdapter, run: Run, operation: String) async throws(StepFailure) {
        try await run.step(a.nic, "mac", operation: operation) { () throws(ControllerError) in
            guard let mac = a.config.mac else { return (nil, "no MAC asked for; the VF keeps its own") }
            let report = try await self.controller.configure(vf: a.vf, VFConfig(mac: mac))
            if report.failed { throw .hostFailure("setting the MAC of \(a.vf): \(report.failures)") }
            var detail = "PF \(a.pf) vf \(a.vfIndex) mac \(mac)"
            guard a.driver == .host else { return (nil, detail) }
            // Inside the step: the MAC is set, the driver not re-probed yet.
            await self.crashPoints.hit("migration.\(operation).mac.set")
            let vf = await self.assignments.failoverVF(a)
            let held = try await Self.adapting { () throws(FailoverError) in try await adapter.isAttached(vf) }
            if held == true {
                detail += "; the guest holds the VF already: not re-probed"
            } else {
                let before = await self.controller.driver(of: a.vf)
                _ = try await self.controller.bind(vf: a.vf, to: .none)
                let now = try await self.controller.bind(vf: a.vf, to: .host)
                detail += "; \(before ?? "its driver") unbound and \(now ?? "the host driver") bound again to take it"
            }
            return (nil, detail)
        }
    }

    /// Undoes a failed `complete`: each NIC it touched steered back to the
    /// standby, taken out of the guest and its MAC cleared again; the
    /// reservations stay for another `complete`, or an abort.
    private func rollBackComplete(
        _ record: StateStore.MigrationRecord, touched: [(Assignment, any FailoverAdapter)], failure: StepFailure, run: Run,
        operation: String
    ) async throws(ControllerError) -> Migration {
        let vm = record.migration.vm
        var rollback = MigrationRollback()
        for (a, adapter) in touched.reversed() {
            let vf = await assignments.failoverVF(a)
            await rollbackStep(a.nic, "steer", run: run, into: &rollback) { () throws(ControllerError) in
                let o = try await Self.adapting { () throws(FailoverError) in try await adapter.steer(to: .standby, vf: vf) }
                return (o.lever, o.note)
            }
            let detached = await rollbackStep(a.nic, "detach", run: run, into: &rollback) { () throws(ControllerError) in
                let removed = try await Self.adapting { () throws(FailoverError) in try await adapter.detach(vf) }
                return (nil, removed ? "taken out of the guest" : "the guest did not hold it")
            }
            guard detached else {
                // The guest still holds the VF: its MAC stays, or the guest loses it.
                rollback.notUndone.append(MigrationRollbackStep(
                    nic: a.nic, step: "clear-mac", reason: "not tried: the VF is still in the guest (detach failed)"))
                continue
            }
            await rollbackStep(a.nic, "clear-mac", run: run, into: &rollback) { () throws(ControllerError) in
                let report = try await self.controller.clearMAC(vf: a.vf)
                if report.failed { throw .hostFailure(report.failures) }
                return (nil, "PF \(a.pf) vf \(a.vfIndex) mac 00:00:00:00:00:00")
            }
        }
        let stored = MigrationFailure(operation: operation, nic: failure.nic, step: failure.step, reason: failure.error.description)
        _ = try settle(record, .failed, pending: .some(nil), error: stored, rollback: rollback)
        throw .hostFailure(
            "\(operation == "complete" ? "complete" : "finishing an interrupted complete") failed at step \(failure.step) of \(vm)/\(failure.nic ?? "?"): \(failure.error); " + Self.summary(rollback)
                + (rollback.isComplete
                    ? "; the VFs are out of the guest, the reservations kept (complete again, or abort)"
                    : "; the reservations are kept (complete again, or abort)"))
    }

    /// One rollback step, journaled and timed like any; its outcome goes
    /// into `rollback`. Returns whether it succeeded.
    @discardableResult
    private func rollbackStep(
        _ nic: String, _ name: String, run: Run, into rollback: inout MigrationRollback,
        _ body: () async throws(ControllerError) -> (lever: String?, detail: String?)
    ) async -> Bool {
        do throws(StepFailure) {
            try await run.step(nic, name, operation: "rollback", body)
            rollback.undone.append(MigrationRollbackStep(nic: nic, step: name))
            return true
        } catch {
            rollback.notUndone.append(MigrationRollbackStep(nic: nic, step: name, reason: error.error.description))
            return false
        }
    }

    private func runAbort(_ record: StateStore.MigrationRecord) async throws(ControllerError) -> Migration {
        let vm = record.migration.vm
        let run = Run(service: self, id: record.migration.id, vm: vm, operation: "abort")
        var failures: [StepFailure] = []
        for nic in record.migration.nics {
            do throws(StepFailure) {
                switch record.migration.role {
                case .source:
                    try await restoreNIC(vm: vm, nic: nic, context: record.context[nic.nic], run: run, operation: "abort")
                case .destination:
                    try await abortReservation(vm: vm, nic: nic.nic, run: run)
                }
            } catch {
                failures.append(error)
            }
        }
        guard let first = failures.first else {
            return try settle(record, .aborted, pending: .some(nil), error: .some(nil), rollback: .some(nil))
        }
        let rollback = Self.rollback(of: run, operation: "abort", failures: failures, role: record.migration.role)
        let stored = MigrationFailure(operation: "abort", nic: first.nic, step: first.step, reason: first.error.description)
        _ = try settle(record, .failed, pending: .some(nil), error: stored, rollback: rollback)
        throw .hostFailure(
            "abort failed at step \(first.step) of \(vm)/\(first.nic ?? "?"): \(first.error); \(Self.summary(rollback)); try abort again")
    }

    /// The destination's abort of one NIC: out of the guest when it is there
    /// (a failed complete that could not detach it), then its reservation
    /// released (whose release asks the adapter to detach it anyway, for
    /// adapters that cannot tell).
    private func abortReservation(vm: String, nic: String, run: Run) async throws(StepFailure) {
        let found: Assignment?
        do { found = try assignment(vm, nic) } catch { throw StepFailure(nic: nic, step: "release", error: error) }
        guard let a = found else { return }
        if let failover = a.failover {
            let adapter = assignments.adapters(failover)
            let vf = await assignments.failoverVF(a)
            let held: Bool?
            do { held = try await adapter.isAttached(vf) } catch { throw StepFailure(nic: nic, step: "detach", error: .hostFailure(error.description)) }
            if held == true {
                try await run.step(nic, "detach", operation: "abort") { () throws(ControllerError) in
                    _ = try await Self.adapting { () throws(FailoverError) in try await adapter.steer(to: .standby, vf: vf) }
                    let removed = try await Self.adapting { () throws(FailoverError) in try await adapter.detach(vf) }
                    return (nil, removed ? "taken out of the guest" : "the guest did not hold it")
                }
            }
        }
        try await releaseReservation(vm: vm, nic: nic, run: run)
    }

    private func releaseReservation(vm: String, nic: String, run: Run) async throws(StepFailure) {
        let found: Assignment?
        do { found = try assignment(vm, nic) } catch { throw StepFailure(nic: nic, step: "release", error: error) }
        guard found != nil else { return }
        try await run.step(nic, "release", operation: run.operation) { () throws(ControllerError) in
            let a = try await self.assignments.release(NICKey(unchecked: vm, nic: nic))
            return (nil, "VF \(a.vf) free again")
        }
    }

    private func rollBackPrepare(
        _ record: StateStore.MigrationRecord, touched: [MigrationNIC], failure: StepFailure, run: Run, rethrow: Bool = true
    ) async throws(ControllerError) -> Migration {
        let context = try latest(record.migration.vm)?.context ?? record.context
        var failures: [StepFailure] = []
        for nic in touched.reversed() {
            do {
                try await restoreNIC(
                    vm: record.migration.vm, nic: nic, context: context[nic.nic], run: run, operation: "rollback")
            } catch {
                failures.append(error)
            }
        }
        let rollback = Self.rollback(of: run, operation: "rollback", failures: failures, role: .source)
        let stored = MigrationFailure(operation: "prepare", nic: failure.nic, step: failure.step, reason: failure.error.description)
        let migration = try settle(record, .failed, pending: .some(nil), error: stored, rollback: rollback)
        guard rethrow else { return migration }
        throw .hostFailure(
            "prepare failed at step \(failure.step) of \(record.migration.vm)/\(failure.nic ?? "?"): \(failure.error); "
                + (rollback.isComplete ? "rolled back, the guest is on its VFs again" : "rollback incomplete: " + Self.summary(rollback)))
    }

    /// The steps that put a source NIC back on a VF, in order (`restoreNIC`).
    static let restoreSteps = ["reassign", "attach", "wait", "steer"]
    /// The steps that free a destination's reservation, in order (`abortReservation`).
    static let releaseSteps = ["detach", "release"]

    /// What a rollback (or an abort) did, from its run's journal: the steps
    /// that went through are undone; each that failed, and those of the same
    /// NIC it kept from being tried, are not.
    static func rollback(of run: Run, operation: String, failures: [StepFailure], role: MigrationRole) -> MigrationRollback {
        var rollback = MigrationRollback()
        for step in run.finished where step.operation == operation && step.result != "failed" {
            rollback.undone.append(MigrationRollbackStep(nic: step.nic, step: step.step))
        }
        let order = role == .source ? restoreSteps : releaseSteps
        for failure in failures {
            let nic = failure.nic ?? "?"
            rollback.notUndone.append(MigrationRollbackStep(nic: nic, step: failure.step, reason: failure.error.description))
            if let i = order.firstIndex(of: failure.step) {
                for later in order[(i + 1)...] {
                    rollback.notUndone.append(MigrationRollbackStep(nic: nic, step: later, reason: "not tried: \(failure.step) failed"))
                }
            }
        }
        return rollback
    }

    /// "undone: net0 steer, net0 detach; not undone: net1 release (why)".
    static func summary(_ rollback: MigrationRollback) -> String {
        let undone = rollback.undone.map { "\($0.nic) \($0.step)" }
        let not = rollback.notUndone.map { "\($0.nic) \($0.step) (\($0.reason ?? "?"))" }
        return "undone: \(undone.isEmpty ? "nothing" : undone.joined(separator: ", "))"
            + "; not undone: \(not.isEmpty ? "nothing" : not.joined(separator: ", "))"
    }

    // MARK: Helpers

    /// Runs `body` unless an operation of the VM's migration runs already.
    private func exclusively<T: Sendable>(
        _ vm: String, _ body: () async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        let claimed = running.withLock { $0.insert(vm).inserted }
        guard claimed else { throw .conflict("a migration operation of VM \(vm) is running; retry when it is done") }
        defer { _ = running.withLock { $0.remove(vm) } }
        // The VM's VFs are in motion: drift checks leave them alone meanwhile.
        return try await assignments.busy(vm: vm) { () throws(ControllerError) in try await body() }
    }

    /// The VMs with a migration operation running now (empty when none runs).
    func runningVMs() -> [String] {
        running.withLock { $0.sorted() }
    }

    private func settle(
        _ record: StateStore.MigrationRecord, _ state: MigrationState, pending: String??, error: MigrationFailure?? = nil,
        rollback: MigrationRollback?? = nil
    ) throws(ControllerError) -> Migration {
        try storing {
            try self.store.updateMigration(id: record.migration.id, state: state, pending: pending, error: error, rollback: rollback)
        }
        guard let now = try latest(record.migration.vm) else { throw .hostFailure("the migration record of \(record.migration.vm) vanished") }
        if state != record.migration.state || state == .failed { announce(record, state: state, error: now.migration.error) }
        return now.migration
    }

    private func announce(_ record: StateStore.MigrationRecord, previous: MigrationState?) {
        events.publish(
            .migrationState(MigrationStateChange(
                id: record.migration.id, role: record.migration.role, state: record.migration.state, previous: previous,
                error: nil, nics: record.migration.nics.map(\.nic))),
            EventSubject(vm: record.migration.vm))
    }

    private func announce(_ record: StateStore.MigrationRecord, state: MigrationState, error: MigrationFailure? = nil) {
        events.publish(
            .migrationState(MigrationStateChange(
                id: record.migration.id, role: record.migration.role, state: state, previous: record.migration.state,
                error: state == .failed ? error : nil, nics: record.migration.nics.map(\.nic))),
            EventSubject(vm: record.migration.vm))
    }

    private func runningMessage(_ vm: String) throws(ControllerError) -> String {
        let state = try latest(vm).map { "\($0.migration.state)\($0.pending.map { " (\($0) running)" } ?? "")" } ?? "?"
        return "VM \(vm) has a migration in progress on this host (\(state)); complete or abort it first"
    }

    private func latest(_ vm: String) throws(ControllerError) -> StateStore.MigrationRecord? {
        try storing { try self.store.latestMigration(vm: vm) }
    }

    private func hasReservations(_ record: StateStore.MigrationRecord) throws(ControllerError) -> Bool {
        for nic in record.migration.nics where try assignment(record.migration.vm, nic.nic) == nil { return false }
        return true
    }

    private func failoverAssignments(_ vm: String) throws(ControllerError) -> [Assignment] {
        try storing { try self.store.assignments() }.filter { $0.vm == vm && $0.failover != nil }
    }

    private func assignment(_ vm: String, _ nic: String) throws(ControllerError) -> Assignment? {
        try storing { try self.store.assignment(NICKey(unchecked: vm, nic: nic)) }
    }

    private func loadRequest(_ key: NICKey) throws(ControllerError) -> AssignmentRequest? {
        try storing { try self.store.assignmentRequest(key) }
    }

    private func storing<T>(_ body: () throws -> T) throws(ControllerError) -> T {
        do { return try body() } catch { throw .hostFailure("the state store: \(error)") }
    }

    static func adapting<T>(_ body: () async throws(FailoverError) -> T) async throws(ControllerError) -> T {
        do { return try await body() } catch { throw .hostFailure(error.description) }
    }

    /// The settings an assignment had, with the link-state lever undone.
    static func restoring(_ config: VFConfig) -> VFConfig {
        var c = config
        if c.linkState == nil { c.linkState = .auto }
        return c
    }

    static func linkStateLever(_ report: VFController.VFReport, to state: VFLinkState) -> (String?, String?) {
        guard let result = report.results.first(where: { $0.setting == .linkState }) else {
            return (nil, "the driver reported no link state")
        }
        switch result.outcome {
        case .applied, .unchanged: return ("vf link-state \(state)", nil)
        default: return (nil, "no VF link-state lever: \(result.detail ?? result.outcome.rawValue)")
        }
    }
}

/// A step that failed: which NIC, which step, why.
struct StepFailure: Error {
    var nic: String?
    var step: String
    var error: ControllerError
}

/// One operation's steps: each journaled (result "running") before it is
/// taken, then finished with its duration, result, lever and detail, and
/// published on the bus; then its crash point (`migration.<operation>.<step>`)
/// is passed. A step whose end cannot be journaled fails.
final class Run: Sendable {
    let service: MigrationService
    let id: Int
    let vm: String
    let operation: String
    let started = ContinuousClock.now
    /// Steps that pull a lever: without one (the adapter or driver has
    /// none; the detail says why) they are `skipped`, not `ok`.
    static let leverSteps: Set<String> = ["standby-up", "steer", "link-state", "standby-restore"]
    private let done = Mutex<[MigrationStep]>([])

    /// The steps this run finished (ok, skipped or failed), in order.
    var finished: [MigrationStep] { done.withLock { $0 } }

    init(service: MigrationService, id: Int, vm: String, operation: String) {
        self.service = service
        self.id = id
        self.vm = vm
        self.operation = operation
    }

    func step(
        _ nic: String, _ name: String, operation: String? = nil,
        _ body: () async throws(ControllerError) -> (lever: String?, detail: String?)
    ) async throws(StepFailure) -> Void {
        _ = try await step(nic, name, operation: operation) { () throws(ControllerError) -> ((String?, String?), Void) in
            (try await body(), ())
        }
    }

    func step<T>(
        _ nic: String, _ name: String, operation: String? = nil,
        _ body: () async throws(ControllerError) -> ((lever: String?, detail: String?), T)
    ) async throws(StepFailure) -> T {
        let op = operation ?? self.operation
        let clock = ContinuousClock()
        let begin = clock.now
        var step = MigrationStep(
            operation: op, nic: nic, step: name, startedAt: Date(), offsetMs: (begin - started).milliseconds, result: "running")
        let rowID: Int64
        do { rowID = try service.store.beginStep(migration: id, step) } catch {
            throw StepFailure(nic: nic, step: name, error: .hostFailure("journaling step \(name): \(error)"))
        }
        let subject = EventSubject(vm: vm, nic: nic)
        var value: Result<T, ControllerError>
        var failure: ControllerError?
        do {
            let ((lever, detail), v) = try await body()
            value = .success(v)
            step.result = lever == nil && Self.leverSteps.contains(name) ? "skipped" : "ok"
            step.lever = lever
            step.detail = detail
        } catch {
            failure = error
            value = .failure(error)
            step.result = "failed"
            step.detail = error.description
        }
        step.durationMs = (clock.now - begin).milliseconds
        do {
            try service.store.finishStep(
                rowID, durationMs: step.durationMs ?? 0, result: step.result, lever: step.lever, detail: step.detail)
        } catch {
            let journaling = "journaling the end of step \(name) (\(step.result)): \(error)"
            failure = .hostFailure(failure.map { "\($0); \(journaling)" } ?? journaling)
        }
        done.withLock { $0.append(step) }
        service.events.publish(.migrationStep(step), subject)
        if let failure { value = .failure(failure) }
        switch value {
        case .failure(let error): throw StepFailure(nic: nic, step: name, error: error)
        case .success(let v):
            await service.crashPoints.hit("migration.\(op).\(name)")
            return v
        }
    }
}
