import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import SRIOVHypervisor
import Synchronization

/// Where a simulated daemon dies. Every host call that changes something,
/// every call to a guest and every crash point of the daemon's operations
/// passes the gate (host and guest calls twice: before and after they take
/// effect); the operation armed to crash at gate k stops there for good, as
/// a killed process would (its task stays suspended and does nothing more).
final class CrashGate: Sendable {
    private struct State {
        var armedAt: Int?
        var passed = 0
        var onCrash: (@Sendable (String) -> Void)?
        /// A daemon that crashed never goes on: any later pass stops too.
        var dead = false
    }
    private let state = Mutex(State())

    /// Counts the gates from now on; the `at`th one crashes and calls `onCrash` with its name.
    func arm(at: Int?, onCrash: @escaping @Sendable (String) -> Void) {
        state.withLock { $0 = State(armedAt: at, onCrash: onCrash) }
    }

    /// Stops counting; returns how many gates were passed.
    func disarm() -> Int {
        state.withLock { s in
            s.armedAt = nil
            s.onCrash = nil
            return s.passed
        }
    }

    func pass(_ point: String) async {
        let crash: (@Sendable (String) -> Void)?? = state.withLock { s in
            if s.dead { return .some(nil) }
            s.passed += 1
            guard let at = s.armedAt, s.passed == at else { return nil }
            s.dead = true
            return .some(s.onCrash)
        }
        guard let crash else { return }
        crash?(point)
        await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
    }
}

/// The faults armed on one host for the operation running.
struct HostFaults: Sendable {
    var busyBind = false
    var slow = false
}

struct SimulatedRefusal: Error, CustomStringConvertible {
    var description: String
}

/// One simulated host's kernel: `FakeHost`, with the crash gate around
/// every call that changes something, the faults `FakeHost` has no switch
/// for (EBUSY on bind, slow calls), and the guests told when VFs vanish
/// (a VF destroyed with its PF's count or driver is gone from its guest too).
final class SimulatedHost: HostPort {
    let fake: FakeHost
    let gate: CrashGate
    let faults = Mutex(HostFaults())
    /// Called with a PF whose VFs were all destroyed.
    let vfsDestroyed: @Sendable (PCIAddress) -> Void

    init(fake: FakeHost, gate: CrashGate, vfsDestroyed: @escaping @Sendable (PCIAddress) -> Void) {
        self.fake = fake
        self.gate = gate
        self.vfsDestroyed = vfsDestroyed
    }

    private func slowly() async {
        guard faults.withLock({ $0.slow }) else { return }
        for _ in 0..<3 { await Task.yield() }
    }

    private func gated<T>(_ call: String, _ body: () async throws -> T) async rethrows -> T {
        await gate.pass("before host \(call)")
        await slowly()
        let value = try await body()
        await gate.pass("after host \(call)")
        return value
    }

    // MARK: Reading (no gate: nothing changes)

    func physicalFunctions() async throws -> [PhysicalFunction] { try await fake.physicalFunctions() }
    func physicalFunction(_ address: PCIAddress) async throws -> PhysicalFunctionDetail? { try await fake.physicalFunction(address) }
    func virtualFunctions(pf: PCIAddress?) async throws -> [VirtualFunction] { try await fake.virtualFunctions(pf: pf) }
    func locate(vf: PCIAddress) async -> VFLocation? { await fake.locate(vf: vf) }
    func settings(of vf: VFLocation) async throws -> VFSettings {
        await slowly()
        return try await fake.settings(of: vf)
    }
    func describe(_ vf: VFLocation, settings: VFSettings) async -> VirtualFunction { await fake.describe(vf, settings: settings) }
    func totalVFs(pf: PCIAddress) async -> Int? { await fake.totalVFs(pf: pf) }
    func numVFs(pf: PCIAddress) async -> Int? { await fake.numVFs(pf: pf) }
    func driversAutoprobe(pf: PCIAddress) async -> Bool? { await fake.driversAutoprobe(pf: pf) }
    func vfAddresses(pf: PCIAddress) async -> [(index: Int, address: PCIAddress)] { await fake.vfAddresses(pf: pf) }
    func driver(of device: PCIAddress) async -> String? { await fake.driver(of: device) }
    func presence(of pf: PCIAddress) async -> PFPresence { await fake.presence(of: pf) }
    func vfSettings(pf: PCIAddress) async throws -> [Int: VFSettings] { try await fake.vfSettings(pf: pf) }
    func vfCounters(pf: PCIAddress) async throws -> [Int: VFTrafficCounters] { try await fake.vfCounters(pf: pf) }

