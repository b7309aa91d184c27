import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import SRIOVCore
import SRIOVHost
import SRIOVHypervisor

#if canImport(Glibc)
import Glibc
#endif

public let sriovdVersion = "0.1.0"

/// What the running daemon needs to know, resolved from the config file and
/// the command line (flags win).
public struct DaemonOptions: Sendable {
    public var socketPath: String
    public var socketMode: UInt32
    /// The socket's group (the admin group); nil leaves root's group.
    public var socketGroup: String?
    /// Members may only read through the API; nil: no read-only group.
    public var readerGroup: String?
    public var stateDirectory: String
    public var sysfsRoot: String
    /// Longest graceful shutdown before in-flight work is cancelled.
    public var shutdownTimeout: Duration
    public var maxRequestBytes: Int = 65536
    /// The declared state reconciled at start, on SIGHUP and periodically.
    public var configuration: SRIOVConfiguration = .defaults
    /// Where SIGHUP re-reads the configuration from; nil: no file.
    public var configPath: String?
    public var numVFsTimeout: Duration = .seconds(120)
    /// Where a test suite kills the daemon (`CrashPoints`); none in use.
    public var crashPoints: CrashPoints = .none

    public init(
        socketPath: String = "/run/sriovd/sriovd.sock", socketMode: UInt32 = 0o660, socketGroup: String? = nil,
        stateDirectory: String = "/var/lib/sriovd", sysfsRoot: String = "/sys", shutdownTimeout: Duration = .seconds(4)
    ) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.socketGroup = socketGroup
        self.stateDirectory = stateDirectory
        self.sysfsRoot = sysfsRoot
        self.shutdownTimeout = shutdownTimeout
    }
}

/// Builds the API's router. Public so tests can drive it without a socket.
/// Without a controller only the read-only endpoints exist. `authorization`
/// decides from each connection's peer credentials who may do what; nil lets
/// every request through (tests that drive the router in-process).
public func makeRouter(
    inventory: any InventorySource, controller: VFController? = nil, assignments: AssignmentService? = nil,
    migrations: MigrationService? = nil, maxBodyBytes: Int = 65536, authorization: AuthorizationPolicy? = nil,
    events: EventStream? = nil, metrics: MetricsExposition? = nil
) -> Router<SRIOVRequestContext> {
    let router = Router(context: SRIOVRequestContext.self)
    router.middlewares.add(ProblemMiddleware())
    router.addAdmissionChecks(authorization: authorization, maxRequestBytes: maxBodyBytes)
    InventoryRoutes<SRIOVRequestContext>(inventory: inventory, version: sriovdVersion).register(on: router)
    if let controller {
        ControlRoutes<SRIOVRequestContext>(inventory: inventory, controller: controller, maxBodyBytes: maxBodyBytes)
            .register(on: router)
    }
    if let assignments {
        AssignmentRoutes<SRIOVRequestContext>(service: assignments, maxBodyBytes: maxBodyBytes).register(on: router)
        MigrationRoutes<SRIOVRequestContext>(
            service: migrations ?? MigrationService(assignments: assignments), maxBodyBytes: maxBodyBytes
        ).register(on: router)
    }
    if let events {
        EventRoutes<SRIOVRequestContext>(stream: events).register(on: router)
    }
    if let metrics {
        MetricsRoutes<SRIOVRequestContext>(exposition: metrics).register(on: router)
    }
    return router
}

/// The long-running daemon: the API server and the watchdog in one
/// ServiceGroup that shuts down gracefully on SIGTERM/SIGINT.
public struct Daemon: Sendable {
    public let options: DaemonOptions
    public let logger: Logger
    /// Where swift-metrics records (`SRIOVMetrics.bootstrap()`), served as `/metrics`.
    public let metricsRegistry: PrometheusCollectorRegistry

    public init(options: DaemonOptions, logger: Logger, metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.options = options
        self.logger = logger
        self.metricsRegistry = metricsRegistry
    }

