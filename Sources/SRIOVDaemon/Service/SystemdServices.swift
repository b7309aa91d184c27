import Logging
import ServiceLifecycle
import SRIOVHost

/// Pings systemd's watchdog at half its interval while the daemon's event
/// handling is alive. Does nothing when the watchdog is not enabled.
struct WatchdogService: Service {
    let notifier: SystemdNotifier
    /// A cheap check that the daemon can still make progress; a ping is sent
    /// only when it returns true.
    let isHealthy: @Sendable () async -> Bool
    let logger: Logger

    func run() async throws {
        guard let interval = notifier.watchdogInterval else { return }
        let period = interval / 2
        logger.info("watchdog enabled", metadata: ["interval": "\(interval)"])
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if await isHealthy() {
                    notifier.watchdog()
                } else {
                    logger.warning("health check failed; withholding watchdog ping")
                }
                do { try await Task.sleep(for: period) } catch { return }
            }
        }
    }
}

/// Tells systemd STOPPING=1 the moment a graceful shutdown begins.
struct StoppingNotifierService: Service {
    let notifier: SystemdNotifier
    let events: EventBus

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is already going down
        }
        events.publish(.daemonStopping)
        notifier.status("shutting down")
        notifier.stopping()
    }
}
