import Foundation
import Logging
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import SRIOVHypervisor
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Gives VFs to VM NICs and takes them back, never losing or double-booking
/// one: the choice of VF and the NIC's claim on it are one database
/// transaction (the VF column is unique), every hardware step is journaled
/// before it is done, a failed step undoes the earlier ones, and a restart
/// rolls interrupted work back (assign) or forward (release).
public final class AssignmentService: Sendable {
    let controller: VFController
    let store: StateStore
    let inventory: any InventorySource
    let configuration: @Sendable () -> SRIOVConfiguration
    let logger: Logger
    /// The controller's: assignments and the VF changes made for them are one sequence.
    let events: EventBus
    let timers: OperationTimers
    /// The adapter that reaches a failover NIC's guest (replaced by fakes in tests).
    let adapters: @Sendable (FailoverSpec) -> any FailoverAdapter
    /// Where tests stop an operation (see `CrashPoints`).
    let crashPoints: CrashPoints
    private let allocation = KeyedLock<String>()
    /// VMs with an operation in flight (assign, change, release, migration,
    /// heal), with how many: their VFs' settings are in motion, so drift
    /// checks leave them alone.
    private let activeVMs = Mutex<[String: Int]>([:])

    public init(
        controller: VFController, store: StateStore, inventory: any InventorySource,
        configuration: @escaping @Sendable () -> SRIOVConfiguration, logger: Logger,
        adapters: @escaping @Sendable (FailoverSpec) -> any FailoverAdapter = { FailoverAdapters.make($0) },
        crashPoints: CrashPoints = .none
    ) {
        self.adapters = adapters
        self.crashPoints = crashPoints
        self.controller = controller
        self.store = store
        self.inventory = inventory
        self.configuration = configuration
        self.logger = logger
        self.events = controller.events
        self.timers = controller.timers
    }

    public enum Outcome: Sendable {
        case created(Assignment)
        /// The same request for the same NIC: the existing assignment.
        case existing(Assignment)
    }

    // MARK: Assign

    /// Gives the NIC a VF. A failover NIC's VF is attached to its guest
    /// unless `attach` is false (a migration's reservation, attached on
    /// `complete`).
    /// `preferring` a VF puts it first among the candidates when it is free
    /// (a migration's abort gives the NIC back the VF it had).
    /// `withholdingMAC`: the VF is programmed without the requested MAC (its
    /// MAC cleared), which the assignment still records: a migration's
    /// reservation, whose MAC `complete` sets once the source cleared its own.
    public func assign(
        _ request: AssignmentRequest, attach: Bool = true, preferring preferred: PCIAddress? = nil,
        withholdingMAC: Bool = false
    ) async throws(ControllerError) -> Outcome {
        try await busy(vm: request.vm) { () throws(ControllerError) in
            try await timers.measure("assignment.create") { () throws(ControllerError) in
                try await OperationContext.attributing(vm: request.vm, nic: request.nic) { () throws(ControllerError) in
                    try await assignAttributed(request, attach: attach, preferred: preferred, withholdingMAC: withholdingMAC)
                }
            }.value
        }
    }

