import Foundation
import Testing

@testable import SRIOVHost

/// A datagram socket standing in for systemd's notify socket.
private final class NotifyListener {
    let directory: String
    let path: String
    let fd: Int32

    init() throws {
        var template = Array("/tmp/sriovd-notify-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        directory = String(cString: made)
        path = directory + "/notify"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        unlink(path)
        rmdir(directory)
    }

    /// The next datagram whose text satisfies `matching` (other code in this
    /// test process may notify too while NOTIFY_SOCKET is set), or nil after
    /// two seconds without one.
    func receive(matching: (String) -> Bool = { _ in true }) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count >= 0 else { return nil }
            let text = String(decoding: buffer[..<count], as: UTF8.self)
            if matching(text) { return text }
        }
    }
}

/// Sets environment variables (nil: unset) for the duration of `body` and
/// restores what was there before.
@discardableResult
private func withEnvironment<R>(_ values: [String: String?], _ body: () throws -> R) rethrows -> R {
    var saved: [String: String?] = [:]
    for name in values.keys { saved[name] = getenv(name).map { String(cString: $0) } }
    func apply(_ values: [String: String?]) {
        for (name, value) in values {
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
    }
    apply(values)
    defer { apply(saved) }
    return try body()
}

private func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// Everything here changes process-wide environment variables, so it runs
/// one test at a time, in this one suite.
@Suite("systemd environment", .serialized)
struct SystemdEnvironmentTests {
    @Test("ready, status, stopping and watchdog arrive as sd_notify datagrams")
    func notifications() throws {
        let listener = try NotifyListener()
        withEnvironment(["NOTIFY_SOCKET": listener.path]) {
            let notifier = SystemdNotifier()
            #expect(notifier.isSupervised)

            #expect(notifier.ready() == .sent)
            #expect(listener.receive { $0.hasPrefix("READY=") } == "READY=1")

            #expect(notifier.status("serving /run/sriovd.sock\n2 PFs") == .sent)
            #expect(listener.receive { $0.hasPrefix("STATUS=") } == "STATUS=serving /run/sriovd.sock 2 PFs")

            #expect(notifier.ready(status: "up") == .sent)
            #expect(listener.receive { $0.hasPrefix("READY=") } == "READY=1\nSTATUS=up")

            #expect(notifier.watchdog() == .sent)
            #expect(listener.receive { $0.hasPrefix("WATCHDOG=") } == "WATCHDOG=1")

            #expect(notifier.stopping() == .sent)
            #expect(listener.receive { $0.hasPrefix("STOPPING=") } == "STOPPING=1")
        }
    }

    @Test("reloading sends RELOADING=1 with the current CLOCK_MONOTONIC in microseconds")
    func reloading() throws {
        let listener = try NotifyListener()
        try withEnvironment(["NOTIFY_SOCKET": listener.path]) {
            let before = SystemdNotifier.monotonicMicroseconds()
            #expect(SystemdNotifier().reloading() == .sent)
            let after = SystemdNotifier.monotonicMicroseconds()
            let datagram = try #require(listener.receive { $0.hasPrefix("RELOADING=") })
            let lines = datagram.split(separator: "\n")
            #expect(lines.first == "RELOADING=1")
            let stamp = try #require(lines.last.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) })
            #expect(lines.last?.hasPrefix("MONOTONIC_USEC=") == true)
            #expect((before...after).contains(stamp))
        }
    }

    @Test("without NOTIFY_SOCKET nothing is sent and the outcome says so")
    func notSupervised() {
        withEnvironment(["NOTIFY_SOCKET": nil]) {
            let notifier = SystemdNotifier()
            #expect(!notifier.isSupervised)
            #expect(notifier.ready() == .notSupervised)
            #expect(notifier.watchdog() == .notSupervised)
        }
    }

    @Test("a NOTIFY_SOCKET nobody listens on is a failure with its errno")
    func unreachableSocket() {
        withEnvironment(["NOTIFY_SOCKET": "/nonexistent-sriovd/notify"]) {
            #expect(SystemdNotifier().ready() == .failed(errno: ENOENT))
        }
    }

    @Test("the watchdog interval is WATCHDOG_USEC when WATCHDOG_PID is this process or unset")
    func watchdogInterval() {
        withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "\(getpid())"]) {
            #expect(SystemdNotifier().watchdogInterval == .seconds(3))
        }
        withEnvironment(["WATCHDOG_USEC": "250000", "WATCHDOG_PID": nil]) {
            #expect(SystemdNotifier().watchdogInterval == .milliseconds(250))
        }
    }

    @Test("no watchdog interval without WATCHDOG_USEC, or when it is meant for another process")
    func noWatchdogInterval() {
        withEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
            #expect(SystemdNotifier().watchdogInterval == nil)
        }
        withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "\(getpid() + 1)"]) {
            #expect(SystemdNotifier().watchdogInterval == nil)
        }
        withEnvironment(["WATCHDOG_USEC": "bogus", "WATCHDOG_PID": nil]) {
            #expect(SystemdNotifier().watchdogInterval == nil)
        }
    }

    @Test("passed sockets start at fd 3, and the activation environment is removed")
    func listenFDs() throws {
        // sd_listen_fds checks the descriptors exist: make sure fd 3 is open,
        // with a socket of our own when it is free.
        var ours: Int32 = -1
        if fcntl(3, F_GETFD) < 0 {
            let sock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            ours = fcntl(sock, F_DUPFD_CLOEXEC, 3)
            close(sock)
        }
        defer { if ours >= 0 { close(ours) } }
        try #require(fcntl(3, F_GETFD) >= 0)

        withEnvironment(["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "api"]) {
            #expect(SocketActivation.listenFDs() == [3])
            #expect(environment("LISTEN_PID") == nil)
            #expect(environment("LISTEN_FDS") == nil)
            #expect(environment("LISTEN_FDNAMES") == nil)
            #expect(SocketActivation.listenFDs() == [], "a second call finds nothing")
        }
    }

    @Test("sockets passed to another process are not taken, and the environment is still removed")
    func listenFDsForAnotherProcess() {
        withEnvironment(["LISTEN_PID": "\(getpid() + 1)", "LISTEN_FDS": "2"]) {
            #expect(SocketActivation.listenFDs() == [])
            #expect(environment("LISTEN_PID") == nil)
            #expect(environment("LISTEN_FDS") == nil)
        }
    }

    @Test("malformed socket activation is an error from receiveListenFDs and none from listenFDs")
    func malformedActivation() {
        withEnvironment(["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "many"]) {
            #expect(throws: SystemdError(call: "sd_listen_fds", errno: EINVAL)) {
                try SocketActivation.receiveListenFDs()
            }
        }
        withEnvironment(["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "many"]) {
            #expect(SocketActivation.listenFDs() == [])
        }
    }

    @Test("stderr is the journal stream exactly when JOURNAL_STREAM names fd 2's device and inode")
    func journalStream() {
        var info = stat()
        #expect(fstat(STDERR_FILENO, &info) == 0)
        withEnvironment(["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"]) {
            #expect(JournalWriter.stderrIsJournalStream())
        }
        withEnvironment(["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino &+ 1)"]) {
            #expect(!JournalWriter.stderrIsJournalStream())
        }
        withEnvironment(["JOURNAL_STREAM": nil]) {
            #expect(!JournalWriter.stderrIsJournalStream())
        }
    }
}
