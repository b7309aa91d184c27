import Foundation
import Logging
import Prometheus
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import Synchronization
import Testing
@testable import SRIOVDaemon

#if canImport(Glibc)
import Glibc
#endif

/// scripts/metrics-conventions.py: a text exposition parsed whole by
/// prometheus_client's parser and checked against the naming conventions.
enum MetricsConventions {
    struct Verdict: Decodable {
        var problems: [String]
        var families: [String: Family]
    }

    struct Family: Decodable {
        var type: String
        var help: String
        var samples: [Sample]
    }

    /// `[name, labels, value]` as the script writes it; a value that is not
    /// finite ("inf", "nan") reads as nil.
    struct Sample: Decodable {
        var name: String
        var labels: [String: String]
        var value: Double?

        init(from decoder: any Decoder) throws {
            var fields = try decoder.unkeyedContainer()
            name = try fields.decode(String.self)
            labels = try fields.decode([String: String].self)
            value = try? fields.decode(Double.self)
        }
    }

    static let python = OpenAPIConformanceTests.python(with: ["prometheus_client"])
    static var unavailable: String? {
        python == nil ? "no python3 with prometheus_client (scripts/install-deps.sh installs it)" : nil
    }

    /// The script over `text`: its exit status, its verdict (nil when it
    /// wrote none) and its whole output.
    static func check(_ text: String) throws -> (status: Int32, verdict: Verdict?, output: String) {
        let python = try #require(python, "\(unavailable ?? "")")
        let file = NSTemporaryDirectory() + "sriovd-metrics-\(UUID().uuidString).txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try OpenAPIConformanceTests.run(python, ["scripts/metrics-conventions.py", file])
        let json = result.output.split(separator: "\n").last { $0.hasPrefix("{") }
        let verdict = json.flatMap { try? JSONDecoder().decode(Verdict.self, from: Data($0.utf8)) }
        return (result.status, verdict, result.output)
    }

    /// Serves `exposition` on the metrics listener (127.0.0.1, a free port)
    /// and returns the body of one `GET /metrics` over TCP.
    static func scrapeOverTCP(_ exposition: MetricsExposition) async throws -> String {
        let port = Mutex<Int?>(nil)
        let listener = MetricsListener(
            address: MetricsListenAddress(host: "127.0.0.1", port: 0), exposition: exposition,
            logger: Logger(label: "test"), onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } })
        let task = Task { try await listener.run() }
        defer { task.cancel() }
        let bound = try await waitForPort { port.withLock { $0 } }
        return try body(of: try await httpGet(port: bound, path: "/metrics"))
    }

    static func waitForPort(_ read: () -> Int?) async throws -> Int {
        for _ in 0..<1000 {
            if let port = read() { return port }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestError("the listener never bound a port")
    }

    /// The body of an HTTP/1.1 answer whose status is 200.
    static func body(of answer: String) throws -> String {
        try #require(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(300))")
        let parts = answer.components(separatedBy: "\r\n\r\n")
        return parts.dropFirst().joined(separator: "\r\n\r\n")
    }

    /// Every family sriovd exposes when each has something to show.
    static var allFamilies: Set<String> {
        Set(MetricsExposition.familyHelp.keys).union(ProcessMetrics.help.keys).union([
            "sriovd_pfs", "sriovd_vfs", "sriovd_assignments", "sriovd_inventory_readable", "sriovd_event_stream_readers",
        ])
    }

    /// The value of the one sample named `name`.
    static func value(_ verdict: Verdict, _ name: String) -> Double? {
        verdict.families[name]?.samples.first { $0.name == name }?.value
    }
}

@Suite("/metrics by the Prometheus conventions", .serialized)
struct MetricsConventionTests {
    @Test(
        "the whole /metrics answer, every family recorded, passes prometheus_client's parser and the naming conventions",
        .needing(MetricsConventions.unavailable))
    func everyFamilyIsConventional() async throws {
        try TestRequirement.check(MetricsConventions.unavailable)
        let app = try MetricsTestApp()
        // Something in every family: an assignment (operations, host calls,
        // events), a drift, a heal, a failed heal, a migration step, an
        // event dropped for a slow reader.
        let outcome = try await app.assignments.assign(
            AssignmentRequest(vm: "vm-web", nic: "net0", pf: app.host.pf, driver: .vfio))
        guard case .created(let assignment) = outcome else { throw TestError("not created: \(outcome)") }
        let slow = app.bus.subscribe(buffering: 1)
        defer { slow.cancel() }
        app.bus.publish(.vfDrift(VFDrift(
            setting: .vlan, expected: "vlan 1", found: "vlan 2", source: .assignment, action: .corrected, detail: nil,
            trigger: "event")))
        app.bus.publish(.assignmentHealed(assignment, HealReport(attempt: 1, steps: [("numvfs", 12)], sinceLossMs: 90)))
        app.bus.publish(.assignmentFailed(assignment, attempts: 5))
        app.bus.publish(.migrationStep(MigrationStep(
            operation: "prepare", nic: "net0", step: "steer", startedAt: Date(), offsetMs: 1, durationMs: 20, result: "ok",
            lever: "bond")))

        let text = try await MetricsConventions.scrapeOverTCP(app.exposition)
        let (status, verdict, output) = try MetricsConventions.check(text)
        let checked = try #require(verdict, "no verdict (exit \(status)): \(output)\n--- /metrics ---\n\(text)")
        #expect(checked.problems.isEmpty, "\(checked.problems.joined(separator: "\n"))\n--- /metrics ---\n\(text)")
        #expect(status == 0)
        let missing = MetricsConventions.allFamilies.subtracting(checked.families.keys)
        #expect(missing.isEmpty, "families not in /metrics: \(missing.sorted())\n\(text)")
        #expect(checked.families["sriovd_events_dropped_total"]?.type == "counter")
        #expect(checked.families["process_cpu_seconds_total"]?.type == "counter")
        #expect(checked.families["sriovd_operation_duration_seconds"]?.type == "histogram")
    }

