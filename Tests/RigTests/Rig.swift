import Foundation
import Testing

/// The SR-IOV test VM (scripts/rig): a Debian kernel under QEMU with emulated
/// igb PFs, running a scenario from Scenarios/ against this checkout's build.
///
/// These tests need root, QEMU with -device igb, a kernel image and virtme-ng
/// (scripts/install-deps.sh installs them). Where those are missing the tests
/// are skipped and say why, unless the run requires them (SRIOVD_REQUIRE_RIG=1,
/// or CI=true): then they run and fail.
enum Rig {
    static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// SRIOVD_REQUIRE_RIG=1, or CI unless SRIOVD_REQUIRE_RIG=0 (the rule of
    /// TestRequirement in SRIOVDaemonTests).
    static var isRequired: Bool {
        let environment = ProcessInfo.processInfo.environment
        if let rig = environment["SRIOVD_REQUIRE_RIG"], rig == "0" || rig == "1" { return rig == "1" }
        return ["true", "1"].contains(environment["CI"]?.lowercased() ?? "")
    }

    /// Why the rig cannot run here, or nil when it can.
    static var unavailableReason: String? {
        if getuid() != 0 { return "the rig needs root" }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + [pipScripts, "/usr/local/bin"].compactMap { $0 }
        func has(_ tool: String) -> Bool { dirs.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") } }
        if !has("qemu-system-x86_64") { return "qemu-system-x86_64 is not installed (scripts/install-deps.sh)" }
        if !has("vng") { return "virtme-ng (vng) is not installed (scripts/install-deps.sh)" }
        let boot = (try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []
        if !boot.contains(where: { $0.hasPrefix("vmlinuz-") }) { return "no kernel image in /boot (scripts/install-deps.sh)" }
        let bin = binDirectory.appendingPathComponent("sriovd").path
        if !FileManager.default.isExecutableFile(atPath: bin) { return "sriovd is not built at \(bin) (swift build)" }
        return nil
    }

    /// Where pip puts Python's scripts (virtme-ng's `vng`), as Python says.
    static let pipScripts: String? = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sysconfig; print(sysconfig.get_path('scripts'))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return process.terminationStatus == 0 && !text.isEmpty ? text : nil
    }()

    /// Why one scenario of a batch failed (its exit-code and the end of
    /// its log), or nil when it passed.
    static func scenarioFailure(_ name: String, in out: URL) -> String? {
        let code = (try? out.file("exit-code"))?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard code != "0" else { return nil }
        let log = (try? out.file("scenario.log")) ?? ""
        return """
            rig scenario \(name) \(code.map { "failed (exit \($0))" } ?? "never finished (no exit-code)"); results in \(out.path)
            --- scenario.log ---
            \(log.suffix(6000))
            """
    }

    /// Run the tests when the rig is here, or when it must be (CI).
    static var shouldRun: Bool { unavailableReason == nil || isRequired }

    /// The sriovd and sriovctl the scenarios run: SRIOVD_BIN_DIR (scripts/test.sh
    /// points it at the release build the package is made of), else the
    /// debug build.
    static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["SRIOVD_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        return testsDirectory
    }

    /// The debug build, with the test binary (the contract scenario runs it).
    static var testsDirectory: URL { repoRoot.appendingPathComponent(".build/debug") }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Boots the VM with `pfs` igb PFs, runs `scenario` (a file in Scenarios/)
    /// and returns the folder its results were written to. With `batch`,
    /// the scenarios named there run after it in the same boot (run.sh
    /// --batch), each with its results in a subfolder named after it; the
    /// caller checks each one's exit-code (`Rig.scenarioFailure`).
    static func run(scenario: String, pfs: Int, wire: Bool = false, timeout: Int = 900, batch: [String] = []) throws -> URL {
        if let reason = unavailableReason { throw Failure(description: "SR-IOV test VM unavailable: \(reason)") }
        let out = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("sriovd-rig-\(scenario)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.currentDirectoryURL = repoRoot
        let scripts = ([scenario] + batch).map { "Tests/RigTests/Scenarios/\($0).sh" }
        process.arguments = [
            "scripts/rig/run.sh", "--pfs", String(pfs), "--timeout", String(timeout), "--out", out.path,
        ] + (wire ? ["--wire"] : []) + (batch.isEmpty ? [] : ["--batch"]) + scripts
        var env = ProcessInfo.processInfo.environment
        env["SRIOVD_BIN_DIR"] = binDirectory.path
        env["SRIOVD_TESTS_DIR"] = testsDirectory.path
        process.environment = env
        let log = out.appendingPathComponent("run.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        // A batch's own status counts its failed scenarios: each is judged on
        // its own results (`scenarioFailure`); only a VM that did not run
        // them (status 2 or 3 with no exit-code) fails them all here.
        let batchRan = !batch.isEmpty && FileManager.default.fileExists(atPath: out.appendingPathComponent("exit-code").path)
        guard process.terminationStatus == 0 || batchRan else {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            let scenarioLog = (try? String(contentsOf: out.appendingPathComponent("scenario.log"), encoding: .utf8)) ?? ""
            throw Failure(description: """
                rig scenario \(scenario) failed (exit \(process.terminationStatus)); results in \(out.path)
                --- run.sh ---
                \(text.suffix(4000))
                --- scenario.log ---
                \(scenarioLog.suffix(6000))
                """)
        }
        return out
    }
}

/// One VM boot shared by every test of a suite: the first caller runs the
/// scenario, the rest wait for its result. A scenario that is part of a
/// `RigBatch` shares its boot with the batch's other scenarios.
actor RigScenario {
    let name: String
    let pfs: Int
    /// All PFs on one QEMU hub, like NICs on one switch.
    let wire: Bool
    /// The most the scenario may take (run.sh stops the VM then).
    let timeout: Int
    let batch: RigBatch?
    private var result: Task<URL, any Error>?

    init(name: String, pfs: Int, wire: Bool = false, timeout: Int = 900) {
        self.name = name
        self.pfs = pfs
        self.wire = wire
        self.timeout = timeout
        self.batch = nil
    }

    init(name: String, batch: RigBatch) {
        precondition(batch.scenarios.contains(name), "\(name) is not in the batch")
        self.name = name
        self.pfs = batch.pfs
        self.wire = batch.wire
        self.timeout = batch.timeout
        self.batch = batch
    }

    func output() async throws -> URL {
        if let result { return try await result.value }
        let (name, pfs, wire, timeout, batch) = (self.name, self.pfs, self.wire, self.timeout, self.batch)
        let task = Task.detached {
            if let batch {
                let out = try await batch.output().appendingPathComponent(name)
                if let failure = Rig.scenarioFailure(name, in: out) { throw Rig.Failure(description: failure) }
                return out
            }
            return try await RigQueue.shared.run { try Rig.run(scenario: name, pfs: pfs, wire: wire, timeout: timeout) }
        }
        result = task
        return try await task.value
    }

    /// The scenario's `results.txt` (KEY=value lines) as a dictionary.
    func keyValues(_ file: String = "results.txt") async throws -> (URL, [String: String]) {
        let out = try await output()
        var d: [String: String] = [:]
        for line in try out.file(file).split(separator: "\n") {
            let p = line.split(separator: "=", maxSplits: 1).map(String.init)
            if p.count == 2 { d[p[0]] = p[1] }
        }
        return (out, d)
    }
}

/// Scenarios that need no fresh kernel state, run one after the other in one
/// boot (run.sh --batch; the guest is reset between them): the first suite
/// that asks for any of them runs them all.
actor RigBatch {
    nonisolated let scenarios: [String]
    nonisolated let pfs: Int
    nonisolated let wire: Bool
    /// The most the whole batch may take.
    nonisolated let timeout: Int
    private var result: Task<URL, any Error>?

    init(_ scenarios: [String], pfs: Int, wire: Bool = false, timeout: Int) {
        self.scenarios = scenarios
        self.pfs = pfs
        self.wire = wire
        self.timeout = timeout
    }

    func output() async throws -> URL {
        if let result { return try await result.value }
        let (scenarios, pfs, wire, timeout) = (self.scenarios, self.pfs, self.wire, self.timeout)
        let task = Task.detached {
            try await RigQueue.shared.run {
                try Rig.run(scenario: scenarios[0], pfs: pfs, wire: wire, timeout: timeout, batch: Array(scenarios.dropFirst()))
            }
        }
        result = task
        return try await task.value
    }
}

extension RigBatch {
    /// The one-PF scenarios, in one boot. The driver reload (watch) comes
    /// last but for nothing: the PFs are bound to igb again before each
    /// scenario anyway.
    static let onePF = RigBatch(
        ["programming", "reconcile", "assignments", "contract", "qmp-vfio", "watch"], pfs: 1, timeout: 3000)
    /// The scenarios that start systemd in the VM: the Debian package
    /// (installed, upgraded, purged in the VM's own layers) first, so that
    /// its groups and folders are its own making, then the shipped units.
    static let systemd = RigBatch(["package", "systemd"], pfs: 1, timeout: 1500)
}

/// One VM at a time: suites run in parallel, but two TCG guests on two
/// cores would slow each other past the scenarios' time bounds.
actor RigQueue {
    static let shared = RigQueue()
    private var tail: Task<Void, Never>?

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let previous = tail
        let task = Task<Result<T, any Error>, Never> {
            await previous?.value
            return Result { try body() }
        }
        tail = Task { _ = await task.value }
        return try await task.value.get()
    }
}

extension URL {
    func file(_ name: String) throws -> String {
        try String(contentsOf: appendingPathComponent(name), encoding: .utf8)
    }

    func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: appendingPathComponent(name)))
    }

    /// The HTTP status of the scenario's `api NAME ...` call (nil: no answer).
    func status(_ name: String) throws -> Int? {
        Int(try file("\(name).status").trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The JSON object that call answered with ([:] when not an object).
    func body(_ name: String) throws -> [String: Any] {
        (try json("\(name).json") as? [String: Any]) ?? [:]
    }
}
