#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd

/// Sockets passed by systemd socket activation (`sd_listen_fds`).
public enum SocketActivation {
    /// The first passed descriptor (`SD_LISTEN_FDS_START`).
    public static let firstFD: Int32 = 3

    /// The passed descriptors (3, 4, ...), or none when the daemon was not
    /// socket-activated or activation was malformed. `LISTEN_PID`,
    /// `LISTEN_FDS` and `LISTEN_FDNAMES` are removed from the environment so
    /// child processes do not take the sockets for theirs; a second call
    /// therefore returns none.
    public static func listenFDs() -> [Int32] {
        (try? receiveListenFDs()) ?? []
    }

    /// `listenFDs()`, but malformed activation (a bad `LISTEN_PID` or
    /// `LISTEN_FDS`, a descriptor that is not open) is an error rather than
    /// "no sockets". The environment is removed either way.
    public static func receiveListenFDs() throws(SystemdError) -> [Int32] {
        let count = sd_listen_fds(1)
        guard count >= 0 else { throw SystemdError(call: "sd_listen_fds", errno: -count) }
        return (0..<count).map { firstFD + $0 }
    }
}

/// A libsystemd call that failed, with its errno.
public struct SystemdError: Error, Sendable, Hashable, CustomStringConvertible {
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}