    @Test(
        "sriovd_build_info carries the version; the process families describe this process",
        .needing(MetricsConventions.unavailable))
    func buildInfoAndProcess() async throws {
        try TestRequirement.check(MetricsConventions.unavailable)
        let app = try MetricsTestApp()
        let before = Date().timeIntervalSince1970
        let text = String(decoding: await app.exposition.scrape(), as: UTF8.self)
        let verdict = try #require(MetricsConventions.check(text).verdict)
        let info = try #require(verdict.families["sriovd_build_info"]?.samples.first)
        #expect(info.labels == ["version": sriovdVersion] && info.value == 1, "\(info)")

        let resident = try #require(MetricsConventions.value(verdict, "process_resident_memory_bytes"))
        let virtual = try #require(MetricsConventions.value(verdict, "process_virtual_memory_bytes"))
        #expect(resident > 1_000_000 && virtual > resident, "resident \(resident), virtual \(virtual)")
        let open = try #require(MetricsConventions.value(verdict, "process_open_fds"))
        let max = try #require(MetricsConventions.value(verdict, "process_max_fds"))
        #expect(open >= 3 && max >= open, "open \(open), max \(max)")
        let start = try #require(MetricsConventions.value(verdict, "process_start_time_seconds"))
        #expect(start <= before + 1 && start > before - 86_400, "this test process started at \(start), now \(before)")
        let cpu = try #require(MetricsConventions.value(verdict, "process_cpu_seconds_total"))
        #expect(cpu > 0)

        // The counter follows the process's CPU time: spend 0.2 s of it
        // (clock(3), whatever else runs on the machine), scrape again.
        var spin = 0.0
        let cpuStart = clock()
        let giveUp = Date().addingTimeInterval(20)
        while Double(clock() - cpuStart) / Double(CLOCKS_PER_SEC) < 0.2 && Date() < giveUp { spin += sin(spin) + 1 }
        let again = try #require(MetricsConventions.check(String(decoding: await app.exposition.scrape(), as: UTF8.self)).verdict)
        let cpuAfter = try #require(MetricsConventions.value(again, "process_cpu_seconds_total"))
        #expect(cpuAfter >= cpu + 0.15, "before \(cpu), after \(cpuAfter) (spun \(spin))")
    }

    @Test(
        "VF traffic is in counters named _total; a kernel counter that goes back (a VF made anew) starts its series again",
        .needing(MetricsConventions.unavailable))
    func trafficCounters() async throws {
        try TestRequirement.check(MetricsConventions.unavailable)
        let app = try MetricsTestApp()
        let kernel = Mutex<UInt64>(1000)
        let exposition = MetricsExposition(
            registry: PrometheusCollectorRegistry(), inventory: app.host, store: app.store, logger: Logger(label: "test"),
            counters: { _ in
                var counters = VFTrafficCounters()
                counters.rxBytes = kernel.withLock { $0 }
                counters.txPackets = 7
                return [0: counters]
            })
        func rxBytes() async throws -> (Double?, MetricsConventions.Verdict) {
            let text = String(decoding: await exposition.scrape(), as: UTF8.self)
            let (status, verdict, output) = try MetricsConventions.check(text)
            let checked = try #require(verdict, "\(output)")
            #expect(status == 0 && checked.problems.isEmpty, "\(checked.problems)\n\(text)")
            let family = checked.families["sriovd_vf_rx_bytes_total"]
            #expect(family?.type == "counter", "\(text)")
            let sample = family?.samples.first { $0.name == "sriovd_vf_rx_bytes_total" }
            #expect(sample?.labels == ["pf": app.host.pf.description, "vf": "0"], "\(text)")
            return (sample?.value, checked)
        }
        let (first, verdict) = try await rxBytes()
        #expect(first == 1000)
        #expect(verdict.families["sriovd_vf_tx_packets_total"]?.samples.first?.value == 7)
        #expect(verdict.families["sriovd_vf_stats_supported"]?.samples.first?.value == 1)
        kernel.withLock { $0 = 1500 }
        #expect(try await rxBytes().0 == 1500)
        kernel.withLock { $0 = 200 }
        #expect(try await rxBytes().0 == 200, "the kernel's counter went back: the series starts again from its value")
    }

