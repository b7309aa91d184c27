import Foundation
import SRIOVDaemon
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real sriovd binary as systemd runs it: notify protocol, watchdog,
/// graceful SIGTERM. A fake (empty) sysfs keeps it away from the hardware.
@Suite("sriovd under a service manager", .serialized)
struct DaemonProcessTests {
    static let binary: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent(".build/debug/sriovd").path
    }()

    /// A datagram socket standing in for systemd's NOTIFY_SOCKET.
    final class NotifyListener {
        let path: String
        let fd: Int32

        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in path.utf8.enumerated() { raw[i] = b }
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else { throw POSIXError(.EADDRINUSE) }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd); unlink(path) }

        /// Datagrams received until `deadline` or until `until` is satisfied.
        func collect(for seconds: Double, until: ([String]) -> Bool) -> [String] {
            var messages: [String] = []
            let end = Date().addingTimeInterval(seconds)
            var buffer = [UInt8](repeating: 0, count: 4096)
            while Date() < end && !until(messages) {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { messages.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
            }
            return messages
        }
    }

    @Test("READY=1 with STATUS once serving, WATCHDOG=1 pings, STOPPING=1 and a clean exit on SIGTERM")
    func notifyProtocol() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("sriovd is not built at \(Self.binary) (swift build)")
            return
        }
        let dir = NSTemporaryDirectory() + "sriovd-notify-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/sys/bus/pci/devices", withIntermediateDirectories: true)
        let listener = try NotifyListener(path: dir + "/notify")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = [
            "--socket", dir + "/api.sock", "--state-dir", dir + "/state", "--sysfs-root", dir + "/sys",
            "--log-target", "stderr",
        ]
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = listener.path
        env["WATCHDOG_USEC"] = "400000"
        env.removeValue(forKey: "WATCHDOG_PID")
        process.environment = env
        process.standardError = FileHandle.nullDevice
        try process.run()

        let started = listener.collect(for: 30) { m in m.contains { $0.contains("READY=1") } && m.filter { $0.contains("WATCHDOG=1") }.count >= 2 }
        let ready = started.first { $0.contains("READY=1") }
        #expect(ready != nil, "READY=1 within 30 s; got \(started)")
        #expect(started.contains { $0.contains("STATUS=") })
        #expect(started.filter { $0.contains("WATCHDOG=1") }.count >= 2, "watchdog pings at half of WATCHDOG_USEC")
        #expect(FileManager.default.fileExists(atPath: dir + "/api.sock"))

        kill(process.processIdentifier, SIGTERM)
        let stopping = listener.collect(for: 10) { m in m.contains { $0.contains("STOPPING=1") } }
        process.waitUntilExit()
        #expect(stopping.contains { $0.contains("STOPPING=1") })
        #expect(process.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: dir + "/api.sock"), "the socket is removed")
    }

    @Test("a bad flag or configuration stops sriovd at once with a message naming it (exit 78)")
    func badConfiguration() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("sriovd is not built at \(Self.binary) (swift build)")
            return
        }
        let dir = NSTemporaryDirectory() + "sriovd-badcfg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = dir + "/bad.toml"
        try "[daemon]\nsocket = 42\n".write(toFile: config, atomically: true, encoding: .utf8)
        for (arguments, needle) in [
            (["--config", config], "bad.toml:2"), (["--log-level", "loud"], "--log-level"), (["--socket", "relative.sock"], "--socket"),
        ] {
            let (status, text) = try Self.runToExit(arguments + ["--state-dir", dir + "/state", "--sysfs-root", dir])
            #expect(status == 78, "\(arguments)")
            #expect(text.contains(needle), "\(arguments): \(text)")
        }
    }

    /// Runs sriovd until it exits: its status and what it wrote to stderr.
    static func runToExit(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
}

extension DaemonProcessTests {
    @Test("SRIOVD_TEST_CRASH_POINT without the test flag: sriovd refuses to start (exit 78) and names the variable")
    func crashPointNeedsTheTestFlag() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("sriovd is not built at \(Self.binary) (swift build)")
            return
        }
        let dir = NSTemporaryDirectory() + "sriovd-crashflag-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let (status, text) = try Self.runToExit(
            ["--socket", dir + "/s.sock", "--state-dir", dir + "/state", "--sysfs-root", dir],
            environment: ["SRIOVD_TEST_CRASH_POINT": "assign.reserved"])
        #expect(status == 78)
        #expect(text.contains("SRIOVD_TEST_CRASH_POINT=assign.reserved") && text.contains("--test-crash-points"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/state.db"), "nothing was opened")
    }
}

@Suite("Crash points: the test flag and the variable")
struct CrashPointsGateTests {
    @Test("unset or empty: none; set without the flag: refused naming it; with the flag: armed at that point only")
    func gate() async throws {
        #expect(throws: Never.self) { _ = try CrashPoints.fromEnvironment([:], testFlag: false) }
        #expect(throws: Never.self) { _ = try CrashPoints.fromEnvironment(["SRIOVD_TEST_CRASH_POINT": ""], testFlag: false) }
        #expect(throws: CrashPoints.Refusal.self) {
            _ = try CrashPoints.fromEnvironment(["SRIOVD_TEST_CRASH_POINT": "release.begun"], testFlag: false)
        }
        // Armed, but another point passes: the process lives on.
        let armed = try CrashPoints.fromEnvironment(["SRIOVD_TEST_CRASH_POINT": "release.begun"], testFlag: true)
        await armed.hit("assign.reserved")
    }
}
