import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SRIOVCore

/// Serves `/metrics` alone over TCP on `metrics.listen`, for Prometheus
/// (which scrapes TCP, not Unix sockets). A service of the daemon's group:
/// it stops with it. A listener that cannot start (address in use, or TCP
/// not allowed, as under the shipped unit's `RestrictAddressFamilies=`) is
/// logged and ends on its own: VF management goes on without it.
public struct MetricsListener: Service {
    let address: MetricsListenAddress
    let exposition: MetricsExposition
    let logger: Logger
    let onServerRunning: @Sendable (any Channel) async -> Void

    public init(
        address: MetricsListenAddress, exposition: MetricsExposition, logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) {
        self.address = address
        self.exposition = exposition
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    public func run() async throws {
        let logger = self.logger
        let address = self.address
        let onServerRunning = self.onServerRunning
        let app = Application(
            router: makeMetricsRouter(exposition),
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port), serverName: "sriovd-metrics"),
            onServerRunning: { channel in
                logger.info("serving metrics", metadata: ["listen": "\(address)"])
                await onServerRunning(channel)
            },
            logger: logger)
        do {
            try await app.run()
        } catch {
            logger.error(
                "metrics listener stopped; the API socket's /metrics still answers",
                metadata: [
                    "setting": "metrics.listen", "listen": "\(address)", "error": "\(error)",
                    "detail": "under systemd, TCP needs RestrictAddressFamilies= to allow AF_INET/AF_INET6 and IPAddressAllow=localhost",
                ])
        }
    }
}
