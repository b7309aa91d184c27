import Metrics
import Synchronization

/// Counts the bus's events by type in `sriovd_events_total{type}`: a
/// recorder, so every event counts once, whatever reads the stream. Each
/// kind a later change adds (drift found, heals, migration steps) is
/// counted as soon as it is published, with nothing to add here.
public final class EventCounts: Sendable {
    public static let label = "sriovd_events_total"

    private let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])

    /// Counts into `factory`: by default the task's metrics factory when
    /// this is made (the global one unless `withMetricsFactory` says otherwise).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    public func record(_ event: StateEvent) {
        let kind = event.kind
        let counter = counters.withLock { counters in
            if let counter = counters[kind] { return counter }
            let counter = Counter(label: Self.label, dimensions: [("type", kind)], factory: factory)
            counters[kind] = counter
            return counter
        }
        counter.increment()
    }
}
