import Metrics
import Synchronization

/// Counts the bus's events by type in `sriovd_events_total{type}`: a
/// recorder, so every event counts once, whatever reads the stream. Each
/// new kind is counted as soon as it is published, with nothing to add here.
/// Two kinds are also counted by what they say:
/// - `sriovd_drift_total{setting, action}`: VF settings found changed behind
///   sriovd's back, by setting and by what was done (`corrected`,
///   `reported`, `failed`);
/// - `sriovd_heals_total{result}`: assignments `healed` or `failed` after a
///   PF came back, and `sriovd_heal_duration_seconds`, each heal's time;
/// - `sriovd_migration_step_duration_seconds{operation, step, result}`: each
///   migration step's time, and `sriovd_migration_switch_duration_seconds{operation}`,
///   the steer steps alone: the guest's switch between its VF and its
///   standby, the part of a migration that interrupts its traffic.
public final class EventCounts: Sendable {
    public static let label = "sriovd_events_total"
    public static let driftLabel = "sriovd_drift_total"
    public static let healLabel = "sriovd_heals_total"
    public static let healDuration = "sriovd_heal_duration_seconds"
    public static let migrationStepDuration = "sriovd_migration_step_duration_seconds"
    public static let migrationSwitchDuration = "sriovd_migration_switch_duration_seconds"

    /// The `# HELP` text of each family, by name.
    public static let help = [
        label: "Events published on the bus, by type",
        driftLabel: "VF settings found changed behind sriovd's back, by setting and by what was done",
        healLabel: "Assignments healed or failed after their PF came back, by result",
        healDuration: "Time of each heal of an assignment after its PF came back",
        migrationStepDuration: "Time of each migration step, by operation, step and result",
        migrationSwitchDuration: "Time of each steer step of a migration: the guest's switch between its VF and its standby",
    ]

    private let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])

    /// Counts into `factory`: by default the task's metrics factory when
    /// this is made (the global one unless `withMetricsFactory` says otherwise).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    public func record(_ event: StateEvent) {
        counter(Self.label, [("type", event.kind)]).increment()
        switch event.change {
        case .vfDrift(let drift):
            counter(Self.driftLabel, [("setting", drift.setting.rawValue), ("action", drift.action.rawValue)]).increment()
        case .assignmentHealed(_, let report):
            counter(Self.healLabel, [("result", "healed")]).increment()
            Timer(label: Self.healDuration, factory: factory).recordNanoseconds(Int64(report.totalMs * 1_000_000))
        case .assignmentFailed:
            counter(Self.healLabel, [("result", "failed")]).increment()
        case .migrationStep(let step):
            guard let ms = step.durationMs else { break }
            let nanoseconds = Int64(ms * 1_000_000)
            Timer(
                label: Self.migrationStepDuration,
                dimensions: [("operation", step.operation), ("step", step.step), ("result", step.result)], factory: factory
            ).recordNanoseconds(nanoseconds)
            if step.step == "steer", step.result == "ok" {
                Timer(label: Self.migrationSwitchDuration, dimensions: [("operation", step.operation)], factory: factory)
                    .recordNanoseconds(nanoseconds)
            }
        default:
            break
        }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: ",")
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = counter
            return counter
        }
    }
}
