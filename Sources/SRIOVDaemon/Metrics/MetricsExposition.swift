import Logging
import Metrics
import Prometheus
import SRIOVCore
import SRIOVHost
import Synchronization

/// `GET /metrics`: everything swift-metrics recorded into the Prometheus
/// registry (the operation timers as histograms, events dropped), plus the
/// gauges of what sriovd manages, computed at each scrape:
/// - `sriovd_pfs{state, driver}`: PFs `present` (as the inventory reads them
///   now) and `gone` (seen before, not there now);
/// - `sriovd_vfs{state, driver}`: VFs `assigned` (to a VM NIC), `configured`
///   (sriovd holds their original settings) or `free`;
/// - `sriovd_assignments{state}`: assignments by state (`assigned`,
///   `assigning`, `releasing` always listed, 0 when none);
/// - `sriovd_inventory_readable`: 0 when the scrape could not read the
///   inventory (the PF and VF gauges are then left out);
/// - `sriovd_event_stream_readers`: readers following the event stream
///   (subscriptions of the bus).
/// - `sriovd_vf_stats_supported{pf, driver}`: 1 when the PF's driver counts
///   its VFs' traffic (IFLA_VF_STATS), 0 when it does not (igb): the kernel
///   reports zeros then, which are not shown as traffic counters;
/// - `sriovd_vf_{rx,tx}_{bytes,packets,dropped}_total{pf, vf}`,
///   `sriovd_vf_broadcast_total`, `sriovd_vf_multicast_total`: the kernel's
///   counters of each VF, where supported, as counters (one that goes back,
///   a VF made anew, starts its series again from the kernel's value).
/// Events by type (`sriovd_events_total{type}`), drift and heals are counted
/// as they are published (`EventCounts`). The process families
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...) and
/// `sriovd_build_info{version}` are `ProcessMetrics`'. Every family has its
/// `# HELP` (`familyHelp`, through `DescribedMetricsFactory` for swift-metrics').
/// The text is the registry's own (swift-prometheus): nothing here writes the format.
public final class MetricsExposition: Sendable {
    public let registry: PrometheusCollectorRegistry
    let inventory: any InventorySource
    let store: StateStore
    let events: EventBus?
    let logger: Logger
    /// Every VF's traffic counters of a PF (one read of its link with stats).
    let counters: (@Sendable (PCIAddress) async throws -> [Int: VFTrafficCounters])?
    /// The state gauges set by the last scrape, by name and labels, so a
    /// series that no longer applies is removed rather than left stale.
    private let stateGauges = Mutex<[GaugeKey: Prometheus.Gauge]>([:])
    /// The VF traffic counters, with the kernel's value each last took.
    private let trafficSeries = Mutex<[GaugeKey: (counter: Prometheus.Counter, value: UInt64)]>([:])
    private let process: ProcessMetrics

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private struct GaugeKey: Hashable {
        var name: String
        var labels: [String]

        var pairs: [(String, String)] { stride(from: 0, to: labels.count, by: 2).map { (labels[$0], labels[$0 + 1]) } }
    }

    public init(
        registry: PrometheusCollectorRegistry, inventory: any InventorySource, store: StateStore, events: EventBus? = nil,
        logger: Logger, counters: (@Sendable (PCIAddress) async throws -> [Int: VFTrafficCounters])? = nil,
        version: String = sriovdVersion
    ) {
        self.process = ProcessMetrics(registry: registry, version: version, logger: logger)
        self.counters = counters
        self.registry = registry
        self.inventory = inventory
        self.store = store
        self.events = events
        self.logger = logger
    }

