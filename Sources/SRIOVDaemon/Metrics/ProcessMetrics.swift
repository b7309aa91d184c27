import Logging
import Prometheus
import SRIOVHost
import Synchronization

/// The process families every Prometheus client exports, under their usual
/// names, read from procfs at each scrape (`ProcessStatistics`), and
/// `sriovd_build_info{version} 1`:
/// - `process_cpu_seconds_total` (counter), `process_start_time_seconds`,
///   `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
///   `process_open_fds`, `process_max_fds`.
final class ProcessMetrics: Sendable {
    static let buildInfo = "sriovd_build_info"

    static let help = [
        buildInfo: "sriovd's version, in the label; always 1",
        "process_cpu_seconds_total": "User and system CPU time of the process, in seconds",
        "process_start_time_seconds": "When the process started, in seconds since the Unix epoch",
        "process_resident_memory_bytes": "Resident memory of the process, in bytes",
        "process_virtual_memory_bytes": "Virtual memory of the process, in bytes",
        "process_open_fds": "File descriptors the process has open",
        "process_max_fds": "The most file descriptors the process may open (the soft limit)",
    ]

    private let cpu: Prometheus.Counter
    /// The CPU seconds the counter holds: procfs gives the total, the
    /// counter takes increments.
    private let counted = Mutex<Double>(0)
    private let start, resident, virtual, openFDs, maxFDs: Prometheus.Gauge
    private let read: @Sendable () throws -> ProcessStatistics
    private let logger: Logger

    init(
        registry: PrometheusCollectorRegistry, version: String, logger: Logger,
        read: @escaping @Sendable () throws -> ProcessStatistics = { try ProcessStatistics.read() }
    ) {
        func described(_ name: String) -> MetricNameDescriptor { .named(name, help: Self.help[name]!) }
        func gauge(_ name: String) -> Prometheus.Gauge { registry.makeGauge(descriptor: described(name)) }
        registry.makeGauge(descriptor: described(Self.buildInfo), labels: [("version", version)]).set(Double(1))
        cpu = registry.makeCounter(descriptor: described("process_cpu_seconds_total"))
        start = gauge("process_start_time_seconds")
        resident = gauge("process_resident_memory_bytes")
        virtual = gauge("process_virtual_memory_bytes")
        openFDs = gauge("process_open_fds")
        maxFDs = gauge("process_max_fds")
        self.read = read
        self.logger = logger
    }

    /// Reads the process's statistics and sets the families; a read that
    /// fails is logged and leaves them as they were.
    func update() {
        let statistics: ProcessStatistics
        do { statistics = try read() } catch {
            logger.warning("metrics: cannot read the process statistics", metadata: ["error": "\(error)"])
            return
        }
        counted.withLock { counted in
            if statistics.cpuSeconds > counted {
                cpu.increment(by: statistics.cpuSeconds - counted)
                counted = statistics.cpuSeconds
            }
        }
        start.set(statistics.startTimeSeconds)
        resident.set(Double(statistics.residentMemoryBytes))
        virtual.set(Double(statistics.virtualMemoryBytes))
        openFDs.set(Double(statistics.openFileDescriptors))
        // Unlimited is the kernel's RLIM_INFINITY, as other clients show it.
        maxFDs.set(Double(statistics.maxFileDescriptors ?? UInt64.max))
    }
}
