import Logging
import ServiceLifecycle
import SRIOVCore
import SRIOVHost
import Synchronization

/// How the watcher paces itself.
public struct WatchPolicy: Sendable {
    /// Events for one PF closer together than this are served by one read.
    public var debounce: Duration = .milliseconds(100)
    /// Heal attempts before the assignments are marked `failed`.
    public var healAttempts: Int = 5
    /// Waits between heal attempts (the last repeats).
    public var healBackoff: [Duration] = [.seconds(1), .seconds(2), .seconds(4), .seconds(8)]
    /// The safety net: every PF is looked at this often (`.zero`: never),
    /// for what sends no event (a PF that is down, driver-internal resets).
    public var interval: Duration

    public init(interval: Duration) {
        self.interval = interval
    }
}

/// Keeps assignments whole as the kernel changes under them.
///
/// Kernel events (link changes on RTNLGRP_LINK, PCI uevents) are hints: each
/// names a PCI function, which is mapped to the PF it concerns, and that PF
/// alone is read again, debounced (one read serves a burst). An overrun
/// reads every PF. What a read finds:
/// - the PF cannot carry VFs (driver gone, off the bus): its assignments
///   become `degraded` at once (`pf.lost`, `assignment.degraded`);
/// - the PF is usable and has degraded assignments: they are healed (VF
///   count, settings, driver, the guest's attachment), with a bounded number
///   of attempts and a backoff, then `failed` with the reason;
/// - otherwise its assigned VFs' settings, from one read of the PF's link,
///   are compared with the records, and declared VFs' with the
///   configuration: a difference is drift, corrected or only reported as
///   `daemon.drift` says (`vf.drift`).
public final class HostWatcher: Service, Sendable {
    let assignments: AssignmentService
    let controller: VFController
    let inventory: any InventorySource
    let configuration: @Sendable () -> SRIOVConfiguration
    let source: (any KernelEventSource)?
    let policy: WatchPolicy
    let logger: Logger
    let events: EventBus
    let reported: DriftMemory
    /// Declared VFs are compared only once the declaration has been applied.
    let reconciling: ReconcileProgress?

    private struct PFState {
        /// nil until first read.
        var usable: Bool?
        var driver: String?
        var netdev: String?
        /// VFs it had when last read usable.
        var numVFs = 0
        var lostAt: ContinuousClock.Instant?
        var checkScheduled = false
        var checkAgain = false
        var healing = false
    }

    private let pfs = Mutex<[PCIAddress: PFState]>([:])
    /// Assigned VFs by address → their PF (an event may name the VF).
    private let vfToPF = Mutex<[PCIAddress: PCIAddress]>([:])

    enum Work: Sendable {
        case check(PCIAddress, trigger: String)
        case checkAll(trigger: String)
        case heal(PCIAddress)
    }

    public init(
        assignments: AssignmentService, inventory: any InventorySource,
        configuration: @escaping @Sendable () -> SRIOVConfiguration, source: (any KernelEventSource)?,
        policy: WatchPolicy, logger: Logger, reported: DriftMemory = DriftMemory(), reconciling: ReconcileProgress? = nil
    ) {
        self.reconciling = reconciling
        self.assignments = assignments
        self.controller = assignments.controller
        self.events = assignments.events
        self.inventory = inventory
        self.configuration = configuration
        self.source = source
        self.policy = policy
        self.logger = logger
        self.reported = reported
    }

