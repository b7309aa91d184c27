import SRIOVCore
import Testing

@testable import SRIOVClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The sriovctl binary, run as an operator runs it, against the fake daemon:
/// what it sends, prints and exits with. It is built next to this test
/// binary (`swift build --build-tests` builds every product).
@Suite("sriovctl's write commands, run as a process")
struct SRIOVCtlProcessTests {
    @Test func badValueExits64BeforeAnyRequest() async throws {
        let daemon = try FakeDaemon(ControlFixture.changed())
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--socket", daemon.socketPath, "vf", "set", "0000:01:10.0", "--trust", "on", "--vlan", "5000"])
        #expect(run.status == 64)
        #expect(run.errors.hasPrefix("Error: --vlan: \"5000\" is outside the VLAN range 0-4094 (0 means untagged)\n"))
        #expect(run.output.isEmpty)
        #expect(daemon.requests.isEmpty)
    }

    @Test func changeThatSetsNothingExits64BeforeAnyRequest() async throws {
        let daemon = try FakeDaemon(ControlFixture.changed())
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["vf", "set", "--socket", daemon.socketPath, "0000:01:10.0"])
        #expect(run.status == 64)
        #expect(run.errors.hasPrefix("Error: nothing to change: give at least one of --mac, --vlan,"))
        #expect(daemon.requests.isEmpty)
    }

    @Test func unsupportedSettingIsANoteOnStderrAndExits0() async throws {
        let daemon = try FakeDaemon(ControlFixture.changed())
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--socket", daemon.socketPath, "vf", "set", "0000:01:10.0", "--vlan", "100", "--trust", "on",
             "--link-state", "enable"])
        #expect(run.status == 0)
        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "PATCH /v1/vfs/0000:01:10.0 HTTP/1.1")
        #expect(body == #"{"linkState":"enable","trust":true,"vlan":100}"#)
        #expect(run.output.hasPrefix("SETTING    OUTCOME      DETAIL\nvlan       applied      -\n"))
        #expect(run.output.contains("\n0000:01:00.0  0   0000:01:10.0  igbvf"))
        #expect(
            run.errors
                == "note: 0000:01:10.0: linkState was left as it was: the VF's driver does not support it (not an error)\n")
    }

    @Test func failedSettingPrintsTheResultsTableAndExits1() async throws {
        let daemon = try FakeDaemon(
            .text(Fixture.problem("500 Internal Server Error", ControlFixture.failedProblem)))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--socket", daemon.socketPath, "vf", "set", "0000:01:10.0", "--mac", "52:54:00:00:00:02",
             "--spoof-check", "off"])
        #expect(run.status == 1)
        #expect(
            run.output == """
                SETTING     OUTCOME     DETAIL
                mac         rolledBack  -
                vlan        unchanged   -
                spoofCheck  failed      \(ControlFixture.spoofCheckFailure)

                """)
        #expect(
            run.errors == "error: VF settings not applied: VF 0 of 0000:01:00.0: spoofCheck: "
                + "\(ControlFixture.spoofCheckFailure); settings applied by this request were undone\n")
    }

    @Test func jsonPrintsTheDaemonsAnswerEvenWhenASettingFailed() async throws {
        let daemon = try FakeDaemon(.text(Fixture.problem("500 Internal Server Error", ControlFixture.failedProblem)))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--json", "--socket", daemon.socketPath, "vf", "set", "0000:01:10.0", "--spoof-check", "off"])
        #expect(run.status == 1)
        #expect(run.output.hasPrefix("{\n  \"detail\": \"VF 0 of 0000:01:00.0: spoofCheck:"))
        #expect(run.output.contains("\n  \"results\": [\n    {\n      \"outcome\": \"rolledBack\",\n"))
        #expect(run.errors.hasPrefix("error: VF settings not applied:"))
    }

    @Test func loweringTheCountWhileVFsAreInUseExits1NamingThemWithAHint() async throws {
        let daemon = try FakeDaemon(.text(Fixture.problem("409 Conflict", ControlFixture.conflictProblem)))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "pf", "set", "0000:01:00.0", "--num-vfs", "0"])
        #expect(run.status == 1)
        #expect(
            run.errors == "error: Conflict: \(ControlFixture.conflictDetail)\n"
                + "hint: add --force to remove them anyway\n")
        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "PUT /v1/pfs/0000:01:00.0 HTTP/1.1")
        #expect(body == #"{"numVFs":0}"#)
    }

    @Test func pfWithOnlyAnAddressStillShowsThePF() async throws {
        let daemon = try FakeDaemon(.text(Fixture.response(body: ControlFixture.pfDetailJSON)))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "pf", "0000:01:00.0"])
        #expect(run.status == 0)
        #expect(daemon.requests.first?.hasPrefix("GET /v1/pfs/0000:01:00.0 HTTP/1.1\r\n") == true)
        #expect(run.output.hasPrefix("PCI address  0000:01:00.0\n"))
    }

    @Test func driverBindsAndShowsTheVF() async throws {
        let daemon = try FakeDaemon(.text(Fixture.response(body: ControlFixture.vfJSON)))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "vf", "driver", "0000:01:10.0", "host"])
        #expect(run.status == 0)
        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "POST /v1/vfs/0000:01:10.0/driver HTTP/1.1")
        #expect(body == #"{"driver":"host"}"#)
        #expect(run.output.hasPrefix("PF            VF  PCI"))
    }
}

struct SRIOVCtlRun {
    var status: Int32
    var output: String
    var errors: String
}

/// Runs the sriovctl built next to this test binary with `arguments`, stdin
/// from /dev/null, and waits for it to exit.
func runSRIOVCtl(_ arguments: [String]) async throws -> SRIOVCtlRun {
    let executable = try builtSRIOVCtl()
    let directory = try makeTemporaryDirectory()
    let outputPath = directory + "/stdout"
    let errorsPath = directory + "/stderr"
    defer {
        unlink(outputPath)
        unlink(errorsPath)
        rmdir(directory)
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errorsPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    guard spawned == 0 else { throw TestFailure("posix_spawn \(executable) failed: errno \(spawned)") }
    let child = pid
    let status = await runOnOwnThread { () -> Int32 in
        var status: Int32 = 0
        while waitpid(child, &status, 0) == -1 && errno == EINTR {}
        return status
    }
    // WIFEXITED / WEXITSTATUS, which Swift does not import.
    guard status & 0x7f == 0 else { throw TestFailure("sriovctl ended by signal \(status & 0x7f)") }
    return SRIOVCtlRun(
        status: (status >> 8) & 0xff, output: try contents(of: outputPath), errors: try contents(of: errorsPath))
}

/// The sriovctl executable in the directory of the running test binary.
private func builtSRIOVCtl() throws -> String {
    var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
    let count = buffer.withUnsafeMutableBufferPointer { storage in
        storage.withMemoryRebound(to: CChar.self) { readlink("/proc/self/exe", $0.baseAddress!, $0.count) }
    }
    guard count > 0 else { throw TestFailure("readlink /proc/self/exe failed: errno \(errno)") }
    let testBinary = String(decoding: buffer[..<count], as: UTF8.self)
    let path = String(testBinary[..<(testBinary.lastIndex(of: "/") ?? testBinary.startIndex)]) + "/sriovctl"
    guard access(path, X_OK) == 0 else {
        throw TestFailure("no sriovctl at \(path); build it with swift build --build-tests")
    }
    return path
}

private func contents(of path: String) throws -> String {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor != -1 else { throw TestFailure("open \(path) failed: errno \(errno)") }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count == -1 && errno == EINTR { continue }
        guard count > 0 else { break }
        bytes += chunk[..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