    private func assignAttributed(
        _ request: AssignmentRequest, attach: Bool, preferred: PCIAddress?, withholdingMAC: Bool
    ) async throws(ControllerError) -> Outcome {
        let key: NICKey
        do { key = try request.validated() } catch { throw .invalid(error) }
        if case .hook(let command) = request.failover {
            do { try HookCommand.validate(path: command, field: "failover.command") } catch { throw .invalid(error) }
        }
        if let outcome = try existing(key, request) { return await enriched(outcome) }
        // The guest is checked before anything is reserved or programmed.
        if attach, request.failover != nil { try await preflight(request, field: "") }

        // Choosing a VF and claiming it are serialized (fast, no hardware);
        // programming happens after, under the controller's per-VF lock.
        let allocation: Allocation = try await withAllocationLock { () throws(ControllerError) -> Allocation in
            if let outcome = try self.existing(key, request) { return .found(outcome) }
            var candidates = try await self.candidates(for: request)
            if let preferred, let i = candidates.firstIndex(where: { $0.vf == preferred }) {
                candidates.insert(candidates.remove(at: i), at: 0)
            }
            for candidate in candidates {
                let previous = await self.controller.driver(of: candidate.vf)
                let reservation: StateStore.Reservation
                do {
                    reservation = try self.store.reserve(
                        request, vf: candidate.vf, pf: candidate.pf, index: candidate.index, previousDriver: previous)
                } catch {
                    throw .hostFailure("recording the assignment of \(key): \(error)")
                }
                switch reservation {
                case .reserved(let assignment): return .reserved(assignment)
                case .existing(let assignment, let original):
                    return .found(try Self.compare(assignment, original, request))
                case .vfTaken: continue
                }
            }
            throw .conflict(self.noFreeVFReason(request))
        }
        let reserved: Assignment
        switch allocation {
        case .found(let outcome): return await enriched(outcome)
        case .reserved(let a): reserved = a
        }
        await crashPoints.hit("assign.reserved")

        do {
            let boundBefore = await controller.driver(of: reserved.vf)
            var programmed = request.config
            if withholdingMAC { programmed.mac = nil }
            let report = try await controller.configure(vf: reserved.vf, programmed)
            if report.failed {
                throw ControllerError.hostFailure("programming \(reserved.vf) for \(key) failed: \(report.failures)")
            }
            // The VF is the assignment's from here: what it has now is what a
            // release puts back, also where nothing had to be written (else a
            // drift corrected later would be taken for the original).
            try controller.keepOriginal(report)
            if withholdingMAC, report.settings.mac != nil, report.settings.mac != .zero {
                let cleared = try await controller.clearMAC(vf: reserved.vf)
                if cleared.failed {
                    throw ControllerError.hostFailure("clearing the MAC of \(reserved.vf) for \(key) failed: \(cleared.failures)")
                }
            }
            try journal(key, "programmed")
            // Trust and spoof check as the VF has them now, when not asked
            // for: turning them on later is drift too.
            let baseline = report.settings.keeping(
                [VFSettingGroup.trust, .spoofCheck].filter { !$0.isSet(in: request.config) })
            do { try store.setBaseline(key, baseline) } catch {
                throw ControllerError.hostFailure("recording \(key): \(error)")
            }
            await crashPoints.hit("assign.programmed")
            try await rebindIfProbedBefore(reserved.vf, request.driver, boundBefore: boundBefore, report)
            _ = try await controller.bind(vf: reserved.vf, to: request.driver.choice)
            try journal(key, "bound")
            await crashPoints.hit("assign.bound")
            if attach, let failover = request.failover {
                try await attachToGuest(reserved, failover)
                try journal(key, "attached")
                await crashPoints.hit("assign.attached")
            }
            do { try store.commit(key) } catch { throw ControllerError.hostFailure("recording \(key): \(error)") }
        } catch {
            logger.error("assignment failed; undoing it", metadata: meta(reserved, op: "assignment.create", ["error": "\(error)"]))
            await undo(reserved)
            throw (error as? ControllerError) ?? .hostFailure("\(error)")
        }
        let done = try await describe(key)
        events.publish(.assignmentCreated(done), EventSubject(done))
        return .created(done)
    }

    /// An outcome with the VF's device details (netdev, /dev/vfio/N) filled in.
    private func enriched(_ outcome: Outcome) async -> Outcome {
        switch outcome {
        case .existing(let a): .existing(await enrich(a))
        case .created(let a): .created(await enrich(a))
        }
    }

    private enum Allocation: Sendable {
        case reserved(Assignment)
        case found(Outcome)
    }

