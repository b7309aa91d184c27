import Foundation
import Logging
import ServiceLifecycle
import SRIOVCore
import SRIOVHost
import Synchronization
import Testing
@testable import SRIOVDaemon

/// Stands in for the executor and systemd: records each pass's configuration
/// and each notification.
private final class ReconcileServiceProbe: Sendable {
    private let passes = Mutex<[SRIOVConfiguration]>([])
    private let events = Mutex<[String]>([])

    var configurations: [SRIOVConfiguration] { passes.withLock { $0 } }
    var notifications: [String] { events.withLock { $0 } }

    func reconcile(_ configuration: SRIOVConfiguration) async -> ReconcileReport {
        passes.withLock { $0.append(configuration) }
        return ReconcileReport()
    }

    var reloadNotifications: ReloadNotifications {
        ReloadNotifications(
            reloading: { self.events.withLock { $0.append("reloading") } },
            ready: { status in self.events.withLock { $0.append("ready: \(status)") } })
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
private func eventually(_ timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

private let quiet = Logger(label: "reconcile-test-group") { _ in SwiftLogNoOpLogHandler() }

/// Runs `service` in a ServiceGroup, gives `body` the chance to poke it,
/// then shuts the group down gracefully and returns how long that took.
private func running(
    _ service: ReconcileService, _ body: () async throws -> Void
) async throws -> Duration {
    let group = ServiceGroup(services: [service], logger: quiet)
    let ended = Mutex(false)
    let run = Task {
        defer { ended.withLock { $0 = true } }
        try await group.run()
    }
    try await body()
    let clock = ContinuousClock()
    let start = clock.now
    await group.triggerGracefulShutdown()
    if !(await eventually(.seconds(3)) { ended.withLock { $0 } }) {
        Issue.record("the service did not end within 3 s of graceful shutdown; cancelling it")
        run.cancel()
    }
    try await run.value
    return clock.now - start
}

private func writeFile(_ text: String, to path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
}

@Suite("Reconcile service")
struct ReconcileServiceTests {
    @Test("reconciles at start, and on a reload request with the file read again, between RELOADING and READY")
    func reloadRereadsTheFile() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-\(UUID().uuidString).toml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeFile("[[pf]]\npci = \"0000:01:00.0\"\nnum_vfs = 1\n", to: path)
        let initial = try SRIOVConfiguration.load(path: path)

        let probe = ReconcileServiceProbe()
        let published = RunningConfiguration(initial)
        let (reloads, reload) = AsyncStream.makeStream(of: Void.self)
        let service = ReconcileService(
            configuration: initial, interval: .zero, loadConfiguration: ReconcileService.fileLoader(path: path),
            reloadRequests: .stream(reloads), notifications: probe.reloadNotifications, logger: quiet,
            publishingTo: published, reconcile: probe.reconcile)
        _ = try await running(service) {
            #expect(await eventually { probe.configurations.count == 1 })
            #expect(probe.notifications.isEmpty)
            try writeFile("[[pf]]\npci = \"0000:01:00.0\"\nnum_vfs = 4\n", to: path)
            reload.yield()
            #expect(await eventually { probe.configurations.count == 2 })
            #expect(await eventually { probe.notifications.count == 2 })
        }
        #expect(probe.configurations.map { $0.pfs.map(\.numVFs) } == [[1], [4]])
        // Published for the assignment service (pools come from here).
        #expect(published.current.pfs.map(\.numVFs) == [4])
        #expect(probe.notifications == ["reloading", "ready: configuration reloaded; nothing to change"])
    }

    @Test("a reloaded file with errors is refused: each error logged with line and key, the running configuration kept")
    func badReloadKeepsRunningConfiguration() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-\(UUID().uuidString).toml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeFile("[[pf]]\npci = \"0000:01:00.0\"\nnum_vfs = 1\n", to: path)
        let initial = try SRIOVConfiguration.load(path: path)

        let probe = ReconcileServiceProbe()
        let logs = ReconcileLogRecorder()
        let published = RunningConfiguration(initial)
        let (reloads, reload) = AsyncStream.makeStream(of: Void.self)
        let service = ReconcileService(
            configuration: initial, interval: .zero, loadConfiguration: ReconcileService.fileLoader(path: path),
            reloadRequests: .stream(reloads), notifications: probe.reloadNotifications, logger: logs.logger,
            publishingTo: published, reconcile: probe.reconcile)
        _ = try await running(service) {
            #expect(await eventually { probe.configurations.count == 1 })
            try writeFile("[[pf]]\npci = \"0000:01:00.0\"\nnum_vfs = \"seven\"\nvf_driver = \"e1000\"\n", to: path)
            reload.yield()
            #expect(await eventually { probe.notifications.count == 2 })
        }
        #expect(probe.configurations.count == 2)
        #expect(probe.configurations[1] == initial)
        #expect(published.current == initial)
        let errors = logs.all.filter { $0.level == .error && $0.metadata["op"] == "config.reload" }
        #expect(errors.map { $0.metadata["line"] } == ["3", "4"])
        #expect(errors.map { $0.metadata["key"] } == ["pf[0].num_vfs", "pf[0].vf_driver"])
        #expect(errors.allSatisfy { $0.metadata["file"] == path })
        #expect(probe.notifications.first == "reloading")
        #expect(probe.notifications.last?.hasPrefix("ready: reload refused (2 problems in the configuration file)") == true)
    }

    @Test("with a nonzero interval, passes repeat on their own")
    func intervalRepeatsPasses() async throws {
        let probe = ReconcileServiceProbe()
        let service = ReconcileService(
            configuration: SRIOVConfiguration(), interval: .milliseconds(10),
            loadConfiguration: { SRIOVConfiguration() }, reloadRequests: .stream(AsyncStream { _ in }),
            logger: quiet, reconcile: probe.reconcile)
        _ = try await running(service) {
            #expect(await eventually { probe.configurations.count >= 3 })
        }
        #expect(probe.notifications.isEmpty)
    }

    @Test("graceful shutdown ends the service promptly, though reload requests never end and the interval is long")
    func endsPromptlyOnGracefulShutdown() async throws {
        let probe = ReconcileServiceProbe()
        let service = ReconcileService(
            configuration: SRIOVConfiguration(), interval: .seconds(3600),
            loadConfiguration: { SRIOVConfiguration() }, reloadRequests: .stream(AsyncStream { _ in }),
            logger: quiet, reconcile: probe.reconcile)
        let took = try await running(service) {
            #expect(await eventually { probe.configurations.count == 1 })
        }
        #expect(took < .seconds(1))
        #expect(probe.configurations.count == 1)
    }
}