    // MARK: Changing (gated)

    func write(_ config: VFConfig, to vf: VFLocation) async -> [VFAttributeResult] {
        await gated("write \(vf.vf)") { await fake.write(config, to: vf) }
    }

    func bind(_ device: PCIAddress, to driver: VFDriverChoice) async throws {
        try await gated("bind \(device) \(driver.rawValue)") {
            if faults.withLock({ $0.busyBind }) {
                throw SimulatedRefusal(description: "binding \(device): Device or resource busy")
            }
            try await fake.bind(device, to: driver)
        }
    }

    func reset(_ device: PCIAddress) async throws -> Bool {
        try await gated("reset \(device)") { try await fake.reset(device) }
    }

    func setNumVFs(pf: PCIAddress, to count: Int, timeout: Duration) async throws {
        try await gated("numvfs \(pf) \(count)") {
            try await fake.setNumVFs(pf: pf, to: count, timeout: timeout)
            vfsDestroyed(pf)
        }
    }

    func setDriversAutoprobe(pf: PCIAddress, enabled: Bool) async throws {
        try await gated("autoprobe \(pf)") { try await fake.setDriversAutoprobe(pf: pf, enabled: enabled) }
    }
}

/// A guest's failover adapter as one daemon reaches it: the guest's own
/// state is shared by both daemons (the VM moves between them); each
/// daemon's calls pass its own crash gate.
struct GatedGuest: FailoverAdapter {
    let guest: FakeGuest
    let gate: CrashGate
    /// The daemon's host: a VF is attached by moving its netdev into the
    /// guest, so a VF that does not exist, or has no netdev (no host
    /// driver), cannot be.
    let host: FakeHost
    var name: String { guest.name }

    private func gated<T>(_ call: String, _ body: () async throws(FailoverError) -> T) async throws(FailoverError) -> T {
        await gate.pass("before guest \(call)")
        let value = try await body()
        await gate.pass("after guest \(call)")
        return value
    }

    func attach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await gated("attach") { () throws(FailoverError) in
            guard await host.driver(of: vf.pci) == "igbvf" else {
                throw FailoverError(adapter: guest.name, action: "attach", reason: "\(vf.pci) has no network interface")
            }
            return try await guest.attach(vf)
        }
    }

    func detach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await gated("detach") { () throws(FailoverError) in try await guest.detach(vf) }
    }

    func preflight(mac: MACAddress?) async throws(FailoverError) { try await guest.preflight(mac: mac) }

    func isAttached(_ vf: FailoverVF) async throws(FailoverError) -> Bool? { try await guest.isAttached(vf) }

    func standbyIsUp() async throws(FailoverError) -> Bool? { try await guest.standbyIsUp() }

    func setStandby(up: Bool, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        try await gated("standby") { () throws(FailoverError) in try await guest.setStandby(up: up, vf: vf) }
    }

    func steer(to target: SteerTarget, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        try await gated("steer") { () throws(FailoverError) in try await guest.steer(to: target, vf: vf) }
    }

    func waitUntilReady(_ vf: FailoverVF, deadline: Duration) async throws(FailoverError) -> String {
        try await gated("wait") { () throws(FailoverError) in try await guest.waitUntilReady(vf, deadline: deadline) }
    }
}

/// The guests of the simulated VMs: one bond per failover NIC (its VF and
/// its standby), shared by both hosts.
final class SimulatedGuests: Sendable {
    private let guests = Mutex<[String: FakeGuest]>([:])

    func guest(_ spec: FailoverSpec) -> FakeGuest {
        guests.withLock { guests in
            if let guest = guests[spec.description] { return guest }
            let guest = FakeGuest()
            guests[spec.description] = guest
            return guest
        }
    }

    /// Every guest, by the failover spec's text.
    var all: [(String, FakeGuest)] {
        guests.withLock { $0.sorted { $0.key < $1.key } }
    }

    /// The VFs of `pf` were destroyed: no guest holds them any more.
    func lose(vfsOf pf: PCIAddress) {
        let gone = Set((0..<8).map { FakeHost.vfAddress($0, of: pf) })
        for (_, guest) in all {
            guest.state.withLock { s in
                s.attached.subtract(gone)
                if let active = s.active, !s.attached.contains(active) { s.active = nil }
            }
        }
    }

    /// The faults armed for an operation: these guest calls fail.
    func fail(_ calls: Set<String>) {
        for (_, guest) in all { guest.state.withLock { $0.failing = calls; $0.calls = [] } }
    }
}
