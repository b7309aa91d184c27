#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSRIOVShim

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

    /// The credentials of the peer of `socket`.
    public init(socket fd: Int32) throws(PeerCredentialsError) {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        let result = sriov_shim_peer_credentials(fd, &pid, &uid, &gid)
        guard result == 0 else { throw PeerCredentialsError(fileDescriptor: fd, errno: -result) }
        self.init(pid: pid, uid: uid, gid: gid)
    }
}

/// `getsockopt(SO_PEERCRED)` failed: not a socket, not AF_UNIX, not connected.
public struct PeerCredentialsError: Error, Sendable, Hashable, CustomStringConvertible {
    public var fileDescriptor: Int32
    public var errno: Int32

    public var description: String {
        "SO_PEERCRED on fd \(fileDescriptor): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}