    private func withAllocationLock<T: Sendable>(
        _ body: @Sendable () async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        do {
            return try await allocation.withLock("allocation") { try await body() }
        } catch let error as ControllerError {
            throw error
        } catch {
            throw .hostFailure("\(error)")
        }
    }

    /// The NIC's assignment when it has one: the same request gives it back,
    /// a different one is a conflict.
    private func existing(_ key: NICKey, _ request: AssignmentRequest) throws(ControllerError) -> Outcome? {
        let found: (Assignment, AssignmentRequest)?
        do {
            guard let a = try store.assignment(key), let r = try store.assignmentRequest(key) else { return nil }
            found = (a, r)
        } catch {
            throw .hostFailure("reading the assignment of \(key): \(error)")
        }
        guard let (assignment, original) = found else { return nil }
        return try Self.compare(assignment, original, request)
    }

    static func compare(_ a: Assignment, _ original: AssignmentRequest, _ request: AssignmentRequest) throws(ControllerError) -> Outcome {
        guard a.state == .assigned || a.state == .degraded || a.state == .failed else {
            throw .conflict("\(a.vm)/\(a.nic) is being \(a.state == .releasing ? "released" : "assigned") right now; retry shortly")
        }
        guard original == request else {
            throw .conflict(
                "\(a.vm)/\(a.nic) already has VF \(a.vf) from a different request; release it first (DELETE /v1/assignments/\(a.vm)/\(a.nic))")
        }
        return .existing(a)
    }

    struct Candidate {
        var vf: PCIAddress
        var pf: PCIAddress
        var index: Int
    }

    /// Free VFs that may serve the request, best first: NUMA-local PFs first
    /// when a node is asked for, then the PF with the most free VFs (spread),
    /// lowest index first.
    private func candidates(for request: AssignmentRequest) async throws(ControllerError) -> [Candidate] {
        var allowed: [PCIAddress: Set<Int>?] = [:]  // PF → indices (nil: all)
        if let pool = request.pool {
            let config = configuration()
            var found = false
            for entry in config.pfs {
                for p in entry.pools where p.name == pool {
                    found = true
                    let pfs: [PhysicalFunction]
                    do { pfs = try await inventory.physicalFunctions() } catch {
                        throw .hostFailure("reading the PFs: \(error)")
                    }
                    for pf in entry.match.select(from: pfs) {
                        // updateValue: a nil index set (every VF) must be stored, not remove the key.
                        allowed.updateValue(p.vfs.map { Set($0.indices) }, forKey: pf.pciAddress)
                    }
                }
            }
            guard found else {
                throw .invalid(ValidationError(field: "pool", value: pool, reason: "is not a pool in the configuration"))
            }
        } else if let pf = request.pf {
            guard await controller.isSRIOVPF(pf) else {
                throw .invalid(ValidationError(field: "pf", value: pf.description, reason: "is not an SR-IOV physical function on this host"))
            }
            allowed.updateValue(nil, forKey: pf)
        }
        var perPF: [(pf: PCIAddress, numa: Int?, free: [Candidate])] = []
        for (pf, indices) in allowed {
            var free: [Candidate] = []
            for vf in await controller.vfAddresses(of: pf) {
                if let indices, !indices.contains(vf.index) { continue }
                if await isFree(vf.address) { free.append(Candidate(vf: vf.address, pf: pf, index: vf.index)) }
            }
            let numa = (try? await inventory.physicalFunction(pf))??.pf.numaNode
            perPF.append((pf, numa, free))
        }
        perPF.sort { a, b in
            if let node = request.numaNode {
                let aLocal = a.numa == node, bLocal = b.numa == node
                if aLocal != bLocal { return aLocal }
            }
            if a.free.count != b.free.count { return a.free.count > b.free.count }
            return a.pf < b.pf
        }
        return perPF.flatMap(\.free)
    }

