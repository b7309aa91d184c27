import Foundation
import Logging
import ServiceLifecycle
import SRIOVCore
import SRIOVHost
import Synchronization
import UnixSignals

/// Keeps the host as the configuration file declares: reconciles at start,
/// on every reload request (SIGHUP: the file is read again), and every
/// `interval` when that is not zero.
///
/// On a reload the file is read and validated first; when it has any
/// problem, each is logged with its line and key and the running
/// configuration is kept. Only `[[pf]]` and `[[vf]]` are taken from a
/// reloaded file: `[daemon]` takes effect when sriovd restarts.
///
/// Graceful shutdown ends the service promptly: waiting stops at once, and a
/// pass in progress finishes the change it is making and skips the rest.
public struct ReconcileService: Service {
    /// One pass against a configuration (`ReconcileExecutor.reconcile`).
    public typealias Reconcile = @Sendable (SRIOVConfiguration) async -> ReconcileReport
    /// Reads and validates the configuration file again.
    public typealias LoadConfiguration = @Sendable () throws(ConfigurationErrors) -> SRIOVConfiguration

    let configuration: SRIOVConfiguration
    let interval: Duration
    let loadConfiguration: LoadConfiguration
    let reloadRequests: ReloadRequests
    let notifications: ReloadNotifications
    let logger: Logger
    /// Where each pass is published (and so journaled).
    let events: EventBus
    let timers: OperationTimers
    let reconcile: Reconcile
    /// Where a reloaded configuration is published for the other services.
    let running: RunningConfiguration?
    /// Told when a pass begins and ends (the watcher leaves declared VFs alone meanwhile).
    let progress: ReconcileProgress?

    public init(
        configuration: SRIOVConfiguration, interval: Duration, loadConfiguration: @escaping LoadConfiguration,
        reloadRequests: ReloadRequests = .sighup, notifications: ReloadNotifications = .none, logger: Logger,
        publishingTo running: RunningConfiguration? = nil, events: EventBus? = nil, progress: ReconcileProgress? = nil,
        reconcile: @escaping Reconcile
    ) {
        self.progress = progress
        self.configuration = configuration
        self.running = running
        self.interval = interval
        self.loadConfiguration = loadConfiguration
        self.reloadRequests = reloadRequests
        self.notifications = notifications
        self.logger = logger
        self.events = events ?? .journaling(to: logger)
        self.timers = OperationTimers()
        self.reconcile = reconcile
    }

    /// The daemon's wiring: the file at `configPath` (or, when nil, the
    /// default path if it exists), SIGHUP, systemd notifications, and
    /// `daemon.reconcile_interval_seconds`; reloads are published to `running`.
    public init(
        running: RunningConfiguration, configPath: String?, executor: ReconcileExecutor,
        notifier: SystemdNotifier, logger: Logger, progress: ReconcileProgress? = nil
    ) {
        let configuration = running.current
        self.init(
            configuration: configuration, interval: configuration.daemon.reconcileInterval,
            loadConfiguration: Self.fileLoader(path: configPath), reloadRequests: .sighup,
            notifications: .systemd(notifier), logger: logger, publishingTo: running, events: executor.controller.events,
            progress: progress, reconcile: { await executor.reconcile($0) })
    }

    /// Reads `path`; with no path, the default path when it exists, else the
    /// defaults (no PF managed), as at start.
    public static func fileLoader(path: String?) -> LoadConfiguration {
        { () throws(ConfigurationErrors) -> SRIOVConfiguration in
            if let path { return try SRIOVConfiguration.load(path: path) }
            if FileManager.default.fileExists(atPath: SRIOVConfiguration.defaultPath) {
                return try SRIOVConfiguration.load(path: SRIOVConfiguration.defaultPath)
            }
            return .defaults
        }
    }

    // MARK: Running

    /// Why a pass runs; several may be pending at once and are served by one pass.
    struct Reasons: OptionSet, Sendable {
        let rawValue: UInt8
        static let start = Reasons(rawValue: 1)
        static let reload = Reasons(rawValue: 2)
        static let interval = Reasons(rawValue: 4)

        var name: String {
            contains(.reload) ? "reload" : contains(.start) ? "start" : "interval"
        }
    }

    /// Pending reasons, and one buffered wake-up for the loop: requests that
    /// arrive during a pass are served together by the next one.
    final class Requests: Sendable {
        private let pending = Mutex<Reasons>([])
        let wakeups: AsyncStream<Void>
        private let continuation: AsyncStream<Void>.Continuation

        init() {
            (wakeups, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }

        func request(_ reasons: Reasons) {
            pending.withLock { $0.formUnion(reasons) }
            continuation.yield()
        }

        func take() -> Reasons {
            pending.withLock { reasons in
                defer { reasons = [] }
                return reasons
            }
        }

        func finish() { continuation.finish() }
    }

