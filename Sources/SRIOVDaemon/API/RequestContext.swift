import Hummingbird
import Logging
import NIOCore
import SRIOVHost

#if canImport(Glibc)
import Glibc
#endif

/// A request context that can tell who sent the request.
public protocol PeerIdentifyingContext: RequestContext {
    /// The process at the other end of the connection, as the kernel
    /// recorded it when that process connected; nil when it cannot be known
    /// (the connection is not a Unix socket).
    func peerCredentials() async -> PeerCredentials?
}

/// The per-request context of sriovd's router.
public struct SRIOVRequestContext: PeerIdentifyingContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection the request arrived on: the only source of the peer's
    /// identity. Nothing in the request itself (headers, body) can set it.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// `SO_PEERCRED` of the connection. Hummingbird makes a context per
    /// request, synchronously and off the channel's event loop, and NIO
    /// offers socket options only as event-loop futures, so this is read per
    /// request, not cached per connection: one `getsockopt` on the event
    /// loop. The kernel fixed the answer at `connect()`, so every request of
    /// a connection gets the same one.
    public func peerCredentials() async -> PeerCredentials? {
        await channel.peerCredentials()
    }
}

extension Channel {
    /// `SO_PEERCRED`: nil when the channel is not a socket (the router test
    /// framework's channels) or the option fails (not `AF_UNIX`).
    func peerCredentials() async -> PeerCredentials? {
        guard let provider = self as? any SocketOptionProvider else { return nil }
        let future: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(
            level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
        guard let cred = try? await future.get() else { return nil }
        return PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid)
    }
}

/// `struct ucred` (`<sys/socket.h>`, hidden from Swift's Glibc module behind
/// `_GNU_SOURCE`): three 32-bit fields in this order, 12 bytes.
struct UCred: Sendable {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
