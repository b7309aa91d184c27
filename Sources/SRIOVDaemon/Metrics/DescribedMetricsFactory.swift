import Metrics
import Prometheus

/// swift-metrics into the Prometheus registry, each family with its
/// `# HELP` text. swift-prometheus' own factory registers every family with
/// an empty help (swift-metrics has no place for one), so the families whose
/// name `help` knows are registered here through the registry's own
/// `make...(name:labels:help:)`; any other goes through `base`, without a help.
public struct DescribedMetricsFactory: MetricsFactory {
    public var base: PrometheusMetricsFactory
    public let help: [String: String]

    public init(base: PrometheusMetricsFactory, help: [String: String]) {
        self.base = base
        self.help = help
    }

    var registry: PrometheusCollectorRegistry { base.registry }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let text = help[label] else { return base.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: .named(label, help: text), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let text = help[label] else { return base.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: .named(label, help: text), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let text = help[label] else { return base.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate) }
        guard aggregate else { return registry.makeGauge(descriptor: .named(label, help: text), labels: dimensions) }
        let buckets = base.valueHistogramBuckets[label] ?? base.defaultValueHistogramBuckets
        return registry.makeValueHistogram(descriptor: .named(label, help: text), labels: dimensions, buckets: buckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let text = help[label] else { return base.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: .named(label, help: text), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let text = help[label] else { return base.makeTimer(label: label, dimensions: dimensions) }
        let buckets = base.durationHistogramBuckets[label] ?? base.defaultDurationHistogramBuckets
        return registry.makeDurationHistogram(descriptor: .named(label, help: text), labels: dimensions, buckets: buckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        base.destroyFloatingPointCounter(handler)
    }
    public func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}

extension MetricNameDescriptor {
    /// A family's whole `name` (unit and all) and its `# HELP` text.
    static func named(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