    /// Free: no assignment, not configured through the API by someone else,
    /// and not bound to vfio-pci outside sriovd (a VM may hold it).
    private func isFree(_ vf: PCIAddress) async -> Bool {
        await controller.use(of: vf).isEmpty
    }

    private func noFreeVFReason(_ request: AssignmentRequest) -> String {
        if let pool = request.pool { return "no free VF in pool \(pool): every VF is assigned or in use" }
        return "no free VF on \(request.pf.map(\.description) ?? "?"): every VF is assigned or in use (raise numVFs?)"
    }

    // MARK: Change and release

    /// Changes the live settings of an assignment (VLAN, QoS, rates, link state, spoof check, trust, RSS query).
    public func update(_ key: NICKey, _ change: VFConfig) async throws(ControllerError) -> (Assignment, VFController.VFReport) {
        try await busy(vm: key.vm) { () throws(ControllerError) in
            try await timers.measure("assignment.update") { () throws(ControllerError) in
                try await OperationContext.attributing(vm: key.vm, nic: key.nic) { () throws(ControllerError) in
                    try await updateAttributed(key, change)
                }
            }.value
        }
    }

    private func updateAttributed(
        _ key: NICKey, _ change: VFConfig
    ) async throws(ControllerError) -> (Assignment, VFController.VFReport) {
        guard let assignment = try load(key) else { throw .notFound("no assignment for \(key)") }
        if assignment.state == .degraded || assignment.state == .failed {
            throw .conflict(
                "\(key) is \(assignment.state.rawValue) (\(assignment.reason ?? "its VF is gone")); it can be changed once healed, or released")
        }
        guard assignment.state == .assigned else { throw .conflict("\(key) is being \(assignment.state.rawValue); retry shortly") }
        guard await controller.location(of: assignment.vf) != nil else {
            throw .conflict("\(key)'s VF \(assignment.vf) no longer exists (its PF's VF count changed); release the NIC")
        }
        var merged = assignment.config
        for group in VFSettingGroup.allCases { group.merge(change, into: &merged) }
        do { try merged.validate() } catch { throw .invalid(error) }
        // Each group is one kernel attribute (VLAN id, QoS and protocol;
        // both rates): the groups changed are sent whole, as merged.
        let toApply = merged.keeping(VFSettingGroup.groups(in: change))
        let report = try await controller.configure(vf: assignment.vf, toApply)
        if report.failed {
            throw .hostFailure("changing \(key): " + report.failures)
        }
        var request = try loadRequest(key)
        request?.config = merged
        do { try store.commit(key, config: merged, request: request) } catch {
            throw .hostFailure("recording \(key): \(error)")
        }
        let done = try await describe(key)
        events.publish(.assignmentChanged(done), EventSubject(done))
        return (done, report)
    }

    /// Takes the VF back: its original settings restored, its previous
    /// driver back, and it is free. `detached`: the caller has just taken
    /// the VF out of its guest (a migration's detach step), so the adapter
    /// is not asked again.
    public func release(_ key: NICKey, detached: Bool = false) async throws(ControllerError) -> Assignment {
        try await busy(vm: key.vm) { () throws(ControllerError) in
            try await timers.measure("assignment.release") { () throws(ControllerError) in
                try await OperationContext.attributing(vm: key.vm, nic: key.nic) { () throws(ControllerError) in
                    try await releaseAttributed(key, detached: detached)
                }
            }.value
        }
    }

    private func releaseAttributed(_ key: NICKey, detached: Bool) async throws(ControllerError) -> Assignment {
        guard let current = try load(key) else { throw .notFound("no assignment for \(key)") }
        if current.state == .assigning { throw .conflict("\(key) is being assigned right now; retry shortly") }
        let assignment: Assignment
        do {
            guard let a = try store.beginRelease(key) else { throw ControllerError.notFound("no assignment for \(key)") }
            assignment = a
        } catch let error as ControllerError {
            throw error
        } catch {
            throw .hostFailure("recording the release of \(key): \(error)")
        }
        await crashPoints.hit("release.begun")
        try await finishRelease(assignment, detached: detached)
        var released = assignment
        released.state = .released
        events.publish(.assignmentReleased(released), EventSubject(released))
        return released
    }

