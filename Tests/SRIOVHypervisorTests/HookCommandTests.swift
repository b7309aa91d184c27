import Foundation
import SRIOVCore
import Testing

@testable import SRIOVHypervisor

/// The hook adapter against real executables (shell scripts written here).
struct HookCommandTests {
    let folder: URL

    init() throws {
        folder = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("sriovd-hook-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func hook(_ name: String, _ body: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    let request = HookRequest(
        action: .steer, vm: "vm-web", nic: "net0",
        vf: .init(pci: "0000:01:10.2", pf: "0000:01:00.0", index: 1, mac: "52:54:00:de:ad:01", netdev: nil, vfioDevice: "/dev/vfio/15"),
        steerTo: "standby")

    @Test func theHookReadsOneRequestAndAnswersOneResult() async throws {
        let seen = folder.appendingPathComponent("request.json").path
        let path = try hook("ok", "cat > '\(seen)'\necho '{\"result\":\"done\",\"message\":\"bond switched\"}'")
        let result = try await HookCommand(path: path).run(request)
        #expect(result == HookResult(result: .done, message: "bond switched"))
        let sent = try JSONDecoder().decode(HookRequest.self, from: Data(contentsOf: URL(fileURLWithPath: seen)))
        #expect(sent == request)
        let text = try String(contentsOfFile: seen, encoding: .utf8)
        #expect(text.contains("\"action\":\"steer\""))
        #expect(text.contains("\"steerTo\":\"standby\""))
    }

    @Test func noLeverIsAnAnswerNotAFailure() async throws {
        let path = try hook("none", "cat >/dev/null; echo '{\"result\":\"unsupported\",\"message\":\"no bond in this guest\"}'")
        let result = try await HookCommand(path: path).run(request)
        #expect(result.result == .unsupported)
    }

    @Test func aNonZeroExitIsAFailureWithWhatItSaid() async throws {
        let path = try hook("fails", "cat >/dev/null; echo 'virsh: domain not found' >&2; exit 3")
        let error = await #expect(throws: HookError.self) { try await HookCommand(path: path).run(request) }
        #expect(error?.reason == "it exited with status 3")
        #expect(error?.stderr.contains("virsh: domain not found") == true)
        #expect(error?.description.contains("failed to steer") == true)
    }

    @Test func aHookPastItsDeadlineIsStopped() async throws {
        let path = try hook("slow", "sleep 30")
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: HookError.self) {
            try await HookCommand(path: path, deadline: .milliseconds(500)).run(request)
        }
        #expect(error?.reason.contains("did not finish within") == true)
        // SIGTERM ends sh at once; SIGKILL would follow two seconds later.
        #expect(clock.now - start < .seconds(10))
    }

    @Test func outputThatIsNotAResultIsRefused() async throws {
        let path = try hook("garbage", "cat >/dev/null; echo 'OK'")
        let error = await #expect(throws: HookError.self) { try await HookCommand(path: path).run(request) }
        #expect(error?.reason.contains("is not a result object") == true)
        let silent = try hook("silent", "cat >/dev/null")
        let none = await #expect(throws: HookError.self) { try await HookCommand(path: silent).run(request) }
        #expect(none?.reason.contains("printed no result") == true)
    }

    @Test func aHookPathIsCheckedBeforeUse() throws {
        let script = try hook("plain", "exit 0")
        #expect(throws: Never.self) { try HookCommand.validate(path: script, field: "failover.command") }
        let relative = #expect(throws: ValidationError.self) { try HookCommand.validate(path: "hook.sh", field: "failover.command") }
        #expect(relative?.field == "failover.command")
        let missing = #expect(throws: ValidationError.self) { try HookCommand.validate(path: folder.path + "/nope", field: "failover.command") }
        #expect(missing?.reason == "no such file")
        let data = folder.appendingPathComponent("data").path
        try "x".write(toFile: data, atomically: true, encoding: .utf8)
        let notExecutable = #expect(throws: ValidationError.self) { try HookCommand.validate(path: data, field: "failover.command") }
        #expect(notExecutable?.reason == "is not executable")
    }
}
