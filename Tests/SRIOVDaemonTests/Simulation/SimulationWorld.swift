import Foundation
import Logging
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import Synchronization
@testable import SRIOVDaemon

/// Checks that the bus numbers its events 1, 2, 3... with no gap.
final class SequenceCheck: Sendable {
    private struct State {
        var last: UInt64 = 0
        var gaps: [String] = []
    }
    private let state = Mutex(State())

    var recorder: EventBus.Recorder {
        { event in
            self.state.withLock { s in
                if event.seq != s.last + 1 { s.gaps.append("event seq \(event.seq) follows \(s.last)") }
                s.last = event.seq
            }
        }
    }

    /// The gaps seen since the last call.
    func takeGaps() -> [String] {
        state.withLock { s in
            defer { s.gaps = [] }
            return s.gaps
        }
    }
}

/// One life of a simulated daemon: its services, built as `Daemon.run`
/// builds them, on its state folder and its host. A crash drops it (its
/// interrupted operation stays suspended for good) and a new one is built
/// on the same folder and host.
final class SimDaemon: Sendable {
    let store: StateStore
    let controller: VFController
    let assignments: AssignmentService
    let migrations: MigrationService
    let watcher: HostWatcher
    let sequence = SequenceCheck()

    init(directory: String, host: SimulatedHost, guests: SimulatedGuests) throws {
        let logger = Logger(label: "simulation", factory: { _ in SwiftLogNoOpLogHandler() })
        let events = EventBus(recorders: [sequence.recorder])
        store = try StateStore(directory: directory)
        controller = VFController(
            host: host, store: store, logger: logger, verifyAttempts: 3, verifyInterval: .zero, events: events)
        let gate = host.gate
        assignments = AssignmentService(
            controller: controller, store: store, inventory: host, configuration: { SRIOVConfiguration() }, logger: logger,
            adapters: { GatedGuest(guest: guests.guest($0), gate: gate, host: host.fake) },
            // Each journaled step is a gate too: a crash may strike right after it.
            crashPoints: CrashPoints { point in await gate.pass("point \(point)") })
        migrations = MigrationService(assignments: assignments, readyDeadline: .seconds(1), settle: .zero)
        var policy = WatchPolicy(interval: .zero)
        policy.healAttempts = 2
        policy.healBackoff = [.zero]
        watcher = HostWatcher(
            assignments: assignments, inventory: host, configuration: { SRIOVConfiguration() }, source: nil,
            policy: policy, logger: logger)
    }

    /// What the daemon does at start, before it serves: assignments, then
    /// migrations, then the watcher's first look at every PF.
    func recover() async {
        await assignments.recover()
        await migrations.recover()
        await watch { watcher, queue in await watcher.checkAll(trigger: "start", queue) }
    }

    /// Runs the watcher's work as its queue would, to the end, in order:
    /// `first`, then each check and heal it asked for.
    func watch(_ first: @Sendable (HostWatcher, AsyncStream<HostWatcher.Work>.Continuation) async -> Void) async {
        var pending = await Self.collect { await first(watcher, $0) }
        var budget = 64
        while !pending.isEmpty, budget > 0 {
            budget -= 1
            let watcher = self.watcher
            switch pending.removeFirst() {
            case .check(let pf, let trigger): pending += await Self.collect { await watcher.check(pf, trigger: trigger, $0) }
            case .checkAll(let trigger): pending += await Self.collect { await watcher.checkAll(trigger: trigger, $0) }
            case .heal(let pf): pending += await Self.collect { await watcher.heal(pf, $0) }
            }
        }
    }

    private static func collect(
        _ body: (AsyncStream<HostWatcher.Work>.Continuation) async -> Void
    ) async -> [HostWatcher.Work] {
        let (stream, queue) = AsyncStream.makeStream(of: HostWatcher.Work.self)
        await body(queue)
        queue.finish()
        var items: [HostWatcher.Work] = []
        for await item in stream { items.append(item) }
        return items
    }

    /// The daemon's locks and busy marks held now, named: empty between operations.
    func heldLocks() async -> [String] {
        await controller.heldLocks() + (await assignments.heldLocks()) + migrations.runningVMs().map { "migration \($0)" }
            + watcher.busyPFs()
    }
}

/// How an operation ended: it finished (with its outcome), or the daemon
/// crashed at a gate (named).
enum RunEnd: Sendable {
    case finished(String)
    case crashed(String)
}