    public func run() async throws {
        let notifier = SystemdNotifier()
        // Socket activation: systemd owns the socket file, so there is none
        // to prepare, secure or remove.
        let binding = try SocketBinding.resolve(configuredPath: options.socketPath, logger: logger)
        let socketFile = binding.isActivated ? nil : UnixSocketFile(path: options.socketPath)
        try socketFile?.prepare()
        let authorization = AuthorizationPolicy.resolving(
            adminGroup: options.socketGroup, readerGroup: options.readerGroup, logger: logger)

        // Every state change is published here once; the journal records
        // it, and the history keeps the last ones for the event stream.
        let history = EventHistory()
        let events = EventBus(recorders: [JournalRecords(logger: logger).record, history.record, EventCounts().record])
        let sysfs = SysfsTree(root: options.sysfsRoot)
        let store = try StateStore(directory: options.stateDirectory)
        // One host port: the inventory and the controller share its netlink reader.
        let host = KernelHost(sysfs: sysfs, names: PCINames(), logger: logger)
        let inventory = RecordingInventory(host, store: store, logger: logger, events: events)
        // What changed while sriovd was down is recorded (and logged) first.
        let pfCount = await inventory.recordAll()
        let controller = VFController(
            host: host, store: store, logger: logger, numVFsTimeout: options.numVFsTimeout, events: events)

        let running = RunningConfiguration(options.configuration)
        let (unplug, hook) = (options.configuration.daemon.unplugTimeout, options.configuration.daemon.hookTimeout)
        let assignments = AssignmentService(
            controller: controller, store: store, inventory: inventory, configuration: { running.current },
            logger: logger, adapters: { FailoverAdapters.make($0, unplugDeadline: unplug, hookDeadline: hook) },
            crashPoints: options.crashPoints)
        // Interrupted assignments and releases are finished before anything is served.
        await assignments.recover()
        // Then migrations: an interrupted prepare is rolled back, a complete finished.
        let migrations = MigrationService(assignments: assignments)
        await migrations.recover()

        let metrics = MetricsExposition(
            registry: metricsRegistry, inventory: inventory, store: store, events: events, logger: logger,
            counters: { try await host.vfCounters(pf: $0) })

        let options = self.options
        let logger = self.logger
        let app = binding.server(
            responder: makeRouter(
                inventory: inventory, controller: controller, assignments: assignments, migrations: migrations,
                maxBodyBytes: options.maxRequestBytes, authorization: authorization,
                events: EventStream(bus: events, history: history), metrics: metrics
            ).buildResponder(),
            serverName: "sriovd",
            onServerRunning: {
                do {
                    if let warning = try socketFile?.setPermissions(mode: mode_t(options.socketMode), group: options.socketGroup) {
                        logger.warning("API socket group missing", metadata: ["detail": "\(warning)"])
                    }
                    if let socketFile, let reader = authorization.readerGroup {
                        do {
                            try SocketAccess.grant(readWriteTo: reader.gid, on: socketFile.path)
                        } catch {
                            // The socket stays as secure as its mode; readers just cannot connect.
                            logger.warning(
                                "reader group cannot connect to the API socket",
                                metadata: ["group": "\(reader.name)", "detail": "\(error)"])
                        }
                    }
                } catch {
                    logger.critical("cannot secure the API socket; stopping", metadata: ["error": "\(error)"])
                    socketFile?.remove()
                    exit(1)
                }
                events.publish(
                    .daemonStarted(
                        DaemonStart(
                            socket: binding.displayPath, activated: binding.isActivated, pfCount: pfCount, version: sriovdVersion)))
                notifier.status("serving \(binding.displayPath); \(pfCount) SR-IOV PF(s)")
                notifier.ready()
            },
            logger: logger)

        // Drift reported once, whether the watcher or a timer pass found it.
        let driftReported = DriftMemory()
        let progress = ReconcileProgress()
        let reconciler = ReconcileService(
            running: running, configPath: options.configPath,
            executor: ReconcileExecutor(controller: controller, inventory: inventory, logger: logger, reported: driftReported),
            notifier: notifier, logger: logger, progress: progress)
        // Kernel events: PF driver reloads healed, drift noticed at once.
        let watcher = HostWatcher(
            assignments: assignments, inventory: inventory, configuration: { running.current },
            source: KernelEventMonitor(), policy: WatchPolicy(interval: options.configuration.daemon.reconcileInterval),
            logger: logger, reported: driftReported, reconciling: progress)

        let watchdog = WatchdogService(
            notifier: notifier,
            isHealthy: { (try? await inventory.physicalFunctions()) != nil },
            logger: logger)

        var groupConfig = ServiceGroupConfiguration(
            services: [
                .init(service: app, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: reconciler, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: watcher, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup),
                // Helpers that may finish early (no watchdog configured) must
                // not take the group down with them.
                .init(service: watchdog, successTerminationBehavior: .ignore),
                .init(
                    service: StoppingNotifierService(notifier: notifier, events: events),
                    successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfig.maximumGracefulShutdownDuration = options.shutdownTimeout
        if let listen = options.configuration.metrics.listen {
            // Ends on its own when it cannot listen: sriovd goes on without it.
            groupConfig.services.append(
                .init(
                    service: MetricsListener(address: listen, exposition: metrics, logger: logger),
                    successTerminationBehavior: .ignore))
        }
        let group = ServiceGroup(configuration: groupConfig)
        defer {
            socketFile?.remove()
        }
        try await group.run()
        logger.info("sriovd stopped")
    }
}
