import Synchronization

@testable import SRIOVClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A stand-in for sriovd: listens on a Unix socket in a fresh directory and
/// answers each connection, in turn, with the next canned reply. It records
/// every request it reads.
final class FakeDaemon: Sendable {
    enum Reply: Sendable {
        /// These bytes, each piece in its own write a moment after the last,
        /// then the connection is closed.
        case pieces([[UInt8]])
        /// Reads the request and never answers; closes when the client does.
        case silence
        /// Reads only the request's head, sends these bytes and closes, as a
        /// server refusing a body too large does.
        case beforeTheBody([UInt8])
        /// These bytes, each piece `pause` microseconds after the last, and
        /// then nothing, until the client closes: a stream that has not ended.
        case stream([[UInt8]], pause: UInt32)

        static func text(_ text: String) -> Reply { .pieces([Array(text.utf8)]) }
    }

    let directory: String
    let socketPath: String
    private let listener: Int32
    /// false once the server thread has closed the listener.
    private let listening = Mutex(true)
    private let received = Mutex<[String]>([])

    /// The requests read so far, as text.
    var requests: [String] { received.withLock { $0 } }

    init(_ replies: [Reply]) throws {
        directory = try makeTemporaryDirectory()
        socketPath = directory + "/sriovd.sock"
        listener = try listeningSocket(at: socketPath)
        let started = startThread { [self] in serve(replies) }
        guard started else { throw TestFailure("could not start the fake daemon's thread") }
    }

    convenience init(_ replies: Reply...) throws { try self.init(replies) }

    /// Wakes the server thread if it still waits to accept, and removes the socket and its directory.
    func stop() {
        listening.withLock { isOpen in
            if isOpen { _ = shutdown(listener, Int32(SHUT_RDWR)) }
        }
        unlink(socketPath)
        rmdir(directory)
    }

    private func serve(_ replies: [Reply]) {
        defer {
            listening.withLock { isOpen in
                isOpen = false
                close(listener)
            }
        }
        for reply in replies {
            var connection: Int32
            repeat { connection = accept(listener, nil, nil) } while connection == -1 && errno == EINTR
            guard connection != -1 else { return }  // stop() shut the listener down.
            defer { close(connection) }
            if case .beforeTheBody = reply {
                received.withLock { $0.append(readRequest(from: connection, includingBody: false)) }
            } else {
                received.withLock { $0.append(readRequest(from: connection)) }
            }
            switch reply {
            case .pieces(let pieces):
                for (number, piece) in pieces.enumerated() {
                    // A pause so that pieces arrive in separate reads.
                    if number > 0 { usleep(2_000) }
                    writeAll(piece, to: connection)
                }
            case .silence:
                var byte: UInt8 = 0
                while recv(connection, &byte, 1, 0) > 0 {}
            case .stream(let pieces, let pause):
                for piece in pieces {
                    writeAll(piece, to: connection)
                    usleep(pause)
                }
                var byte: UInt8 = 0
                while recv(connection, &byte, 1, 0) > 0 {}
            case .beforeTheBody(let bytes):
                writeAll(bytes, to: connection)
            }
        }
    }
}

/// Reads a request's head and, by its Content-Length, its body.
private func readRequest(from connection: Int32, includingBody: Bool = true) -> String {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    func contentLength(_ head: String) -> Int {
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            return Int(line.dropFirst("content-length:".count).trimmingPrefix(" ")) ?? 0
        }
        return 0
    }
    while true {
        if let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) {
            let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
            if !includingBody || bytes.count >= end.upperBound + contentLength(head) { break }
        }
        let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
        if count == -1 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += buffer[..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func writeAll(_ bytes: [UInt8], to connection: Int32) {
    var offset = 0
    while offset < bytes.count {
        let sent = bytes.withUnsafeBytes {
            send(connection, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
        }
        if sent == -1 && errno == EINTR { continue }
        if sent <= 0 { return }
        offset += sent
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func makeTemporaryDirectory() throws -> String {
    // /tmp, not $TMPDIR: a socket path must fit in 107 bytes.
    var template = Array("/tmp/sriovclient-test.XXXXXX".utf8CString)
    guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw TestFailure("mkdtemp failed: errno \(errno)")
    }
    return String(cString: path)
}

/// A socket bound at `path`; listening unless `listen` is false, which leaves
/// a socket file that nobody accepts on once the descriptor is closed.
func listeningSocket(at path: String, listen shouldListen: Bool = true) throws -> Int32 {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor != -1 else { throw TestFailure("socket failed: errno \(errno)") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard bound == 0, !shouldListen || listen(descriptor, 8) == 0 else {
        let code = errno
        close(descriptor)
        throw TestFailure("bind/listen on \(path) failed: errno \(code)")
    }
    return descriptor
}

/// Changes the calling thread's file-system uid and returns the previous one.
/// glibc's setfsuid is a per-thread system call; Swift's Glibc module does not
/// declare it, so it is looked up by name.
func setFileSystemUID(_ uid: uid_t) -> uid_t {
    typealias SetFSUID = @convention(c) (uid_t) -> Int32
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setfsuid") else { return uid_t.max }
    return uid_t(unsafeBitCast(symbol, to: SetFSUID.self)(uid))
}