/// Resumes a continuation once: whichever of the operation's end and its crash comes first.
final class OnceResume: Sendable {
    private let continuation: Mutex<CheckedContinuation<RunEnd, Never>?>
    init(_ continuation: CheckedContinuation<RunEnd, Never>) { self.continuation = Mutex(continuation) }
    func resume(_ end: RunEnd) {
        continuation.withLock { c in
            c?.resume(returning: end)
            c = nil
        }
    }
}

/// Two daemons (A and B: two hosts with two igb PFs of three VFs each, and
/// a state folder each) and the guests of three VMs shared by both, driven
/// one operation at a time.
final class SimWorld {
    let root: String
    let guests = SimulatedGuests()
    let hosts: [SimulatedHost]
    /// Each host's PFs: A has 01:00.0 and 03:00.0, B 02:00.0 and 04:00.0.
    let pfs: [[PCIAddress]] = (0..<2).map { d in (0..<SimOperation.pfsPerHost).map { SimWorld.pf(d, $0) } }
    private(set) var daemons: [SimDaemon] = []
    /// Each daemon's holdings at its last check.
    var snapshots = [DaemonSnapshot(), DaemonSnapshot()]
    private(set) var crashes = 0
    /// Where the crashes struck, by gate.
    private(set) var crashPoints: [String: Int] = [:]
    /// Outcomes by kind (`assign: assigned`, `prepare: refused conflict`...).
    private(set) var outcomes: [String: Int] = [:]
    /// FNV-1a of every outcome, in order: two runs of one seed have the same.
    private(set) var digest: UInt64 = 0xcbf2_9ce4_8422_2325

    init(root: String) throws {
        self.root = root
        let guests = self.guests
        hosts = (0..<2).map { d in
            let fake = FakeHost(
                (0..<SimOperation.pfsPerHost).map {
                    FakeHost.PF(address: SimWorld.pf(d, $0), autoprobe: false, vfs: SimOperation.vfsPerPF)
                })
            return SimulatedHost(fake: fake, gate: CrashGate(), vfsDestroyed: { guests.lose(vfsOf: $0) })
        }
        for d in 0..<2 { daemons.append(try SimDaemon(directory: folder(d), host: hosts[d], guests: guests)) }
    }

    static func pf(_ daemon: Int, _ index: Int) -> PCIAddress {
        FakeHost.address(String(format: "0000:%02x:00.0", daemon + 1 + 2 * index))
    }

    private func folder(_ daemon: Int) -> String { root + (daemon == 0 ? "/a" : "/b") }

    /// Runs one operation (a crash in it restarts its daemon) and checks
    /// every invariant after it.
    func execute(_ op: SimOperation) async -> [Violation] {
        let d = op.daemon
        let started = ContinuousClock.now
        arm(op.faults, on: d)
        var violations: [Violation] = []
        if case .restart = op.action {
            disarm(d)
            crashes += 1
            crashPoints["between operations", default: 0] += 1
            note(op, "restarted")
            violations += await restart(d, crashingAt: op.crashAt)
        } else {
            let (daemon, host, pfs, guests, action) = (daemons[d], hosts[d], self.pfs[d], self.guests, op.action)
            let end = await crashable(d, at: op.crashAt) {
                await SimWorld.perform(action, daemon: daemon, host: host, pfs: pfs, guests: guests)
            }
            let gates = disarm(d)
            if Self.tracing { print("simulation: \(op) -> \(end) (\(gates) gates)") }
            switch end {
            case .finished(let outcome):
                note(op, outcome)
            case .crashed(let point):
                crashes += 1
                crashPoints[point, default: 0] += 1
                note(op, "crashed")
                violations += await restart(d, crashingAt: nil)
            }
        }
        if !op.faults.isEmpty {
            // What a fault left (a drift correction refused, a heal given up)
            // is the periodic pass's to repair, as `reconcile_interval` does.
            await daemons[d].watch { watcher, queue in await watcher.checkAll(trigger: "timer", queue) }
        }
        let checked = ContinuousClock.now
        violations += await checkInvariants(d)
        if Self.tracing { print("simulation:   operation \(checked - started), invariants \(ContinuousClock.now - checked)") }
        return violations
    }

