import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// scripts/rig/run.sh's exit status, with a stand-in for vng (`RIG_VNG`)
/// that writes what a guest would (guest-init.log, checks.txt, exit-code)
/// instead of booting a VM, and a stand-in qemu-system-x86_64 on PATH: the
/// script's own logic, in a second, on any machine.
@Suite("rig runner: exit status")
struct RigRunnerTests {
    /// run.sh with a guest whose scenario exits `exit` and whose checks.txt
    /// holds `checks` (no file when nil); its status and output.
    func run(exit: Int, checks: String?) throws -> (status: Int32, output: String) {
        let dir = try Checkout.temporaryDirectory("sriovd-rig-runner")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bin = dir + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let vng = """
            #!/bin/bash
            # Writes into the --rwdir folder what guest-init would.
            while [ "$#" -gt 0 ]; do [ "$1" = --rwdir ] && out="$2"; shift; done
            echo "guest-init: scenario ran" > "$out/guest-init.log"
            echo "scenario output" > "$out/scenario.log"
            [ -n "${FAKE_CHECKS+set}" ] && printf '%b' "$FAKE_CHECKS" > "$out/checks.txt"
            echo "$FAKE_EXIT" > "$out/exit-code"
            """
        for (name, text) in [("vng", vng), ("qemu-system-x86_64", "#!/bin/sh\nexit 0\n")] {
            try text.write(toFile: "\(bin)/\(name)", atomically: true, encoding: .utf8)
            chmod("\(bin)/\(name)", 0o755)
        }
        try "not a kernel".write(toFile: dir + "/vmlinuz-test", atomically: true, encoding: .utf8)

        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = bin + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["RIG_VNG"] = bin + "/vng"
        environment["RIG_KERNEL"] = dir + "/vmlinuz-test"
        environment["RIG_LOCK"] = dir + "/rig.lock"
        environment["FAKE_EXIT"] = String(exit)
        if let checks { environment["FAKE_CHECKS"] = checks } else { environment["FAKE_CHECKS"] = nil }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["scripts/rig/run.sh", "--timeout", "30", "--out", dir + "/out", "scripts/rig/selftest.sh"]
        process.currentDirectoryURL = Checkout.root
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("a scenario that exits 0 with every check passed passes")
    func passed() throws {
        let (status, output) = try run(exit: 0, checks: "PASS\\tVF count\\nPASS\\tMAC reads back\\n")
        #expect(status == 0, "\(output)")
        #expect(output.contains("scenario passed"), "\(output)")
    }

    @Test("a scenario that exits 0 without checks.txt passes")
    func noChecks() throws {
        let (status, output) = try run(exit: 0, checks: nil)
        #expect(status == 0, "\(output)")
    }

    @Test("a scenario that exits 0 while checks.txt records a failed check fails with 4, naming the check")
    func failedCheck() throws {
        let (status, output) = try run(exit: 0, checks: "PASS\\tVF count\\nFAIL\\tMAC reads back\\texit 1\\n")
        #expect(status == 4, "\(output)")
        #expect(output.contains("FAIL\tMAC reads back\texit 1"), "\(output)")
        #expect(!output.contains("scenario passed"), "\(output)")
    }

    @Test("a scenario that fails keeps its own exit status")
    func failedScenario() throws {
        let (status, output) = try run(exit: 1, checks: "FAIL\\tVF count\\texit 1\\n")
        #expect(status == 1, "\(output)")
        #expect(output.contains("FAIL\tVF count"), "\(output)")
    }
}