    /// The release steps, from wherever they stopped: out of the guest,
    /// unbind, restore, previous driver, forget. Each is idempotent.
    func finishRelease(_ a: Assignment, detached: Bool = false) async throws(ControllerError) {
        // The VF may be gone (its PF's count lowered with force): nothing
        // left to restore; forget it.
        if await controller.location(of: a.vf) == nil {
            controller.forgetGone(vf: a.vf)
            do { try store.remove(a.key) } catch { throw .hostFailure("recording the release of \(a.key): \(error)") }
            logger.notice("released an assignment whose VF no longer exists", metadata: meta(a, op: "assignment.release", [:]))
            return
        }
        // Out of the guest first (the netdev back from its namespace, the
        // device unplugged): a VF is never unbound under a running guest.
        if let failover = a.failover, !detached {
            let vf = await failoverVF(a)
            do { _ = try await adapters(failover).detach(vf) } catch {
                throw .hostFailure("detaching \(a.vf) from \(a.key)'s guest: \(error)")
            }
        }
        // Unbind first so the guest driver stops before its MAC/VLAN go.
        if await controller.driver(of: a.vf) == "vfio-pci" || a.driver == .host {
            _ = try await controller.bind(vf: a.vf, to: .none)
        }
        try journal(a.key, "unbound")
        await crashPoints.hit("release.unbound")
        // Restore (or scrub) is idempotent: after a crash it is simply done again.
        let scrub = configuration().daemon.releaseAction == .scrub
        let report = scrub ? try await controller.scrub(vf: a.vf, releasing: true) : try await controller.restore(vf: a.vf)
        if report.failed {
            throw .hostFailure("\(scrub ? "scrubbing" : "restoring") \(a.vf) after \(a.key): " + report.failures)
        }
        try journal(a.key, "restored")
        await crashPoints.hit("release.restored")
        if let previous = a.previousDriver {
            let choice: VFDriverChoice = previous == "vfio-pci" ? .vfio : .host
            do { _ = try await controller.bind(vf: a.vf, to: choice) } catch {
                // The VF is restored and free; only its driver is not the one it had.
                logger.warning(
                    "released VF could not be given its previous driver back",
                    metadata: meta(a, op: "assignment.release", ["previousDriver": "\(previous)", "error": "\(error)"]))
            }
        }
        do { try store.remove(a.key) } catch { throw .hostFailure("recording the release of \(a.key): \(error)") }
    }

    /// Undoes a partly done assignment: restore, previous driver, forget.
    private func undo(_ a: Assignment) async {
        do {
            try await finishRelease(a)
        } catch {
            logger.critical(
                "could not undo a failed assignment; it stays recorded and is retried at the next start",
                metadata: meta(a, op: "assignment.undo", ["error": "\(error)"]))
        }
    }

    // MARK: Recovery

