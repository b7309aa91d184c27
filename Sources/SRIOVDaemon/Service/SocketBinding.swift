import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SRIOVHost
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where the API listens: a path sriovd binds itself, or the socket systemd
/// bound for it (socket activation, `systemd/sriovd.socket`).
public enum SocketBinding: Sendable, Hashable {
    /// sriovd binds this path: it clears a stale socket file first, gives the
    /// bound socket its mode and group, and removes it at exit.
    case path(String)
    /// systemd passed this listening socket (`LISTEN_FDS`). systemd owns it
    /// and its file: sriovd neither chmods nor unlinks it, and closing its
    /// copy at exit leaves the socket listening, so connections made while
    /// sriovd is stopped or restarting wait in its queue for the next start.
    case activated(fd: Int32, path: String?)

    /// The socket systemd passed, when it passed one; otherwise `configuredPath`.
    /// Malformed activation (a bad `LISTEN_FDS`, more than one socket, a
    /// socket that is not a listening `AF_UNIX` stream) is an error, never a
    /// silent fallback to binding a path of its own.
    public static func resolve(configuredPath: String, logger: Logger) throws(SocketBindingError) -> SocketBinding {
        let fds: [Int32]
        do {
            fds = try SocketActivation.receiveListenFDs()
        } catch {
            throw SocketBindingError("socket activation is malformed: \(error)")
        }
        if fds.isEmpty { return .path(configuredPath) }
        guard fds.count == 1 else {
            throw SocketBindingError(
                "systemd passed \(fds.count) sockets; sriovd serves one (a single ListenStream= in sriovd.socket)")
        }
        let fd = fds[0]
        try validatePassedSocket(fd)
        let path = boundPath(fd)
        if let path, path != configuredPath {
            logger.notice(
                "serving the socket systemd passed, not daemon.socket",
                metadata: ["socket": "\(path)", "daemon.socket": "\(configuredPath)"])
        }
        return .activated(fd: fd, path: path)
    }

    /// The socket's path, for logs and status lines.
    public var displayPath: String {
        switch self {
        case .path(let path): path
        case .activated(let fd, let path): path ?? "socket-activated fd \(fd)"
        }
    }

    public var isActivated: Bool {
        if case .activated = self { true } else { false }
    }

    /// The service that serves `responder` here. For a path, Hummingbird's
    /// `Application`; for a passed socket, `ActivatedSocketServer`, because
    /// Hummingbird 2.28 can only bind an address itself (`BindAddress` has
    /// no "existing descriptor" case, and `HTTPServerBuilder` always builds
    /// its own `Server`, which binds).
    func server<Responder: HTTPResponder>(
        responder: Responder, serverName: String, onServerRunning: @escaping @Sendable () async -> Void, logger: Logger
    ) -> any Service where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        switch self {
        case .path(let path):
            Application(
                responder: responder,
                configuration: .init(address: .unixDomainSocket(path: path), serverName: serverName),
                onServerRunning: { _ in await onServerRunning() },
                logger: logger)
        case .activated(let fd, _):
            ActivatedSocketServer(
                fd: fd, responder: responder, serverName: serverName, onServerRunning: onServerRunning, logger: logger)
        }
    }

    /// Refuses a passed descriptor that is not a listening `AF_UNIX` stream socket.
    static func validatePassedSocket(_ fd: Int32) throws(SocketBindingError) {
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        guard let domain = option(SO_DOMAIN), let type = option(SO_TYPE), let listening = option(SO_ACCEPTCONN) else {
            throw SocketBindingError(
                "systemd passed fd \(fd), which is not a socket: \(String(cString: strerror(errno)))")
        }
        guard domain == AF_UNIX, type == Int32(SOCK_STREAM.rawValue), listening == 1 else {
            throw SocketBindingError(
                "systemd passed fd \(fd), which is not a listening Unix stream socket; sriovd.socket needs ListenStream=/path and Accept=no")
        }
    }

    private static func boundPath(_ fd: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        let path = withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return path.isEmpty ? nil : path  // empty: unnamed or abstract
    }
}

public struct SocketBindingError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Serves HTTP/1.1 on a listening socket systemd passed: NIO's
/// `ServerBootstrap.bind(_:)` on the descriptor, with Hummingbird's HTTP/1
/// channel and the same per-request work `Application` does (a context per
/// request, `Date` and `Server` headers).
///
/// On graceful shutdown it stops accepting by closing its copy of the
/// descriptor (connections still in the kernel's queue stay there for the
/// next start: systemd holds the socket), then asks each open connection to
/// finish its request in flight and close. The service group's shutdown
/// deadline cancels what does not.
struct ActivatedSocketServer<Responder: HTTPResponder>: Service
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let fd: Int32
    let responder: Responder
    let serverName: String
    let onServerRunning: @Sendable () async -> Void
    let logger: Logger
    var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    func run() async throws {
        let http = HTTP1Channel(responder: respond)
        let connections = OpenConnections()
        let logger = self.logger
        // NIO calls listen() again on the descriptor (backlog 128); queued
        // connections stay queued.
        let listener = try await ServerBootstrap(group: eventLoopGroup)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .bind(fd, serverBackPressureStrategy: nil) { channel in
                http.setup(channel: channel, logger: logger).map { connection in
                    connections.opened(channel)
                    return connection
                }
            }
        logger.debug("serving the socket systemd passed", metadata: ["fd": "\(fd)"])
        await onServerRunning()
        try await withGracefulShutdownHandler {
            try await listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await http.handle(value: connection, logger: logger) }
                    }
                }
            }
        } onGracefulShutdown: {
            listener.channel.close(promise: nil)
            connections.quiesce()
        }
    }

    /// What Hummingbird's `Application` does for each request.
    private var respond: HTTPChannelHandler.Responder {
        let responder = self.responder
        let logger = self.logger
        let serverName = self.serverName
        return { (request, responseWriter: consuming ResponseWriter, channel) in
            var requestLogger = logger
            requestLogger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let context = Responder.Context(source: .init(channel: channel, logger: requestLogger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch {
                requestLogger.debug("unhandled error", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
            response.headers[.date] = HTTPDate.now()
            response.headers[.server] = serverName
            try await responseWriter.write(response: response.head, body: response.body)
        }
    }
}

/// The connections a server has open, so a graceful shutdown can ask each to
/// close after its request in flight (`ChannelShouldQuiesceEvent`, which
/// Hummingbird's HTTP/1 channel handles: an idle connection closes at once).
final class OpenConnections: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
    }
    private let state = Mutex(State())

    /// Call once the channel's HTTP handlers are in place.
    func opened(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let tracked = state.withLock { state in
            guard !state.quiescing else { return false }
            state.channels[id] = channel
            return true
        }
        // Accepted just as shutdown began: its request is served, not
        // dropped; the shutdown deadline bounds how long it may take.
        guard tracked else { return }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLock { $0.channels.removeValue(forKey: id) }
        }
    }

    func quiesce() {
        let open = state.withLock { state in
            state.quiescing = true
            return Array(state.channels.values)
        }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }
}

/// The `Date` header's format (RFC 9110, IMF-fixdate), in UTC.
enum HTTPDate {
    static func now() -> String { format(time(nil)) }

    static func format(_ seconds: time_t) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
