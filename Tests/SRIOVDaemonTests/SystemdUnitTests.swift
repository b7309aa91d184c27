import Foundation
import Logging
import ServiceLifecycle
import SRIOVClient
import SRIOVCore
import SRIOVHost
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The checkout and its build, for tests that run scripts and the binary.
enum Checkout {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// The built sriovd (`SRIOVD_BIN_DIR` overrides `.build/debug`).
    static var sriovd: String {
        let dir = ProcessInfo.processInfo.environment["SRIOVD_BIN_DIR"] ?? root.appendingPathComponent(".build/debug").path
        return dir + "/sriovd"
    }

    static func hasTool(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"])
            .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Runs `arguments` (the first is looked up on PATH) from the checkout's
    /// root; returns its exit status and its output, standard error included.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = root
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `run`, on a thread of its own.
    static func runOffPool(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await offPool { try run(arguments) }
    }

    static func temporaryDirectory(_ prefix: String) throws -> String {
        let dir = NSTemporaryDirectory() + "\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

@Suite("systemd unit files")
struct SystemdUnitTests {
    static let analyzeMissing: String? =
        Checkout.hasTool("systemd-analyze") ? nil : "systemd-analyze is not installed (apt-get install systemd)"

    @Test(
        "scripts/verify-units.sh passes: systemd-analyze verify, sysusers.d and tmpfiles.d applied to an empty root",
        .needing(analyzeMissing))
    func verifyUnits() async throws {
        try TestRequirement.check(Self.analyzeMissing)
        let (status, output) = try await Checkout.runOffPool(["bash", "scripts/verify-units.sh", Checkout.sriovd])
        #expect(status == 0, "\(output)")
        #expect(output.contains("systemd-analyze verify sriovd.service sriovd.socket OK"), "\(output)")
    }

    @Test(
        "the service's exposure (systemd-analyze security --offline) stays low",
        .needing(analyzeMissing))
    func exposure() async throws {
        try TestRequirement.check(Self.analyzeMissing)
        let (_, output) = try await Checkout.runOffPool(["bash", "scripts/verify-units.sh", Checkout.sriovd])
        guard let line = output.split(separator: "\n").first(where: { $0.contains("Overall exposure level") }) else {
            try #require(output.contains("exposure not measured"), "\(output)")
            return  // this systemd-analyze cannot measure it offline
        }
        let score = line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }
        let value = try #require(score, "\(line)")
        #expect(value <= 2.5, "hardening regressed: \(line)")
    }
}

@Suite("systemd socket activation")
struct SystemdUnitSocketActivationTests {
    static var unavailableReason: String? {
        if !Checkout.hasTool("systemd-socket-activate") { return "systemd-socket-activate is not installed (apt-get install systemd)" }
        if !FileManager.default.isExecutableFile(atPath: Checkout.sriovd) { return "sriovd is not built at \(Checkout.sriovd)" }
        return nil
    }

    @Test(
        "sriovd serves a socket passed by systemd, answers the connection that woke it, and leaves the socket file alone",
        .needing(unavailableReason))
    func realDaemon() async throws {
        try TestRequirement.check(Self.unavailableReason)
        let dir = try Checkout.temporaryDirectory("sriovd-activation")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/sys/bus/pci/devices", withIntermediateDirectories: true)
        let socket = dir + "/api.sock"
        let log = dir + "/sriovd.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)

        // systemd-socket-activate binds and listens, waits for the first
        // connection, then execs sriovd with the socket as fd 3 (LISTEN_FDS=1).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "systemd-socket-activate", "--listen=\(socket)", Checkout.sriovd, "--socket", socket, "--sysfs-root",
            dir + "/sys", "--state-dir", dir + "/state", "--log-target", "stderr",
        ]
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var before = stat()
        for _ in 0..<100 where stat(socket, &before) != 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(stat(socket, &before) == 0, "systemd-socket-activate did not bind \(socket)")

        let health = try await SRIOVClient(socketPath: socket, timeout: .seconds(60)).health()
        #expect(health.status == "ok" && health.pfCount == 0)

        kill(process.processIdentifier, SIGTERM)
        try await offPool { process.waitUntilExit() }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("activated=true"), "\(output)")
        var after = stat()
        #expect(stat(socket, &after) == 0, "sriovd removed systemd's socket file")
        #expect(after.st_ino == before.st_ino && after.st_mode == before.st_mode, "sriovd replaced or chmodded the socket")
    }

    @Test("a connection queued while no server runs is answered after a restart")
    func restartKeepsQueuedConnections() async throws {
        let dir = try Checkout.temporaryDirectory("sriovd-activation")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/api.sock"
        let listener = try listeningSocket(at: path)
        // What systemd keeps: its own descriptor of the same socket.
        let systemdCopy = dup(listener)
        try #require(systemdCopy >= 0)

        let first = try RawConnection(path: path)  // queued: nothing serves yet
        try first.send("GET /v1/health HTTP/1.1\r\nHost: sriovd\r\n\r\n")
        _ = try await serve(fd: listener) {
            let response = try await offPool { try first.readResponse() }
            #expect(response.status == 200)
            #expect(response.body.contains(#""pfCount":2"#))
            #expect(response.head.contains("\r\nServer: sriovd\r\n"))
            #expect(response.head.contains("\r\nDate: "))
        }
        #expect(FileManager.default.fileExists(atPath: path), "the server removed the socket file")

        let second = try RawConnection(path: path)  // queued between the two servers
        try second.send("GET /v1/pfs HTTP/1.1\r\nHost: sriovd\r\n\r\n")
        _ = try await serve(fd: systemdCopy) {
            let response = try await offPool { try second.readResponse() }
            #expect(response.status == 200)
        }
    }

