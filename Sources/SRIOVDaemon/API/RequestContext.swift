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