    public func run() async throws {
        let (work, queue) = AsyncStream.makeStream(of: Work.self)
        var kernel: AsyncStream<KernelEvent>?
        do {
            kernel = try source?.events()
        } catch {
            logger.warning(
                "kernel events unavailable; PFs are read on the timer only",
                metadata: ["op": "watch", "error": "\(error)", "intervalSeconds": "\(policy.interval.components.seconds)"])
        }
        let interval = policy.interval
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let kernel {
                    group.addTask {
                        for await event in kernel { await self.route(event, queue) }
                    }
                }
                if interval > .zero {
                    group.addTask {
                        while true {
                            do { try await Task.sleep(for: interval) } catch { return }
                            queue.yield(.checkAll(trigger: "timer"))
                        }
                    }
                }
                queue.yield(.checkAll(trigger: "start"))
                for await item in work {
                    switch item {
                    case .check(let pf, let trigger):
                        if claimCheck(pf) { group.addTask { await self.checks(pf, trigger: trigger, queue) } }
                    case .checkAll(let trigger):
                        group.addTask { await self.checkAll(trigger: trigger, queue) }
                    case .heal(let pf):
                        if claimHeal(pf) { group.addTask { await self.heal(pf, queue) } }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            queue.finish()
        }
    }

    // MARK: Routing events

    /// The PF an event concerns, if sriovd watches it.
    func route(_ event: KernelEvent, _ queue: AsyncStream<Work>.Continuation) async {
        let address: PCIAddress?
        switch event {
        case .overrun(let source):
            logger.notice("kernel events were lost; reading every PF", metadata: ["op": "watch", "source": "\(source)"])
            queue.yield(.checkAll(trigger: "overrun"))
            return
        case .link(let link): address = link.pci
        case .device(let device): address = device.slot
        }
        guard let address else { return }
        if pfs.withLock({ $0[address] != nil }) {
            queue.yield(.check(address, trigger: "event"))
        } else if let pf = vfToPF.withLock({ $0[address] }) {
            queue.yield(.check(pf, trigger: "event"))
        } else if let location = await controller.location(of: address), pfs.withLock({ $0[location.pf] != nil }) {
            queue.yield(.check(location.pf, trigger: "event"))
        }
    }

    /// Every SR-IOV PF on the host and every PF an assignment names.
    func checkAll(trigger: String, _ queue: AsyncStream<Work>.Continuation) async {
        var addresses = Set((try? await inventory.physicalFunctions())?.map(\.pciAddress) ?? [])
        addresses.formUnion(((try? assignments.store.assignments()) ?? []).map(\.pf))
        pfs.withLock { state in
            for pf in addresses where state[pf] == nil { state[pf] = PFState() }
        }
        for pf in addresses.sorted() { queue.yield(.check(pf, trigger: trigger)) }
    }

    /// PFs with a check scheduled or a heal running now, named (empty when idle).
    func busyPFs() -> [String] {
        pfs.withLock { state in
            state.filter { $0.value.checkScheduled || $0.value.healing }.keys.sorted().map { "watching \($0)" }
        }
    }

    private func claimCheck(_ pf: PCIAddress) -> Bool {
        pfs.withLock { state in
            if state[pf, default: PFState()].checkScheduled {
                state[pf]?.checkAgain = true
                return false
            }
            state[pf, default: PFState()].checkScheduled = true
            return true
        }
    }

    private func claimHeal(_ pf: PCIAddress) -> Bool {
        pfs.withLock { state in
            if state[pf, default: PFState()].healing { return false }
            state[pf]?.healing = true
            return true
        }
    }

    /// Checks `pf` after the debounce, again while events kept coming.
    private func checks(_ pf: PCIAddress, trigger: String, _ queue: AsyncStream<Work>.Continuation) async {
        while true {
            if trigger == "event" || trigger == "again" {
                do { try await Task.sleep(for: policy.debounce) } catch { return }
            }
            pfs.withLock { $0[pf]?.checkAgain = false }
            await check(pf, trigger: trigger, queue)
            let done = pfs.withLock { state in
                if state[pf]?.checkAgain == true { return false }
                state[pf]?.checkScheduled = false
                return true
            }
            if done { return }
        }
    }

    // MARK: One PF

    /// Reads `pf` once and acts on what it finds (see the type's summary).
    func check(_ pf: PCIAddress, trigger: String, _ queue: AsyncStream<Work>.Continuation) async {
        let presence = await controller.presence(of: pf)
        var list: [Assignment]
        do { list = try assignments.assignments(on: pf) } catch {
            logger.error("cannot read assignments", metadata: ["op": "watch", "pf": "\(pf)", "error": "\(error)"])
            return
        }
        vfToPF.withLock { map in for a in list { map[a.vf] = pf } }

        guard presence.isUsable else {
            let previous = pfs.withLock { state -> PFState in
                let before = state[pf] ?? PFState()
                if before.usable != false {
                    state[pf, default: PFState()].usable = false
                    state[pf]?.lostAt = .now
                }
                return before
            }
            if previous.usable == true || (previous.usable == nil && !list.isEmpty) {
                let reason =
                    !presence.onBus ? "removed from the PCI bus"
                    : presence.driver == nil ? "driver \(previous.driver ?? "") unbound" : "network interface gone"
                events.publish(
                    .pfLost(PFLoss(reason: reason, driver: previous.driver, numVFs: previous.numVFs)), EventSubject(pf: pf))
            }
            for a in list where a.state == .assigned && !assignments.isBusy(vm: a.vm) {
                _ = assignments.degrade(a.key, reason: "PF \(pf): \(presence.description)")
            }
            return
        }

        let current = await controller.numVFs(pf: pf) ?? 0
        let wasLost = pfs.withLock { state -> Bool in
            let lost = state[pf]?.usable == false
            state[pf, default: PFState()].usable = true
            state[pf]?.driver = presence.driver
            state[pf]?.netdev = presence.netdev
            return lost
        }
        if wasLost {
            let total = await controller.totalVFs(pf: pf) ?? 0
            events.publish(
                .pfBack(PFSeen(driver: presence.driver, netdev: presence.netdev, numVFs: current, totalVFs: total)),
                EventSubject(pf: pf))
        }
        // A usable PF without an assigned VF: its count was changed behind sriovd's back.
        for a in list where a.state == .assigned && !assignments.isBusy(vm: a.vm) {
            if await controller.location(of: a.vf) == nil {
                _ = assignments.degrade(a.key, reason: "VF \(a.vfIndex) is gone (\(pf) has \(current) VFs)")
            }
        }
        list = (try? assignments.assignments(on: pf)) ?? list
        let toHeal = list.contains { $0.state == .degraded || ($0.state == .failed && (wasLost || trigger == "start")) }
        if toHeal {
            if wasLost || trigger == "start" { assignments.reviveFailed(on: pf, list) }
            queue.yield(.heal(pf))
            return
        }
        if pfs.withLock({ $0[pf]?.healing == true }) { return }
        pfs.withLock { $0[pf]?.numVFs = current }
        await checkDrift(pf, assigned: list.filter { $0.state == .assigned }, trigger: trigger)
    }

    // MARK: Drift

    private var driftAction: SRIOVConfiguration.DriftAction { configuration().daemon.drift }

    /// Compares each assigned VF of `pf` with its record, then, on a
    /// kernel event, the declared VFs with the configuration (the reconcile
    /// timer covers those otherwise). One read of the PF serves both: the
    /// inventory's when declared VFs are compared, else its VFs' settings.
    func checkDrift(_ pf: PCIAddress, assigned: [Assignment], trigger: String) async {
        let configuration = configuration()
        let declared = trigger == "event" && (reconciling?.isSettled ?? true) && !configuration.pfs.isEmpty
        guard declared || !assigned.isEmpty else { return }
        var detail: PhysicalFunctionDetail?
        let settings: [Int: VFSettings]
        do {
            if declared, let read = try await inventory.physicalFunction(pf) {
                detail = read
                settings = Dictionary(read.vfs.map { ($0.index, $0.settings) }) { a, _ in a }
            } else {
                settings = try await controller.vfSettings(pf: pf)
            }
        } catch {
            logger.warning("cannot read the PF's VFs", metadata: ["op": "watch", "pf": "\(pf)", "error": "\(error)"])
            return
        }
        for a in assigned where !assignments.isBusy(vm: a.vm) {
            guard let reported = settings[a.vfIndex] else { continue }
            let expected = assignments.expectedSettings(a)
            let differences = DriftComparison.differences(expected: expected, reported: reported)
            await handle(differences, vf: a.vf, subject: EventSubject(a), source: .assignment, trigger: trigger) {
                () throws(ControllerError) in
                // Under the VM's busy mark, and only if the record did not change meanwhile.
                try await self.assignments.busy(vm: a.vm) { () throws(ControllerError) in
                    guard let now = try? self.assignments.store.assignment(a.key), now.state == .assigned,
                        now.config == a.config
                    else { return }
                    let report = try await OperationContext.attributing(vm: a.vm, nic: a.nic) { () throws(ControllerError) in
                        try await self.controller.configure(vf: a.vf, expected.keeping(differences.map(\.group)))
                    }
                    if report.failed { throw .hostFailure(report.failures) }
                }
            }
        }
        if let detail { await checkDeclared(detail, configuration, trigger: trigger) }
    }

    /// The declared VFs of a PF (not in use) against the configuration.
    func checkDeclared(_ detail: PhysicalFunctionDetail, _ configuration: SRIOVConfiguration, trigger: String) async {
        let planner = ReconcilePlanner(configuration: configuration)
        guard !planner.selectedPFs(from: [detail.pf]).isEmpty, let inUse = try? controller.heldVFs() else { return }
        for change in planner.vfPhase([detail], inUse: inUse).changes {
            guard case .configureVF(let config, let current) = change.action, let vf = change.vf else { continue }
            let differences = DriftComparison.differences(expected: config, reported: current)
            await handle(differences, vf: vf.vf, subject: EventSubject(vf), source: .declared, trigger: trigger) {
                () throws(ControllerError) in
                let report = try await self.controller.applyDeclared(vf: vf.vf, config.keeping(differences.map(\.group)))
                if report.failed { throw .hostFailure(report.failures) }
            }
        }
    }

    /// Reports (once) or corrects each difference, one `vf.drift` event each.
    func handle(
        _ differences: [DriftComparison.Difference], vf: PCIAddress, subject: EventSubject, source: VFDrift.Source,
        trigger: String, correct: @Sendable () async throws(ControllerError) -> Void
    ) async {
        guard driftAction == .correct else {
            for d in reported.update(vf: vf, current: differences) {
                publish(d, subject: subject, source: source, action: .reported, detail: nil, trigger: trigger)
            }
            return
        }
        reported.forget(vf: vf)
        guard !differences.isEmpty else { return }
        var failure: String?
        do { try await correct() } catch { failure = "\(error)" }
        for d in differences {
            publish(d, subject: subject, source: source, action: failure == nil ? .corrected : .failed, detail: failure, trigger: trigger)
        }
    }

    private func publish(
        _ d: DriftComparison.Difference, subject: EventSubject, source: VFDrift.Source, action: VFDrift.Action,
        detail: String?, trigger: String
    ) {
        events.publishDrift(d, subject: subject, source: source, action: action, detail: detail, trigger: trigger)
    }

    // MARK: Healing

    /// Heals the degraded assignments of `pf`: the VF count, then each
    /// assignment (settings, driver, guest). Retried with a backoff; after
    /// the last attempt what is left becomes `failed` with the last reason.
    func heal(_ pf: PCIAddress, _ queue: AsyncStream<Work>.Continuation) async {
        defer { pfs.withLock { $0[pf]?.healing = false } }
        let lostAt = pfs.withLock { $0[pf]?.lostAt }
        var lastError = "no attempt made"
        for attempt in 1...max(1, policy.healAttempts) {
            if attempt > 1 {
                let wait = policy.healBackoff.isEmpty ? .seconds(1) : policy.healBackoff[min(attempt - 2, policy.healBackoff.count - 1)]
                do { try await Task.sleep(for: wait) } catch { return }
            }
            // Lost again meanwhile: its return starts healing afresh.
            guard await controller.presence(of: pf).isUsable else { return }
            let list = ((try? assignments.assignments(on: pf)) ?? []).filter { $0.state == .degraded }
            if list.isEmpty { break }
            let started = ContinuousClock.now
            do throws(ControllerError) {
                let needed = await neededVFs(pf, list)
                let current = await controller.numVFs(pf: pf) ?? 0
                if current < needed {
                    try await controller.setNumVFs(pf: pf, count: needed, driversAutoprobe: nil, force: false)
                }
            } catch {
                lastError = "setting the VF count of \(pf): \(error)"
                logger.warning("heal attempt failed", metadata: ["op": "assignment.heal", "pf": "\(pf)", "attempt": "\(attempt)", "error": "\(lastError)"])
                continue
            }
            let numVFsMs = (ContinuousClock.now - started).milliseconds
            var failed = false
            for a in list {
                do {
                    let steps = try await assignments.heal(a)
                    guard let healed = assignments.finishHeal(a.key, to: .assigned, reason: nil) else { continue }
                    let report = HealReport(
                        attempt: attempt, steps: [("numvfs", numVFsMs)] + steps,
                        sinceLossMs: lostAt.map { (ContinuousClock.now - $0).milliseconds })
                    let shown = (try? await assignments.get(healed.key)) ?? healed
                    events.publish(.assignmentHealed(shown, report), EventSubject(shown))
                } catch {
                    failed = true
                    lastError = "\(a.key): \(error)"
                    logger.warning(
                        "heal attempt failed",
                        metadata: ["op": "assignment.heal", "pf": "\(pf)", "vm": "\(a.vm)", "nic": "\(a.nic)",
                                   "attempt": "\(attempt)", "error": "\(error)"])
                }
            }
            if !failed {
                // The declared VFs of the PF are put back as well (not drift: the reload cleared them).
                let count = needed(list)
                pfs.withLock { state in
                    let before = state[pf]?.numVFs ?? 0
                    state[pf]?.numVFs = max(before, count)
                }
                await restoreDeclared(pf)
                return
            }
        }
        let attempts = max(1, policy.healAttempts)
        for a in ((try? assignments.assignments(on: pf)) ?? []) where a.state == .degraded {
            let reason = "healing gave up after \(attempts) attempts: \(lastError)"
            if let failed = assignments.finishHeal(a.key, to: .failed, reason: reason) {
                events.publish(.assignmentFailed(failed, attempts: attempts), EventSubject(failed))
            }
        }
    }

    private func needed(_ list: [Assignment]) -> Int { (list.map(\.vfIndex).max() ?? -1) + 1 }

    /// The count the PF needs: enough for every assignment, what it had,
    /// and what the configuration declares.
    private func neededVFs(_ pf: PCIAddress, _ list: [Assignment]) async -> Int {
        var count = max(needed(list), pfs.withLock { $0[pf]?.numVFs ?? 0 })
        if let detail = try? await inventory.physicalFunction(pf) {
            for entry in configuration().pfs where !entry.match.select(from: [detail.pf]).isEmpty {
                if let declared = entry.numVFs { count = max(count, declared) }
            }
            count = min(count, detail.pf.totalVFs)
        }
        return count
    }

    /// After a heal: the declared settings and drivers of the PF's other VFs.
    private func restoreDeclared(_ pf: PCIAddress) async {
        let configuration = configuration()
        guard !configuration.pfs.isEmpty else { return }
        let executor = ReconcileExecutor(controller: controller, inventory: inventory, logger: logger)
        guard let detail = try? await inventory.physicalFunction(pf), let inUse = try? controller.heldVFs() else { return }
        let planner = ReconcilePlanner(configuration: configuration)
        _ = await executor.apply(planner.vfPhase([detail], inUse: inUse))
    }
}