    /// Runs `body` as the daemon's operation; it ends when `body` returns
    /// or when the daemon crashes at gate `at`.
    private func crashable(_ d: Int, at: Int?, _ body: @escaping @Sendable () async -> String) async -> RunEnd {
        let gate = hosts[d].gate
        return await withCheckedContinuation { (continuation: CheckedContinuation<RunEnd, Never>) in
            let once = OnceResume(continuation)
            gate.arm(at: at) { point in once.resume(.crashed(point)) }
            Task { once.resume(.finished(await body())) }
        }
    }

    /// The daemon dies; a new one starts on the same state folder and host,
    /// and recovers (a crash in the recovery restarts it once more).
    private func restart(_ d: Int, crashingAt: Int?) async -> [Violation] {
        do { try daemons[d].store.database.close() } catch {
            return [Violation(invariant: "harness", detail: "closing the dead daemon's database: \(error)")]
        }
        let fresh: SimDaemon
        do { fresh = try SimDaemon(directory: folder(d), host: hosts[d], guests: guests) } catch {
            return [Violation(invariant: "restart", detail: "daemon \(d) cannot start: \(error)")]
        }
        daemons[d] = fresh
        let end = await crashable(d, at: crashingAt) {
            await fresh.recover()
            return "recovered"
        }
        disarm(d)
        if case .crashed(let point) = end {
            crashes += 1
            crashPoints["recovery: " + point, default: 0] += 1
            return await restart(d, crashingAt: nil)
        }
        return await recovered(d)
    }

    private func arm(_ faults: [SimOperation.Fault], on d: Int) {
        var failing: Set<String> = []
        var hostFaults = HostFaults()
        hosts[d].fake.state.withLock { s in
            for fault in faults {
                switch fault {
                case .refuse(let group): s.failing.insert(group)
                case .busyNumVFs: s.failingNumVFs = Set(pfs[d])
                case .busyBind: hostFaults.busyBind = true
                case .guest(let call): failing.insert(call)
                case .slow: hostFaults.slow = true
                case .lateMAC(let reads): s.macLag = reads
                case .linkDown: for pf in pfs[d] { s.pfs[pf]?.linkUp = false }
                }
            }
        }
        hosts[d].faults.withLock { $0 = hostFaults }
        guests.fail(failing)
    }

    /// `SRIOVD_SIM_TRACE=1`: every operation and how it ended is printed.
    static let tracing = ProcessInfo.processInfo.environment["SRIOVD_SIM_TRACE"] == "1"

    /// Clears the faults; returns how many gates the operation passed.
    @discardableResult
    private func disarm(_ d: Int) -> Int {
        hosts[d].fake.state.withLock { s in
            s.failing = []
            s.failingNumVFs = []
            s.macLag = 0
            for pf in pfs[d] { s.pfs[pf]?.linkUp = true }
            s.pendingMAC = nil
            s.writes = []
            s.numVFsWrites = []
            s.operations = []
        }
        hosts[d].faults.withLock { $0 = HostFaults() }
        guests.fail([])
        return hosts[d].gate.disarm()
    }

    private func note(_ op: SimOperation, _ outcome: String) {
        let short = outcome.components(separatedBy: " — ")[0]
        outcomes["\(op.kind): \(short)", default: 0] += 1
        for byte in "\(op.index) \(outcome)\n".utf8 {
            digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3
        }
    }

    /// Removes the run's state folders.
    func removeFiles() {
        for daemon in daemons { try? daemon.store.database.close() }
        try? FileManager.default.removeItem(atPath: root)
    }

    // MARK: Operations