    public func run() async throws {
        let reloads = await reloadRequests.makeStream()
        let requests = Requests()
        requests.request(.start)
        let interval = self.interval
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in reloads { requests.request(.reload) }
            }
            if interval > .zero {
                group.addTask {
                    while true {
                        do { try await Task.sleep(for: interval) } catch { return }
                        requests.request(.interval)
                    }
                }
            }
            await withGracefulShutdownHandler {
                await serve(requests)
            } onGracefulShutdown: {
                requests.finish()
            }
            group.cancelAll()
        }
    }

    private func serve(_ requests: Requests) async {
        var configuration = self.configuration
        var lastNotices: Set<ReconcileNotice> = []
        for await _ in requests.wakeups {
            let reasons = requests.take()
            if reasons.isEmpty { continue }
            var reloadStatus: String?
            if reasons.contains(.reload) {
                notifications.reloading()
                reloadStatus = reload(&configuration)
                // Published before the pass, so a pool added by the reload
                // can be assigned from while its VFs are being set up.
                running?.replace(configuration)
            }
            let trigger = reasons.name
            progress?.begin()
            defer { progress?.end() }
            let report = await timers.measureInfallible("reconcile.pass", result: { $0.failed ? .failure : .success }) {
                await ReconcileTrigger.$current.withValue(trigger) { await reconcile(configuration) }
            }.value
            lastNotices = log(report, trigger: reasons.name, previousNotices: lastNotices)
            if let reloadStatus {
                notifications.ready("\(reloadStatus); \(report.summary)")
            }
        }
    }

    /// Replaces the declared PFs and VFs with the file's, unless it has
    /// problems. Returns a status line.
    private func reload(_ configuration: inout SRIOVConfiguration) -> String {
        do {
            let fresh = try loadConfiguration()
            configuration.pfs = fresh.pfs
            configuration.vfs = fresh.vfs
            logger.info(
                "configuration reloaded",
                metadata: ["op": "config.reload", "pfEntries": "\(fresh.pfs.count)", "vfEntries": "\(fresh.vfs.count)"])
            return "configuration reloaded"
        } catch {
            for problem in error.errors {
                var metadata: Logger.Metadata = ["op": "config.reload", "file": "\(problem.file)", "error": "\(problem.message)"]
                if let line = problem.line { metadata["line"] = "\(line)" }
                if let column = problem.column { metadata["column"] = "\(column)" }
                if let key = problem.key { metadata["key"] = "\(key)" }
                logger.error("configuration not reloaded: \(problem)", metadata: metadata)
            }
            let n = error.errors.count
            logger.warning(
                "keeping the running configuration",
                metadata: ["op": "config.reload", "errors": "\(n)"])
            return "reload refused (\(n) problem\(n == 1 ? "" : "s") in the configuration file); running configuration kept"
        }
    }

    /// One record per pass; notices at warning level the first pass they
    /// appear, at debug level while they persist. Returns this pass's notices.
    private func log(_ report: ReconcileReport, trigger: String, previousNotices: Set<ReconcileNotice>) -> Set<ReconcileNotice> {
        for notice in report.notices {
            var metadata: Logger.Metadata = ["op": "reconcile.notice"]
            if let pf = notice.pf { metadata["pf"] = "\(pf)" }
            if let vf = notice.vf { metadata["vf"] = "\(vf.vf)" }
            let level: Logger.Level =
                previousNotices.contains(notice) ? .debug : notice.isWarning ? .warning : .info
            logger.log(level: level, "\(notice)", metadata: metadata)
        }
        for error in report.errors {
            logger.error("reconcile pass incomplete", metadata: ["op": "reconcile", "error": "\(error)"])
        }
        events.publish(
            .reconcilePass(
                ReconcilePass(trigger: trigger, summary: report.summary, changed: !report.results.isEmpty, failed: report.failed)))
        return Set(report.notices)
    }
}

/// Where reload requests come from: SIGHUP in the daemon, a stream in tests.
public struct ReloadRequests: Sendable {
    let makeStream: @Sendable () async -> AsyncStream<Void>

    public init(_ makeStream: @escaping @Sendable () async -> AsyncStream<Void>) {
        self.makeStream = makeStream
    }

    /// SIGHUP, through ServiceLifecycle's `UnixSignalsSequence`. The handler
    /// is installed when the service starts, and released when it ends.
    public static let sighup = ReloadRequests {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let forward = Task {
            for await _ in signals { continuation.yield() }
            continuation.finish()
        }
        continuation.onTermination = { _ in forward.cancel() }
        return stream
    }

    /// Each element of `stream` is one request.
    public static func stream(_ stream: AsyncStream<Void>) -> ReloadRequests {
        ReloadRequests { stream }
    }
}

/// What the service manager is told around a reload.
public struct ReloadNotifications: Sendable {
    public var reloading: @Sendable () -> Void
    /// Called once the reloaded configuration has been applied (or refused), with a status line.
    public var ready: @Sendable (String) -> Void

    public init(reloading: @escaping @Sendable () -> Void, ready: @escaping @Sendable (String) -> Void) {
        self.reloading = reloading
        self.ready = ready
    }

    /// RELOADING=1, then READY=1 with STATUS= (systemd `Type=notify-reload`).
    public static func systemd(_ notifier: SystemdNotifier) -> ReloadNotifications {
        ReloadNotifications(
            reloading: { notifier.reloading() },
            ready: { notifier.ready(status: $0) })
    }

    public static let none = ReloadNotifications(reloading: {}, ready: { _ in })
}
