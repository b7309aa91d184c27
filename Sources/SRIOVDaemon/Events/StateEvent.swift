import Foundation
import SRIOVAPI
import SRIOVCore
import SRIOVHost

/// One state change sriovd made or saw, as published on the `EventBus`
/// (sriovd makes them; their details have internal memberwise initializers):
/// what changed (`change`, typed), what it concerns (`subject`: PF, VF, VM
/// NIC), its place in the daemon's sequence of events and the time it was
/// published. The journal record, and later the event stream and metrics,
/// are derived from it.
public struct StateEvent: Sendable {
    /// 1, 2, 3... in publication order, per bus (so per daemon run).
    public let seq: UInt64
    /// Wall-clock time of publication.
    public let time: Date
    public let change: StateChange
    public let subject: EventSubject
    /// Where in sriovd it was published: the journal's CODE_FILE, CODE_LINE
    /// and CODE_FUNC name the call site, not the subscriber.
    public let source: EventSource

    /// The dotted name of the change (`vf.configured`, `assignment.created`).
    public var kind: String { change.kind }
}

/// The devices and the VM NIC an event concerns; nil where it does not apply.
public struct EventSubject: Sendable, Hashable {
    public var pf: PCIAddress?
    public var vf: PCIAddress?
    /// The VF's index on its PF.
    public var vfIndex: Int?
    public var vm: String?
    public var nic: String?

    public init(pf: PCIAddress? = nil, vf: PCIAddress? = nil, vfIndex: Int? = nil, vm: String? = nil, nic: String? = nil) {
        self.pf = pf
        self.vf = vf
        self.vfIndex = vfIndex
        self.vm = vm
        self.nic = nic
    }

    /// A VF where it sits: its PF, address and index.
    public init(_ location: VFLocation) {
        self.init(pf: location.pf, vf: location.vf, vfIndex: location.index)
    }

    /// An assignment's VF, VM and NIC.
    public init(_ assignment: Assignment) {
        self.init(pf: assignment.pf, vf: assignment.vf, vfIndex: assignment.vfIndex, vm: assignment.vm, nic: assignment.nic)
    }
}

/// A place in the source code: `#fileID`, `#function`, `#line`.
public struct EventSource: Sendable, Hashable {
    public var file: String
    public var function: String
    public var line: UInt
}

/// What changed, with its typed details. Each case is one `kind`.
public enum StateChange: Sendable {
    /// The daemon serves its API (systemd told READY=1).
    case daemonStarted(DaemonStart)
    /// A graceful shutdown began (systemd told STOPPING=1).
    case daemonStopping
    /// A PF's VF count (`sriov_numvfs`) was changed from `previous` to `count`.
    case pfNumVFs(count: Int, previous: Int)
    /// A PF was seen for the first time (`returned` false), or is back after being gone.
    case pfAppeared(PFSeen, returned: Bool)
    /// A PF seen before is no longer on the host.
    case pfGone
    /// A PF known before reads differently (driver, netdev, VF count).
    case pfChanged(PFSeen)
    /// The VFs seen (on the subject's PF, or on every PF) changed.
    case vfsSeen(VFsSeen)
    /// Settings were written to a VF: a request, the configuration file, a
    /// restore or a scrub, with one result per setting group.
    case vfSettings(VFSettingsChange)
    /// A VF's driver changed (nil: none).
    case vfBound(driver: String?, previous: String?)
    case assignmentCreated(Assignment)
    /// An assignment's live settings changed.
    case assignmentChanged(Assignment)
    /// An assignment ended; its VF is back in the pool.
    case assignmentReleased(Assignment)
    /// One reconcile pass ended.
    case reconcilePass(ReconcilePass)
    /// A VM's migration changed state (subject: the VM).
    case migrationState(MigrationStateChange)
    /// One migration step of one NIC ended (subject: the VM and NIC).
    case migrationStep(MigrationStep)
    /// A PF can no longer carry VFs (its driver went away, or it left the
    /// bus): every VF on it is gone with its settings.
    case pfLost(PFLoss)
    /// A lost PF is usable again (driver and netdev back).
    case pfBack(PFSeen)
    /// An assignment's VF is gone; the assignment is kept to be healed.
    case assignmentDegraded(Assignment)
    /// A degraded assignment is whole again: VF count, settings, driver,
    /// guest attachment restored.
    case assignmentHealed(Assignment, HealReport)
    /// Healing gave up (`reason` on the assignment).
    case assignmentFailed(Assignment, attempts: Int)
    /// A VF setting read back different from the record.
    case vfDrift(VFDrift)

    public var kind: String {
        switch self {
        case .daemonStarted: "sriovd.started"
        case .daemonStopping: "sriovd.stopping"
        case .pfNumVFs: "pf.numvfs"
        case .pfAppeared: "pf.appeared"
        case .pfGone: "pf.gone"
        case .pfChanged: "pf.changed"
        case .vfsSeen: "vf.seen"
        case .vfSettings(let change): change.action.kind
        case .vfBound: "vf.bound"
        case .assignmentCreated: "assignment.created"
        case .assignmentChanged: "assignment.changed"
        case .assignmentReleased: "assignment.released"
        case .reconcilePass: "reconcile.pass"
        case .migrationState: "migration.state"
        case .migrationStep: "migration.step"
        case .pfLost: "pf.lost"
        case .pfBack: "pf.back"
        case .assignmentDegraded: "assignment.degraded"
        case .assignmentHealed: "assignment.healed"
        case .assignmentFailed: "assignment.failed"
        case .vfDrift: "vf.drift"
        }
    }