    @Test("the check finds what breaks the conventions, and refuses text that does not parse", .needing(MetricsConventions.unavailable))
    func checkerFindsProblems() throws {
        try TestRequirement.check(MetricsConventions.unavailable)
        let bad = """
            # TYPE sriovd_things counter
            sriovd_things 1
            # HELP sriovd_open_total Open now
            # TYPE sriovd_open_total gauge
            sriovd_open_total 2
            # HELP sriovd_wait_milliseconds A wait
            # TYPE sriovd_wait_milliseconds histogram
            sriovd_wait_milliseconds_bucket{le="+Inf"} 1
            sriovd_wait_milliseconds_sum 3
            sriovd_wait_milliseconds_count 1
            # HELP sriovd_seconds_waited Waits
            # TYPE sriovd_seconds_waited gauge
            sriovd_seconds_waited 1
            # HELP sriovd_vfs VFs
            # TYPE sriovd_vfs gauge
            sriovd_vfs 1
            # HELP sriovd_vfs VFs
            # TYPE sriovd_vfs gauge
            sriovd_vfs 2

            """
        let (status, verdict, output) = try MetricsConventions.check(bad)
        #expect(status == 1, "\(output)")
        let problems = try #require(verdict?.problems, "\(output)")
        for expected in [
            "sriovd_things: no # HELP text", "sriovd_things: a counter whose name does not end in _total",
            "sriovd_open_total: a gauge whose name ends in _total (only counters do)",
            "sriovd_wait_milliseconds: 'milliseconds' is not a base unit (use seconds or bytes)",
            "sriovd_seconds_waited: the unit 'seconds' is not the suffix",
        ] {
            #expect(problems.contains(expected), "\(expected) not in \(problems)")
        }
        #expect(problems.contains { $0.hasPrefix("sriovd_vfs: a second # HELP line") }, "\(problems)")

        let (malformed, none, said) = try MetricsConventions.check("# TYPE x gauge\nx{le=\"1\" 1\n")
        #expect(malformed == 2 && none == nil, "\(said)")
    }

    @Test(
        "the sriovd binary's metrics listener: conventional, with its version and its own process",
        .needing(MetricsConventions.unavailable ?? DaemonMetrics.unavailable))
    func daemonProcess() async throws {
        try TestRequirement.check(MetricsConventions.unavailable ?? DaemonMetrics.unavailable)
        let dir = try Checkout.temporaryDirectory("sriovd-metrics-daemon")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/sys/bus/pci/devices", withIntermediateDirectories: true)
        let port = try DaemonMetrics.freePort()
        try "[metrics]\nlisten = \"127.0.0.1:\(port)\"\n".write(toFile: dir + "/sriovd.toml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Checkout.sriovd)
        process.arguments = [
            "--config", dir + "/sriovd.toml", "--socket", dir + "/api.sock", "--state-dir", dir + "/state",
            "--sysfs-root", dir + "/sys", "--log-target", "stderr",
        ]
        process.standardError = FileHandle.nullDevice
        let launched = Date().timeIntervalSince1970
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        var answer = ""
        for _ in 0..<300 where !answer.hasPrefix("HTTP/1.1 200") {
            answer = (try? await httpGet(port: port, path: "/metrics")) ?? ""
            if !answer.hasPrefix("HTTP/1.1 200") { try await Task.sleep(for: .milliseconds(50)) }
        }
        let text = try MetricsConventions.body(of: answer)
        let (status, verdict, output) = try MetricsConventions.check(text)
        let checked = try #require(verdict, "no verdict (exit \(status)): \(output)")
        #expect(checked.problems.isEmpty && status == 0, "\(checked.problems)\n\(text)")
        let info = try #require(checked.families["sriovd_build_info"]?.samples.first, "\(text)")
        #expect(info.labels == ["version": sriovdVersion] && info.value == 1)
        let start = try #require(MetricsConventions.value(checked, "process_start_time_seconds"))
        #expect(abs(start - launched) < 5, "sriovd started at \(start), launched at \(launched)")
        #expect((MetricsConventions.value(checked, "process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((MetricsConventions.value(checked, "process_open_fds") ?? 0) >= 3)
    }
}

enum DaemonMetrics {
    static var unavailable: String? {
        FileManager.default.isExecutableFile(atPath: Checkout.sriovd) ? nil : "sriovd is not built at \(Checkout.sriovd)"
    }

    /// A TCP port on 127.0.0.1 that nothing listens on now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestError("bind: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
