import SRIOVHost

#if canImport(Glibc)
import Glibc
#endif

/// The API socket's file: prepared before bind (folder made, stale file of a
/// dead daemon removed, a live daemon refused), given its mode and group once
/// bound, and removed at shutdown.
struct UnixSocketFile: Sendable {
    let path: String

    enum Failure: Error, CustomStringConvertible {
        case inUse(String)
        case cannotPrepare(String)

        var description: String {
            switch self {
            case .inUse(let s), .cannotPrepare(let s): s
            }
        }
    }

    /// Makes the parent folder (0755) and clears a stale socket file.
    func prepare() throws(Failure) {
        guard path.utf8.count < 108 else {
            throw .cannotPrepare("socket path \(path) is longer than the 107 bytes a Unix socket address holds")
        }
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !parent.isEmpty { try makeDirectories(parent) }

        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw .cannotPrepare("\(path) exists and is not a socket; refusing to replace it")
        }
        if acceptsConnections() {
            throw .inUse("another process is serving \(path); is sriovd already running?")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw .cannotPrepare("cannot remove stale socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Sets the mode and, when given and it exists, the group of the bound
    /// socket. Returns a warning when the group does not exist: the socket
    /// then keeps root's group, so access only narrows.
    func setPermissions(mode: mode_t, group: String?) throws(Failure) -> String? {
        var warning: String?
        if let group, !group.isEmpty {
            if let gid = GroupDatabase.gid(named: group) {
                guard chown(path, getuid(), gid) == 0 else {
                    throw .cannotPrepare("chown \(path) to group \(group): \(String(cString: strerror(errno)))")
                }
            } else {
                warning = "group \(group) does not exist; \(path) keeps group root (create the group, e.g. with systemd-sysusers, or set daemon.admin_group)"
            }
        }
        guard chmod(path, mode) == 0 else {
            throw .cannotPrepare("chmod \(path): \(String(cString: strerror(errno)))")
        }
        return warning
    }

    func remove() {
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK {
            unlink(path)
        }
    }

    private func acceptsConnections() -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    private func makeDirectories(_ dir: String) throws(Failure) {
        var current = ""
        for component in dir.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw .cannotPrepare("cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}