    /// Every kind, for subscribers that filter by kind and for the test that
    /// keeps them distinct.
    public static let kinds: [String] = [
        "sriovd.started", "sriovd.stopping", "pf.numvfs", "pf.appeared", "pf.gone", "pf.changed", "vf.seen",
        "vf.configured", "vf.restored", "vf.scrubbed", "vf.bound", "assignment.created", "assignment.changed",
        "assignment.released", "reconcile.pass", "migration.state", "migration.step", "pf.lost", "pf.back",
        "assignment.degraded", "assignment.healed", "assignment.failed", "vf.drift",
    ]
}

public struct DaemonStart: Sendable, Hashable {
    /// The API socket's path, or how systemd passed it.
    public var socket: String
    public var activated: Bool
    public var pfCount: Int
    public var version: String
}

/// A PF as the inventory read it.
public struct PFSeen: Sendable, Hashable {
    public var driver: String?
    public var netdev: String?
    public var numVFs: Int
    public var totalVFs: Int
}

extension PFSeen {
    init(_ pf: PhysicalFunction?) {
        self.init(driver: pf?.driver, netdev: pf?.netdev, numVFs: pf?.numVFs ?? 0, totalVFs: pf?.totalVFs ?? 0)
    }
}

/// VFs that appeared (or came back), went, or read differently.
public struct VFsSeen: Sendable, Hashable {
    public var appeared: [PCIAddress]
    public var gone: [PCIAddress]
    public var changed: [PCIAddress]
}

public struct VFSettingsChange: Sendable {
    public enum Action: String, Sendable, CaseIterable {
        /// Through the API (or for an assignment): original recorded, rolled back on failure.
        case configure
        /// From the configuration file.
        case declare
        /// The original settings put back.
        case restore
        case scrub

        public var kind: String {
            switch self {
            case .configure, .declare: "vf.configured"
            case .restore: "vf.restored"
            case .scrub: "vf.scrubbed"
            }
        }

        /// What was asked, as the journal's `op` field has always named it.
        public var operation: String { "vf.\(rawValue)" }
    }

    public var action: Action
    public var results: [VFController.SettingResult]
    /// A setting failed (the others of a request were rolled back).
    public var failed: Bool { results.contains { $0.outcome == .failed } }
}

public struct ReconcilePass: Sendable, Hashable {
    /// Why it ran: `start`, `reload` or `interval`.
    public var trigger: String
    /// `2 applied, 1 failed` or `nothing to change`.
    public var summary: String
    /// It changed something on the host.
    public var changed: Bool
    public var failed: Bool
}

public struct MigrationStateChange: Sendable, Hashable {
    public var id: Int
    public var role: MigrationRole
    public var state: MigrationState
    public var previous: MigrationState?
    public var error: MigrationFailure?
    /// The VM NICs the migration moves.
    public var nics: [String] = []
}

/// Why a PF can no longer carry VFs.
public struct PFLoss: Sendable, Hashable {
    /// "driver igb unbound", "removed from the PCI bus".
    public var reason: String
    /// The driver it had.
    public var driver: String?
    /// How many VFs it had when it was last seen usable.
    public var numVFs: Int
}

/// How one assignment was healed, step by step.
public struct HealReport: Sendable, Hashable {
    /// Which attempt succeeded (1 = the first).
    public var attempt: Int
    /// Milliseconds each step took, in order: `numvfs`, `program`, `bind`, `attach`.
    public var steps: [(name: String, ms: Double)]
    /// From the PF's loss being noticed to the assignment whole again.
    public var sinceLossMs: Double?

    public var totalMs: Double { steps.reduce(0) { $0 + $1.ms } }

    public static func == (a: Self, b: Self) -> Bool {
        a.attempt == b.attempt && a.steps.map(\.name) == b.steps.map(\.name) && a.steps.map(\.ms) == b.steps.map(\.ms)
            && a.sinceLossMs == b.sinceLossMs
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(attempt)
        for step in steps { hasher.combine(step.name) }
    }
}

/// One VF setting found different from what sriovd recorded.
public struct VFDrift: Sendable, Hashable {
    public enum Source: String, Sendable {
        /// The setting belongs to an assignment.
        case assignment
        /// The setting is declared in the configuration file.
        case declared
    }

    public enum Action: String, Sendable {
        /// Put back.
        case corrected
        /// Left as found (`daemon.drift = "report"`).
        case reported
        /// Putting it back failed (`detail` says why).
        case failed
    }

    public var setting: VFSettingGroup
    public var expected: String
    public var found: String
    public var source: Source
    public var action: Action
    public var detail: String?
    /// What noticed it: `event` (the PF's link event), `timer`, `start`.
    public var trigger: String
}
