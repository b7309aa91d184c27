import SRIOVCore
import Synchronization

/// Comparing what sriovd recorded for a VF with what its PF reports.
enum DriftComparison {
    struct Difference: Sendable, Hashable {
        var group: VFSettingGroup
        var expected: String
        var found: String
    }

    /// The groups of `expected` that `reported` shows differently. A group
    /// the driver does not report (igb's RSS query) cannot be compared and
    /// is never called drift.
    static func differences(expected: VFConfig, reported: VFSettings) -> [Difference] {
        var completed = expected
        for group in VFSettingGroup.allCases { completed = group.completing(completed, from: reported) }
        return VFSettingGroup.groups(in: completed).sorted().compactMap { group in
            let unreported = group.fields.contains { completed[$0] != nil && reported[$0] == nil }
            if unreported || (group == .vlan && reported.vlan == nil) { return nil }
            if group.matches(completed, reported: reported) { return nil }
            return Difference(
                group: group, expected: group.summary(of: completed, naming: .api, missing: nil),
                found: group.summary(of: reported, naming: .api, missing: "unknown"))
        }
    }
}

/// Drift already reported under `daemon.drift = "report"`: each is
/// reported once, until the VF reads as recorded again (or differently).
public final class DriftMemory: Sendable {
    public init() {}

    private let seen = Mutex<[PCIAddress: Set<DriftComparison.Difference>]>([:])

    /// Records `current` as the VF's drift; returns the differences not reported before.
    func update(vf: PCIAddress, current: [DriftComparison.Difference]) -> [DriftComparison.Difference] {
        seen.withLock { seen in
            let before = seen[vf] ?? []
            seen[vf] = current.isEmpty ? nil : Set(current)
            return current.filter { !before.contains($0) }
        }
    }

    func forget(vf: PCIAddress) {
        _ = seen.withLock { $0.removeValue(forKey: vf) }
    }
}

extension EventBus {
    /// One `vf.drift` event.
    func publishDrift(
        _ d: DriftComparison.Difference, subject: EventSubject, source: VFDrift.Source, action: VFDrift.Action,
        detail: String? = nil, trigger: String
    ) {
        publish(
            .vfDrift(VFDrift(setting: d.group, expected: d.expected, found: d.found, source: source, action: action,
                             detail: detail, trigger: trigger)),
            subject)
    }
}

/// Why a reconcile pass runs (`start`, `reload`, `interval`), for the
/// executor: differences found by an `interval` pass are drift.
public enum ReconcileTrigger {
    @TaskLocal public static var current: String?
}

/// Whether the declaration is being applied: while a reconcile pass runs,
/// and before the first one ended, a declared VF that differs is not drift
/// (it is being set up), so the watcher leaves declared VFs alone.
public final class ReconcileProgress: Sendable {
    private let running = Atomic<Int>(0)
    private let passes = Atomic<Int>(0)

    public init() {}

    func begin() { running.add(1, ordering: .relaxed) }

    func end() {
        running.subtract(1, ordering: .relaxed)
        passes.add(1, ordering: .relaxed)
    }

    /// No pass running, and one has ended.
    var isSettled: Bool { running.load(ordering: .relaxed) == 0 && passes.load(ordering: .relaxed) > 0 }
}