    /// The swift-metrics factory that records into `registry`, with
    /// histogram buckets sized for sriovd's operations: VF changes take
    /// milliseconds, VF counts and driver binds up to minutes.
    public static func factory(_ registry: PrometheusCollectorRegistry) -> DescribedMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[OperationTimers.operationDuration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
            .seconds(10), .seconds(30), .seconds(60), .seconds(120),
        ]
        factory.durationHistogramBuckets[OperationTimers.hostDuration] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1),
        ]
        return DescribedMetricsFactory(base: factory, help: familyHelp)
    }

    /// The `# HELP` text of every family sriovd records through swift-metrics.
    public static let familyHelp = OperationTimers.help.merging(EventCounts.help) { a, _ in a }
        .merging(EventBus.help) { a, _ in a }

    /// Sets the state gauges from the inventory and sriovd's records, then
    /// writes the whole registry in the Prometheus text format.
    public func scrape() async -> [UInt8] {
        let (counts, traffic) = await stateCounts()
        process.update()
        updateTraffic(traffic)
        return stateGauges.withLock { gauges in
            var current: [GaugeKey: Prometheus.Gauge] = [:]
            for (key, value) in counts {
                let gauge =
                    gauges[key]
                    ?? registry.makeGauge(descriptor: .named(key.name, help: Self.help[key.name] ?? ""), labels: key.pairs)
                gauge.set(Double(value))
                current[key] = gauge
            }
            for (key, gauge) in gauges where current[key] == nil {
                registry.unregisterGauge(gauge)
            }
            gauges = current
            var text: [UInt8] = []
            registry.emit(into: &text)
            return text
        }
    }

    /// Sets each VF traffic counter to the kernel's value: by the increase
    /// since the last scrape, or from 0 when the kernel's went back (its
    /// VF was made anew). Series of VFs no longer there are removed.
    private func updateTraffic(_ values: [GaugeKey: UInt64]) {
        trafficSeries.withLock { series in
            var current: [GaugeKey: (counter: Prometheus.Counter, value: UInt64)] = [:]
            for (key, value) in values {
                var entry =
                    series[key]
                    ?? (registry.makeCounter(descriptor: .named(key.name, help: Self.help[key.name] ?? ""), labels: key.pairs), 0)
                if value < entry.value {
                    entry.counter.reset()
                    entry.value = 0
                }
                entry.counter.increment(by: Int64(clamping: value - entry.value))
                entry.value = value
                current[key] = entry
            }
            for (key, entry) in series where current[key] == nil {
                registry.unregisterCounter(entry.counter)
            }
            series = current
        }
    }

    static let help = [
        "sriovd_pfs": "SR-IOV PFs by state (present, gone) and driver",
        "sriovd_vfs": "VFs by state (assigned, configured, free) and driver",
        "sriovd_assignments": "VM NIC assignments by state",
        "sriovd_inventory_readable": "1 when the last scrape read the inventory, 0 when it could not",
        "sriovd_event_stream_readers": "Readers following the event stream",
        "sriovd_vf_stats_supported": "1 when the PF's driver counts VF traffic (IFLA_VF_STATS), 0 when it reports only zeros",
    ].merging(trafficCounters.map { ($0.name, "The VF's \($0.what) as its PF counts them (IFLA_VF_STATS)") }) { a, _ in a }

    /// The per-VF counters exposed where the driver counts.
    static let trafficCounters: [(name: String, what: String, value: @Sendable (VFTrafficCounters) -> UInt64)] = [
        ("sriovd_vf_rx_bytes_total", "received bytes", { $0.rxBytes }),
        ("sriovd_vf_tx_bytes_total", "sent bytes", { $0.txBytes }),
        ("sriovd_vf_rx_packets_total", "received packets", { $0.rxPackets }),
        ("sriovd_vf_tx_packets_total", "sent packets", { $0.txPackets }),
        ("sriovd_vf_rx_dropped_total", "received packets dropped", { $0.rxDropped }),
        ("sriovd_vf_tx_dropped_total", "sent packets dropped", { $0.txDropped }),
        ("sriovd_vf_broadcast_total", "broadcast packets received", { $0.broadcast }),
        ("sriovd_vf_multicast_total", "multicast packets received", { $0.multicast }),
    ]

    /// Each state gauge's value, and each VF traffic counter's, by name and labels.
    private func stateCounts() async -> (gauges: [GaugeKey: Int], traffic: [GaugeKey: UInt64]) {
        var counts: [GaugeKey: Int] = [:]
        var traffic: [GaugeKey: UInt64] = [:]
        func count(_ name: String, _ labels: [String]) { counts[GaugeKey(name: name, labels: labels), default: 0] += 1 }

        if let events { counts[GaugeKey(name: "sriovd_event_stream_readers", labels: [])] = events.subscriberCount }

        let assignments = (try? store.assignments()) ?? []
        for state in [AssignmentState.assigning, .assigned, .releasing] {
            counts[GaugeKey(name: "sriovd_assignments", labels: ["state", state.rawValue])] = 0
        }
        for assignment in assignments { count("sriovd_assignments", ["state", assignment.state.rawValue]) }

        do {
            let pfs = try await inventory.physicalFunctions()
            let vfs = try await inventory.virtualFunctions(pf: nil)
            let present = Set(pfs.map(\.pciAddress))
            for pf in pfs { count("sriovd_pfs", ["state", "present", "driver", pf.driver ?? "none"]) }
            for seen in (try? store.seenPFs()) ?? [] where seen.goneSince != nil && !present.contains(seen.pci) {
                count("sriovd_pfs", ["state", "gone", "driver", seen.driver ?? "none"])
            }
            let assigned = Set(assignments.map(\.vf))
            let configured = Set(((try? store.allOriginals()) ?? []).map(\.vf))
            for vf in vfs {
                let state = assigned.contains(vf.pciAddress) ? "assigned" : configured.contains(vf.pciAddress) ? "configured" : "free"
                count("sriovd_vfs", ["state", state, "driver", vf.driver ?? "none"])
            }
            counts[GaugeKey(name: "sriovd_inventory_readable", labels: [])] = 1
            if let counters {
                for pf in pfs where pf.numVFs > 0 && pf.driver != nil {
                    guard let byIndex = try? await counters(pf.pciAddress) else { continue }
                    let supported = VFTrafficCounters.supported(driver: pf.driver, counters: Array(byIndex.values))
                    counts[GaugeKey(
                        name: "sriovd_vf_stats_supported",
                        labels: ["pf", pf.pciAddress.description, "driver", pf.driver ?? "none"])] = supported ? 1 : 0
                    guard supported else { continue }
                    for (index, c) in byIndex {
                        for counter in Self.trafficCounters {
                            traffic[GaugeKey(name: counter.name, labels: ["pf", pf.pciAddress.description, "vf", "\(index)"])] =
                                counter.value(c)
                        }
                    }
                }
            }
        } catch {
            logger.warning("metrics: cannot read the inventory", metadata: ["error": "\(error)"])
            counts[GaugeKey(name: "sriovd_inventory_readable", labels: [])] = 0
        }
        return (counts, traffic)
    }
}

/// The metrics system of the daemon: swift-metrics bootstrapped once with
/// the Prometheus factory, so every timer and counter sriovd makes from then
/// on is in `registry`.
public enum SRIOVMetrics {
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(MetricsExposition.factory(registry))
        return registry
    }
}
