import SRIOVCore

/// The VF a failover step is about, as adapters need it.
public struct FailoverVF: Sendable, Hashable {
    public var vm: String
    public var nic: String
    public var pci: PCIAddress
    public var pf: PCIAddress
    public var index: Int
    public var mac: MACAddress?
    /// The VF's netdev in the daemon's namespace (host driver), if any.
    public var netdev: String?
    /// `/dev/vfio/N` (vfio-pci), if any.
    public var vfioDevice: String?

    public init(
        vm: String, nic: String, pci: PCIAddress, pf: PCIAddress, index: Int, mac: MACAddress?,
        netdev: String? = nil, vfioDevice: String? = nil
    ) {
        self.vm = vm
        self.nic = nic
        self.pci = pci
        self.pf = pf
        self.index = index
        self.mac = mac
        self.netdev = netdev
        self.vfioDevice = vfioDevice
    }
}

/// Where the guest's traffic is to go.
public enum SteerTarget: String, Sendable {
    case standby
    case vf
}

/// What a steering or standby call could do: the lever it pulled, or why
/// there was none (the timeline shows both).
public struct LeverOutcome: Sendable, Hashable {
    /// e.g. "bond active_slave", "hook"; nil when no lever exists.
    public var lever: String?
    public var note: String?

    public init(lever: String?, note: String? = nil) {
        self.lever = lever
        self.note = note
    }

    public static func none(_ why: String) -> LeverOutcome { LeverOutcome(lever: nil, note: why) }
}

/// A failed adapter call: which adapter, what it was doing, why.
public struct FailoverError: Error, Sendable, CustomStringConvertible {
    public var adapter: String
    public var action: String
    public var reason: String
    /// Set when the guest contradicts the request (a refusal, not a
    /// failure): the request's field to fix, relative to the NIC:
    /// `failover.bond`, `failover.standby` or `mac`. The reason says what
    /// was found.
    public var field: String?

    public init(adapter: String, action: String, reason: String, field: String? = nil) {
        self.adapter = adapter
        self.action = action
        self.reason = reason
        self.field = field
    }

    /// The guest does not match the request's `field`; `found` says what it has.
    public static func refusal(adapter: String, field: String, found: String) -> FailoverError {
        FailoverError(adapter: adapter, action: "preflight", reason: found, field: field)
    }

    public var description: String {
        if let field { return "\(field): \(reason)" }
        return "\(adapter) adapter, \(action): \(reason)"
    }
}

/// One hypervisor's way to move a guest between its VF and its standby.
/// Every call is idempotent ("make it so"): attaching a VF the guest has,
/// or detaching one it does not, succeeds and says nothing was done.
public protocol FailoverAdapter: Sendable {
    /// "netns", "qmp" or "hook".
    var name: String { get }
    /// Makes the VF present in the guest; false when it already was.
    func attach(_ vf: FailoverVF) async throws(FailoverError) -> Bool
    /// Takes the VF out of the guest (back to the host); false when it was not there.
    func detach(_ vf: FailoverVF) async throws(FailoverError) -> Bool
    /// Whether the guest holds the VF; nil when the adapter cannot tell.
    func isAttached(_ vf: FailoverVF) async throws(FailoverError) -> Bool?
    /// The standby's link (administrative state); nil when the adapter cannot tell.
    func standbyIsUp() async throws(FailoverError) -> Bool?
    func setStandby(up: Bool, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome
    /// Moves the guest's traffic to the standby or to the VF.
    func steer(to target: SteerTarget, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome
    /// Waits (up to `deadline`) until the attached VF can carry traffic as
    /// far as the adapter can see; says what it saw.
    func waitUntilReady(_ vf: FailoverVF, deadline: Duration) async throws(FailoverError) -> String
    /// Checks, before anything is reserved or programmed, what the adapter
    /// will rely on in the guest: for a bond, that it exists and is
    /// active-backup, that the standby is its slave, and that its MAC is
    /// `mac` (the MAC the PF will pin on the VF; nil: not asked). A
    /// mismatch throws `FailoverError.refusal` naming the field
    /// (`failover.bond`, `failover.standby` or `mac`) and what was found;
    /// an adapter that cannot look (a hook, QMP without a guest agent)
    /// returns without a word (the default).
    func preflight(mac: MACAddress?) async throws(FailoverError)
}

extension FailoverAdapter {
    public func preflight(mac: MACAddress?) async throws(FailoverError) {}
}

/// Makes the adapter a spec names.
public enum FailoverAdapters {
    public static func make(_ spec: FailoverSpec, unplugDeadline: Duration = .seconds(20), hookDeadline: Duration = .seconds(30))
        -> any FailoverAdapter
    {
        switch spec {
        case .netns(let namespace, let bond, let standby):
            NetnsGuest(namespace: namespace, bond: bond, standby: standby)
        case .qmp(let socket, let device, let bus, let standby):
            QMPFailover(guest: QMPGuest(
                target: QMPTarget(socket: socket, device: device, bus: bus, standby: standby), unplugDeadline: unplugDeadline))
        case .hook(let command):
            HookFailover(hook: HookCommand(path: command, deadline: hookDeadline))
        }
    }
}

// MARK: QMP

/// A QEMU guest: the VF is plugged as vfio-pci, the standby is virtio-net
/// (its link set with `set_link`). QMP has no lever inside the guest: the
/// guest's bond or net_failover switches when the VF goes.
public struct QMPFailover: FailoverAdapter {
    public let guest: QMPGuest
    public var name: String { "qmp" }

    public init(guest: QMPGuest) { self.guest = guest }

    private func run<T>(_ action: String, _ body: () async throws -> T) async throws(FailoverError) -> T {
        do { return try await body() } catch {
            throw FailoverError(adapter: "qmp", action: action, reason: "\(error)")
        }
    }

    public func attach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await run("attach") { try await guest.attach(vf: vf.pci) == .attached }
    }

    public func detach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await run("detach") {
            if case .detached = try await guest.detach() { return true }
            return false
        }
    }