    @Test("graceful shutdown closes idle keep-alive connections instead of waiting for them")
    func shutdownClosesIdleConnections() async throws {
        let dir = try Checkout.temporaryDirectory("sriovd-activation")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/api.sock"
        let listener = try listeningSocket(at: path)
        let connection = try RawConnection(path: path)
        let shutdown = try await serve(fd: listener) {
            try connection.send("GET /v1/health HTTP/1.1\r\nHost: sriovd\r\n\r\n")
            let status = try await offPool { try connection.readResponse().status }
            #expect(status == 200)
        }
        #expect(shutdown < .seconds(2), "shutdown waited \(shutdown) for an idle connection")
        let closed = try await offPool { try connection.readsEndOfFile() }
        #expect(closed)
    }

    @Test("a passed descriptor must be a listening Unix stream socket")
    func passedSocketIsChecked() throws {
        let dir = try Checkout.temporaryDirectory("sriovd-activation")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let listening = try listeningSocket(at: dir + "/ok.sock")
        defer { close(listening) }
        try SocketBinding.validatePassedSocket(listening)

        let notListening = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(notListening) }
        #expect(throws: SocketBindingError.self) { try SocketBinding.validatePassedSocket(notListening) }
        let datagram = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(datagram) }
        #expect(throws: SocketBindingError.self) { try SocketBinding.validatePassedSocket(datagram) }
        var pipeFDs: [Int32] = [0, 0]
        try #require(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }
        let error = #expect(throws: SocketBindingError.self) { try SocketBinding.validatePassedSocket(pipeFDs[0]) }
        #expect(error?.description.contains("not a socket") == true)
    }

    /// Runs the API (read-only routes, two fake PFs) on `fd` as a socket-
    /// activated server, runs `body`, shuts the server down gracefully and
    /// returns how long the shutdown took.
    func serve(fd: Int32, _ body: () async throws -> Void) async throws -> Duration {
        let started = AsyncStream<Void>.makeStream()
        let server = SocketBinding.activated(fd: fd, path: nil).server(
            responder: makeRouter(inventory: try FakeHost.twoPFs()).buildResponder(), serverName: "sriovd",
            onServerRunning: { started.continuation.yield() }, logger: Logger(label: "test"))
        var configuration = ServiceGroupConfiguration(services: [server], logger: Logger(label: "test"))
        configuration.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for await _ in started.stream { break }
            do {
                try await body()
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            let clock = ContinuousClock()
            let start = clock.now
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return clock.now - start
        }
    }
}

/// Runs blocking `work` on a thread of its own. The concurrency pool has as
/// many threads as CPUs (two on CI machines): a test that blocks them can
/// starve the in-process server it is waiting for.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// A bound, listening Unix stream socket at `path`, as systemd would pass it.
func listeningSocket(at path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    var address = unixAddress(path)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard bound == 0, listen(fd, 16) == 0 else {
        let code = errno
        close(fd)
        throw POSIXError(.init(rawValue: code) ?? .EIO)
    }
    return fd
}

func unixAddress(_ path: String) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
    }
    return address
}

/// One client connection driven by hand: the test decides when it connects,
/// what it sends and when it reads. Reads block (up to 10 seconds): call them
/// through `offPool`. Used by one thread at a time.
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private var buffered: [UInt8] = []

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = unixAddress(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(.init(rawValue: code) ?? .EIO)
        }
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    }

    /// One response, framed by its Content-Length.
    func readResponse() throws -> (status: Int, head: String, body: String) {
        while findHeadEnd() == nil {
            guard try fill() else { throw POSIXError(.ECONNRESET) }
        }
        let headEnd = findHeadEnd()!
        let head = String(decoding: buffered[..<headEnd], as: UTF8.self)
        let length = head.split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        while buffered.count < headEnd + 4 + length {
            guard try fill() else { throw POSIXError(.ECONNRESET) }
        }
        let body = String(decoding: buffered[(headEnd + 4)..<(headEnd + 4 + length)], as: UTF8.self)
        buffered.removeFirst(headEnd + 4 + length)
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? -1
        return (status, head + "\r\n", body)
    }

    /// Whether the server closed the connection (a read returns 0).
    func readsEndOfFile() throws -> Bool {
        buffered.isEmpty ? !(try fill()) : false
    }

    private func findHeadEnd() -> Int? {
        let marker: [UInt8] = Array("\r\n\r\n".utf8)
        guard buffered.count >= 4 else { return nil }
        return (0...(buffered.count - 4)).first { Array(buffered[$0..<($0 + 4)]) == marker }
    }

    /// Reads more; false at end of file.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &chunk, chunk.count)
        if n < 0 { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        buffered += chunk[0..<n]
        return n > 0
    }
}