    /// Run at start, before serving: rolls interrupted assignments back and
    /// interrupted releases forward, then checks that every assignment's VF
    /// reads back as recorded (re-applying what drifted).
    public func recover() async {
        let all: [Assignment]
        do { all = try store.assignments() } catch {
            logger.critical("cannot read assignments for recovery", metadata: ["error": "\(error)"])
            return
        }
        for a in all {
            switch a.state {
            case .assigning, .releasing:
                logger.notice(
                    "finishing an interrupted operation",
                    metadata: meta(a, op: a.state == .assigning ? "recover.rollback" : "recover.rollforward", [:]))
                do {
                    try await finishRelease(a)
                } catch {
                    logger.error("recovery failed; will retry at next start", metadata: meta(a, op: "recover", ["error": "\(error)"]))
                }
            case .assigned:
                do {
                    // Under `drift = "report"` what changed while sriovd was
                    // down is reported by the watcher's first look, not put back.
                    if configuration().daemon.drift == .correct {
                        let report = try await controller.configure(vf: a.vf, programmable(a, a.config))
                        if report.results.contains(where: { $0.outcome == .applied }) {
                            logger.notice("re-applied drifted settings", metadata: meta(a, op: "recover.verify", [:]))
                        }
                    }
                    if await !controller.driverMatches(a.vf, a.driver.choice) {
                        _ = try await controller.bind(vf: a.vf, to: a.driver.choice)
                    }
                } catch {
                    logger.error("assigned VF could not be verified", metadata: meta(a, op: "recover.verify", ["error": "\(error)"]))
                }
            case .degraded, .failed:
                // The watcher's first look at the PFs heals them (or keeps them degraded).
                logger.notice("assignment is \(a.state); healed when its PF is usable", metadata: meta(a, op: "recover", [:]))
            default:
                // .released is never stored; a state of a newer version is left to it.
                logger.warning("assignment in an unknown state left alone", metadata: meta(a, op: "recover", ["state": "\(a.state)"]))
            }
        }
    }

    // MARK: Healing (the watcher's)

    /// Runs `body` with `vm` counted as busy (see `isBusy`).
    public func busy<T: Sendable>(
        vm: String, _ body: () async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        activeVMs.withLock { $0[vm, default: 0] += 1 }
        defer {
            activeVMs.withLock { active in
                active[vm, default: 1] -= 1
                if active[vm] == 0 { active[vm] = nil }
            }
        }
        return try await body()
    }

    /// What a drift check expects of the assignment's VF (asked settings and baseline).
    func expectedSettings(_ a: Assignment) -> VFConfig {
        programmable(a, (try? store.expectedSettings(a.key)).flatMap { $0 } ?? a.config)
    }

    /// `config` without the MAC while the assignment is a migration's
    /// reservation on the destination (incoming, completing before its
    /// `mac` step, or failed): the source's VF may still carry that MAC, and
    /// one MAC on two VFs of one wire cuts the guest off. `complete` sets it.
    func programmable(_ a: Assignment, _ config: VFConfig) -> VFConfig {
        guard config.mac != nil, isIncomingReservation(a) else { return config }
        var c = config
        c.mac = nil
        return c
    }

    /// Whether the assignment is a destination's reservation that
    /// `complete` has not finished: its guest does not hold it, and its VF
    /// has no MAC (see `programmable`).
    func isIncomingReservation(_ a: Assignment) -> Bool {
        guard let record = try? store.latestMigration(vm: a.vm), record.migration.role == .destination,
            record.migration.nics.contains(where: { $0.nic == a.nic })
        else { return false }
        return ([.incoming, .completing, .failed] as [MigrationState]).contains(record.migration.state)
    }

    /// Asks the request's failover adapter whether the guest matches it
    /// (bond, standby, MAC); a mismatch is refused as bad input naming
    /// `field` + the adapter's field (`failover.bond`, `mac`, ...).
    func preflight(_ request: AssignmentRequest, field prefix: String) async throws(ControllerError) {
        guard let failover = request.failover else { return }
        do { try await adapters(failover).preflight(mac: request.config.mac) } catch {
            if let field = error.field {
                throw .invalid(ValidationError.message(field: prefix + field, error.reason))
            }
            throw .hostFailure("checking \(request.vm)/\(request.nic)'s guest before anything is done: \(error)")
        }
    }

    /// Whether an operation on the VM's NICs is in flight.
    public func isBusy(vm: String) -> Bool {
        activeVMs.withLock { $0[vm] != nil }
    }

    /// The allocation lock and the VMs marked busy now, named (empty when no work runs).
    func heldLocks() async -> [String] {
        (await allocation.busyKeys).sorted() + activeVMs.withLock { $0.keys.sorted().map { "busy \($0)" } }
    }

