#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The system calls this module makes, named for error messages.
enum Syscall: String, Sendable {
    case socket, connect, setsockopt, send, recv
}

/// A system call that failed, with the errno it left.
struct SyscallError: Error, Equatable, Sendable {
    var call: Syscall
    var code: Int32
}

/// Runs `call` again while it fails with EINTR. errno is read as soon as the
/// call returns, before anything else can overwrite it.
func retryingInterrupts<Result: FixedWidthInteger>(
    _ name: Syscall, _ call: () -> Result
) throws(SyscallError) -> Result {
    while true {
        let result = call()
        if result != -1 { return result }
        let code = errno
        if code == EINTR { continue }
        throw SyscallError(call: name, code: code)
    }
}

/// A connected-or-not AF_UNIX stream socket. It owns its descriptor and closes
/// it in `close()` or, failing that, in `deinit`.
final class UnixStreamSocket {
    let descriptor: Int32
    private var isClosed = false

    init() throws(SyscallError) {
        descriptor = try retryingInterrupts(.socket) {
            socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
    }

    deinit { close() }

    /// Connects to the socket file at `path`. Retrying after EINTR is safe for
    /// AF_UNIX: an interrupted connect leaves the socket unconnected.
    func connect(to path: String) throws(SyscallError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        // sun_path must keep room for its terminating NUL.
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SyscallError(call: .connect, code: bytes.isEmpty ? ENOENT : ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + 1)
        _ = try retryingInterrupts(.connect) {
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, length) }
            }
        }
    }

    /// Bounds each later blocking receive (SO_RCVTIMEO) or send and connect
    /// (SO_SNDTIMEO): they fail with EAGAIN once `duration` has passed.
    func setTimeout(_ option: Int32, to duration: Duration) throws(SyscallError) {
        var value = timeval(bounding: duration)
        _ = try retryingInterrupts(.setsockopt) {
            setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Sends all of `bytes`. MSG_NOSIGNAL turns a closed peer into EPIPE
    /// instead of a SIGPIPE that would end the process.
    func send(_ bytes: [UInt8]) throws(SyscallError) {
        var offset = 0
        while offset < bytes.count {
            let sent = try retryingInterrupts(.send) {
                bytes.withUnsafeBytes { buffer in
                    Glibc.send(descriptor, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                }
            }
            offset += sent
        }
    }

    /// Reads what is available into the start of `buffer`; 0 means the peer closed.
    func receive(into buffer: inout [UInt8]) throws(SyscallError) -> Int {
        try retryingInterrupts(.recv) {
            buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        }
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        // Not retried on EINTR: Linux releases the descriptor either way, and
        // a second close could hit a descriptor another thread just opened.
        _ = Glibc.close(descriptor)
    }
}

extension timeval {
    /// `duration` as a socket timeout, never zero: a zero timeval means "wait forever".
    init(bounding duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let microseconds = attoseconds / 1_000_000_000_000
        if seconds < 0 || (seconds == 0 && microseconds <= 0) {
            self.init(tv_sec: 0, tv_usec: 1)
        } else {
            self.init(tv_sec: Int(seconds), tv_usec: Int(microseconds))
        }
    }
}