    public func isAttached(_ vf: FailoverVF) async throws(FailoverError) -> Bool? {
        try await run("query") { try await guest.isPresent() }
    }

    public func standbyIsUp() async throws(FailoverError) -> Bool? { nil }

    public func setStandby(up: Bool, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        try await run("standby link") { try await guest.setStandbyLink(up: up) }
        return LeverOutcome(lever: "set_link \(guest.target.standby) \(up ? "on" : "off")")
    }

    public func steer(to target: SteerTarget, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        .none("QMP reaches no switch inside the guest; its bond or net_failover follows the VF's presence")
    }

    public func waitUntilReady(_ vf: FailoverVF, deadline: Duration) async throws(FailoverError) -> String {
        "QMP cannot see the guest's link; the device is present"
    }
}

// MARK: Hook

/// Any other hypervisor, through an executable (see `HookCommand`).
public struct HookFailover: FailoverAdapter {
    public let hook: HookCommand
    public var name: String { "hook" }

    public init(hook: HookCommand) { self.hook = hook }

    private func call(_ action: HookAction, _ vf: FailoverVF, steerTo: String? = nil) async throws(FailoverError) -> HookResult {
        let request = HookRequest(
            action: action, vm: vf.vm, nic: vf.nic,
            vf: HookRequest.VF(
                pci: vf.pci.description, pf: vf.pf.description, index: vf.index, mac: vf.mac?.description,
                netdev: vf.netdev, vfioDevice: vf.vfioDevice),
            steerTo: steerTo)
        do { return try await hook.run(request) } catch {
            throw FailoverError(adapter: "hook", action: action.rawValue, reason: error.description)
        }
    }

    public func attach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await call(.attach, vf).result == .done
    }

    public func detach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await call(.detach, vf).result == .done
    }

    public func isAttached(_ vf: FailoverVF) async throws(FailoverError) -> Bool? { nil }
    public func standbyIsUp() async throws(FailoverError) -> Bool? { nil }

    public func setStandby(up: Bool, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        guard up else { return .none("a hook is asked only to bring the standby up") }
        return Self.outcome(try await call(.standbyUp, vf), lever: "hook standby-up")
    }

    public func steer(to target: SteerTarget, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        Self.outcome(try await call(.steer, vf, steerTo: target.rawValue), lever: "hook steer")
    }

    public func waitUntilReady(_ vf: FailoverVF, deadline: Duration) async throws(FailoverError) -> String {
        "the hook's attach returned"
    }

    private static func outcome(_ result: HookResult, lever: String) -> LeverOutcome {
        switch result.result {
        case .unsupported: .none(result.message ?? "the hook has no lever for this")
        case .done, .unchanged: LeverOutcome(lever: lever, note: result.message)
        }
    }
}