    /// Every assignment on `pf`.
    func assignments(on pf: PCIAddress) throws(ControllerError) -> [Assignment] {
        do { return try store.assignments().filter { $0.pf == pf } } catch {
            throw .hostFailure("reading assignments: \(error)")
        }
    }

    /// Marks an assignment `degraded` (from `assigned`), publishing it; nil
    /// when it was not assigned.
    func degrade(_ key: NICKey, reason: String) -> Assignment? {
        guard let a = try? store.setHealth(key, to: .degraded, reason: reason, from: [.assigned]) else { return nil }
        logger.warning("assignment degraded", metadata: meta(a, op: "assignment.degrade", ["reason": "\(reason)"]))
        events.publish(.assignmentDegraded(a), EventSubject(a))
        return a
    }

    /// Re-creates a degraded assignment on its (new) VF: settings, driver,
    /// and the guest's attachment where the guest had it. Each step is
    /// idempotent; timings by step.
    func heal(_ a: Assignment) async throws(ControllerError) -> [(name: String, ms: Double)] {
        var steps: [(name: String, ms: Double)] = []
        func timed(_ name: String, _ body: () async throws(ControllerError) -> Void) async throws(ControllerError) {
            let start = ContinuousClock.now
            try await body()
            steps.append((name, (ContinuousClock.now - start).milliseconds))
        }
        return try await busy(vm: a.vm) { () throws(ControllerError) in
            try await OperationContext.attributing(vm: a.vm, nic: a.nic) { () throws(ControllerError) in
                guard let location = await controller.location(of: a.vf), location.index == a.vfIndex else {
                    throw .hostFailure("VF \(a.vfIndex) of \(a.pf) is not at \(a.vf) (its PF has \(await controller.numVFs(pf: a.pf) ?? 0) VFs)")
                }
                let boundBefore = await controller.driver(of: a.vf)
                var programmed: VFController.VFReport?
                try await timed("program") { () throws(ControllerError) in
                    let expected = expectedSettings(a)
                    let report = try await controller.configure(vf: a.vf, expected)
                    if report.failed {
                        throw .hostFailure("programming \(a.vf): " + report.failures)
                    }
                    programmed = report
                }
                try await timed("bind") { () throws(ControllerError) in
                    if let programmed {
                        try await rebindIfProbedBefore(a.vf, a.driver, boundBefore: boundBefore, programmed)
                    }
                    if await !controller.driverMatches(a.vf, a.driver.choice) {
                        _ = try await controller.bind(vf: a.vf, to: a.driver.choice)
                    }
                }
                if let failover = a.failover, guestHolds(a) {
                    try await timed("attach") { () throws(ControllerError) in
                        try await attachToGuest(a, failover)
                    }
                }
                return steps
            }
        }
    }

    /// Attached, carrying, and the guest's primary path: its traffic goes
    /// through the VF.
    private func attachToGuest(_ a: Assignment, _ failover: FailoverSpec) async throws(ControllerError) {
        let vf = await failoverVF(a)
        let adapter = adapters(failover)
        do {
            _ = try await adapter.attach(vf)
            _ = try await adapter.waitUntilReady(vf, deadline: .seconds(15))
            _ = try await adapter.steer(to: .vf, vf: vf)
        } catch {
            throw .hostFailure("attaching \(a.vf) to \(a.key)'s guest: \(error)")
        }
    }

    /// A VF netdev's driver (igbvf, iavf) takes the MAC and port VLAN set
    /// in the PF when it probes: one bound before they were set keeps the
    /// MAC it made up, and the PF refuses its VLAN requests (a bond cannot
    /// enslave it). So a VF handed over with its host driver that was bound
    /// before its settings changed is unbound, and bound again after.
    private func rebindIfProbedBefore(
        _ vf: PCIAddress, _ driver: AssignmentDriver, boundBefore: String?, _ report: VFController.VFReport
    ) async throws(ControllerError) {
        guard driver == .host, let before = boundBefore, before != "vfio-pci",
            report.results.contains(where: { $0.outcome == .applied })
        else { return }
        _ = try await controller.bind(vf: vf, to: .none)
    }