    /// What the API call or host event does, and its outcome in a few words.
    static func perform(
        _ action: SimOperation.Action, daemon: SimDaemon, host: SimulatedHost, pfs: [PCIAddress], guests: SimulatedGuests
    ) async -> String {
        let vmName = SimOperation.vmName
        let nicName = SimOperation.nicName
        do throws(ControllerError) {
            switch action {
            case .assign(let vm, let nic, let pf, let driver, let config):
                let request = AssignmentRequest(
                    vm: vmName(vm), nic: nicName(nic), pf: pfs[pf], driver: driver, config: config,
                    failover: SimOperation.hasFailover(nic: nic) ? SimOperation.failover(vm: vm, nic: nic) : nil)
                switch try await daemon.assignments.assign(request) {
                case .created(let a): return "assigned — \(a.vf)"
                case .existing(let a): return "existing — \(a.vf)"
                }
            case .change(let vm, let nic, let config):
                let (a, _) = try await daemon.assignments.update(NICKey(unchecked: vmName(vm), nic: nicName(nic)), config)
                return "changed — \(a.vf)"
            case .release(let vm, let nic):
                let a = try await daemon.assignments.release(NICKey(unchecked: vmName(vm), nic: nicName(nic)))
                return "released — \(a.vf)"
            case .incoming(let vm, let nics, let pf, let vlan):
                let body = MigrationIncomingBody(
                    nics: nics.map { nic in
                        MigrationNIC(
                            nic: nicName(nic), pf: pfs[pf], driver: .host,
                            config: VFConfig(mac: SimOperation.mac(vm: vm, nic: nic), vlan: try! VLANID(vlan)),
                            failover: SimOperation.failover(vm: vm, nic: nic))
                    })
                return "migration \(try await daemon.migrations.incoming(vm: vmName(vm), body).state)"
            case .prepare(let vm):
                return "migration \(try await daemon.migrations.prepare(vm: vmName(vm)).state)"
            case .complete(let vm):
                return "migration \(try await daemon.migrations.complete(vm: vmName(vm)).state)"
            case .abort(let vm):
                return "migration \(try await daemon.migrations.abort(vm: vmName(vm)).state)"
            case .numVFs(let pf, let count, let force):
                try await daemon.controller.setNumVFs(pf: pfs[pf], count: count, driversAutoprobe: nil, force: force)
                // The kernel's events for the VFs removed and added reach the watcher.
                await daemon.watch { watcher, queue in await watcher.check(pfs[pf], trigger: "event", queue) }
                return "numVFs set"
            case .pfLost(let pf):
                host.fake.unloadDriver(pf: pfs[pf])
                guests.lose(vfsOf: pfs[pf])
                await daemon.watch { watcher, queue in await watcher.check(pfs[pf], trigger: "event", queue) }
                return "pf lost"
            case .pfBack(let pf):
                host.fake.loadDriver(pf: pfs[pf])
                await daemon.watch { watcher, queue in await watcher.check(pfs[pf], trigger: "event", queue) }
                return "pf back"
            case .drift(let pf, let pick):
                guard let changed = drift(pfs[pf], pick: pick, daemon: daemon, host: host) else { return "no drift target" }
                await daemon.watch { watcher, queue in await watcher.check(pfs[pf], trigger: "event", queue) }
                return "drifted — \(changed)"
            case .restart:
                return "restarted"
            }
        } catch {
            switch error {
            case .invalid(let e): return "refused invalid — \(e)"
            case .notFound(let why): return "refused not found — \(why)"
            case .conflict(let why): return "refused conflict — \(why)"
            case .hostFailure(let why): return "failed — \(why)"
            }
        }
    }

    /// Changes one recorded setting of one assigned VF of `pf` in the host,
    /// as someone with `ip link` would; the setting's name, or nil when the
    /// PF has no assigned VF with a setting to change.
    private static func drift(_ pf: PCIAddress, pick: Int, daemon: SimDaemon, host: SimulatedHost) -> String? {
        let assigned = ((try? daemon.store.assignments()) ?? []).filter { $0.pf == pf && $0.state == .assigned }
            .sorted { $0.vf < $1.vf }
        guard !assigned.isEmpty else { return nil }
        let a = assigned[pick % assigned.count]
        let expected = ((try? daemon.store.expectedSettings(a.key)) ?? nil) ?? a.config
        let groups = [VFSettingGroup.mac, .vlan, .spoofCheck, .trust, .txRate].filter { $0.isSet(in: expected) }
        guard !groups.isEmpty else { return nil }
        let group = groups[(pick / assigned.count) % groups.count]
        let done = host.fake.state.withLock { s -> Bool in
            guard var settings = s.pfs[pf]?.vfs[a.vfIndex]?.settings else { return false }
            switch group {
            case .mac: settings.mac = try! MACAddress.parse(String(format: "02:00:00:00:00:%02x", pick % 256), field: "mac")
            case .vlan: settings.vlan = settings.vlan == (try! VLANID(3)) ? try! VLANID(2) : try! VLANID(3)
            case .spoofCheck: settings.spoofCheck = !(settings.spoofCheck ?? true)
            case .trust: settings.trust = !(settings.trust ?? false)
            default: settings.maxTxRate = (settings.maxTxRate ?? 0) + 7
            }
            s.pfs[pf]?.vfs[a.vfIndex]?.settings = settings
            return true
        }
        return done ? "\(group.rawValue) of \(a.vf)" : nil
    }
}
