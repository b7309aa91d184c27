import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Who is at the other end of a connected AF_UNIX socket (`SO_PEERCRED`):
/// the process, user and group as they were when it connected.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: pid_t
    public var uid: uid_t
    public var gid: gid_t

    public init(pid: pid_t, uid: uid_t, gid: gid_t) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
}

extension Channel {
    /// `SO_PEERCRED` of the channel's socket, read on its event loop: nil
    /// when the channel is not a socket (the router test framework's
    /// channels) or the option fails (not `AF_UNIX`). The one place sriovd
    /// reads peer credentials.
    public func peerCredentials() async -> PeerCredentials? {
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