    /// Whether the guest had the VF attached: every failover NIC's is,
    /// but a migration's reservation, attached only on `complete`.
    private func guestHolds(_ a: Assignment) -> Bool {
        !isIncomingReservation(a)
    }

    /// `failed` assignments get new attempts (their PF came back, or sriovd restarted).
    func reviveFailed(on pf: PCIAddress, _ list: [Assignment]) {
        for a in list where a.pf == pf && a.state == .failed {
            _ = try? store.setHealth(a.key, to: .degraded, reason: a.reason, from: [.failed])
        }
    }

    /// Puts a healed assignment back to `assigned`, or gives up on it.
    func finishHeal(_ key: NICKey, to state: AssignmentState, reason: String?) -> Assignment? {
        try? store.setHealth(key, to: state, reason: reason, from: [.degraded, .failed])
    }

    /// The VF as a failover adapter needs it.
    func failoverVF(_ a: Assignment) async -> FailoverVF {
        let e = await enrich(a)
        return FailoverVF(
            vm: a.vm, nic: a.nic, pci: a.vf, pf: a.pf, index: a.vfIndex, mac: a.config.mac, netdev: e.netdev,
            vfioDevice: e.vfioDevice)
    }

    // MARK: Reading

    public func list(vm: String?, pf: PCIAddress?, pool: String?) async throws(ControllerError) -> [Assignment] {
        let all: [Assignment]
        do { all = try store.assignments() } catch { throw .hostFailure("reading assignments: \(error)") }
        var out: [Assignment] = []
        for a in all where (vm == nil || a.vm == vm) && (pf == nil || a.pf == pf) && (pool == nil || a.pool == pool) {
            out.append(await enrich(a))
        }
        return out
    }

    public func get(_ key: NICKey) async throws(ControllerError) -> Assignment {
        try await describe(key)
    }

    private func describe(_ key: NICKey) async throws(ControllerError) -> Assignment {
        guard let a = try load(key) else { throw .notFound("no assignment for \(key)") }
        return await enrich(a)
    }

    private func enrich(_ a: Assignment) async -> Assignment {
        var a = a
        let location = VFLocation(vf: a.vf, pf: a.pf, index: a.vfIndex)
        let vf = await controller.describe(location)
        a.iommuGroup = vf.iommuGroup
        a.numaNode = vf.numaNode
        a.netdev = vf.netdev
        if vf.driver == "vfio-pci", let group = vf.iommuGroup { a.vfioDevice = "/dev/vfio/\(group)" }
        return a
    }

    private func load(_ key: NICKey) throws(ControllerError) -> Assignment? {
        do { return try store.assignment(key) } catch { throw .hostFailure("reading the assignment of \(key): \(error)") }
    }

    private func loadRequest(_ key: NICKey) throws(ControllerError) -> AssignmentRequest? {
        do { return try store.assignmentRequest(key) } catch { throw .hostFailure("reading the assignment of \(key): \(error)") }
    }

    private func journal(_ key: NICKey, _ step: String) throws(ControllerError) {
        do { try store.journal(key, step: step) } catch { throw .hostFailure("journaling \(key): \(error)") }
    }

    private func meta(_ a: Assignment, op: String, _ extra: Logger.Metadata) -> Logger.Metadata {
        var m: Logger.Metadata = [
            "op": "\(op)", "vm": "\(a.vm)", "nic": "\(a.nic)", "pf": "\(a.pf)", "vf": "\(a.vf)", "vfIndex": "\(a.vfIndex)",
            "driver": "\(a.driver.rawValue)",
        ]
        m.merge(extra) { $1 }
        return m
    }
}
