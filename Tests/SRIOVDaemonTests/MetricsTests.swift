import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import SRIOVAPI
import SRIOVClient
import SRIOVCore
import SRIOVHostTesting
import Synchronization
import SRIOVRouterTesting
import Testing
@testable import SRIOVDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's parts recording into one Prometheus registry, as in sriovd
/// (where the factory is bootstrapped globally), and its API router.
struct MetricsTestApp {
    let host = FakeHost.threeVFs()
    let registry = PrometheusCollectorRegistry()
    let store: StateStore
    let bus: EventBus
    let assignments: AssignmentService
    let exposition: MetricsExposition
    let router: Router<SRIOVRequestContext>

    init() throws {
        let store = try StateStore(directory: NSTemporaryDirectory() + "sriovd-metrics-\(UUID().uuidString)")
        let host = self.host
        let logger = Logger(label: "test")
        let (bus, assignments) = withMetricsFactory(MetricsExposition.factory(registry)) {
            let bus = EventBus(recorders: [EventCounts().record])
            let controller = VFController(
                host: host, store: store, logger: logger, verifyAttempts: 3, verifyInterval: .milliseconds(1), events: bus)
            let config = SRIOVConfiguration(pfs: [.init(match: .pciAddress(host.pf), pools: [.init(name: "physnet1")])])
            let assignments = AssignmentService(
                controller: controller, store: store, inventory: host, configuration: { config }, logger: logger)
            return (bus, assignments)
        }
        self.store = store
        self.bus = bus
        self.assignments = assignments
        self.exposition = MetricsExposition(registry: registry, inventory: host, store: store, events: bus, logger: logger)
        self.router = makeRouter(inventory: host, assignments: assignments, metrics: exposition)
    }

    /// Each sample line of the text, `name{labels} value`, as name{labels} -> value.
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}

@Suite("Metrics")
struct MetricsTests {
    let pf = "0000:01:00.0"

    func scrape(_ client: any TestClientProtocol) async throws -> (contentType: String?, text: String) {
        try await client.execute(uri: "/metrics", method: .get) { response in
            #expect(response.status == .ok)
            return (response.headers[.contentType], String(buffer: response.body))
        }
    }

    @Test("after an assignment, /metrics has it by state, its VF by state and driver, and the operation's histogram")
    func assignmentShows() async throws {
        let app = try MetricsTestApp()
        try await Application(router: app.router).test(.router) { client in
            let before = MetricsTestApp.samples(try await scrape(client).text)
            #expect(before[#"sriovd_assignments{state="assigned"}"#] == 0, "listed, as 0, before any")
            #expect(before[#"sriovd_vfs{state="free",driver="none"}"#] == 3, "VFs with no driver (autoprobe off)")
            #expect(before[#"sriovd_pfs{state="present",driver="igb"}"#] == 1)

            let body = #"{"vm":"vm-web","nic":"net0","pf":"\#(pf)","driver":"vfio-pci","vlan":100}"#
            try await client.execute(
                uri: "/v1/assignments", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: body)
            ) { #expect($0.status == .created) }

            let (contentType, text) = try await scrape(client)
            #expect(contentType == "text/plain; version=0.0.4; charset=utf-8")
            let after = MetricsTestApp.samples(text)
            #expect(after[#"sriovd_assignments{state="assigned"}"#] == 1)
            #expect(after[#"sriovd_vfs{state="assigned",driver="vfio-pci"}"#] == 1)
            #expect(after[#"sriovd_vfs{state="free",driver="none"}"#] == 2)
            let operation = #"operation="assignment.create",result="success""#
            #expect(after["sriovd_operation_duration_seconds_count{\(operation)}"] == 1)
            #expect(after[#"sriovd_operation_duration_seconds_bucket{\#(operation),le="+Inf"}"#] == 1)
            #expect((after["sriovd_operation_duration_seconds_sum{\(operation)}"] ?? 0) > 0)
            #expect(after[#"sriovd_operation_duration_seconds_count{operation="vf.bind",result="success"}"#] == 1)
            #expect(text.contains("# TYPE sriovd_operation_duration_seconds histogram"))
            #expect(text.contains("# TYPE sriovd_vfs gauge"))
            #expect(after[#"sriovd_events_total{type="assignment.created"}"#] == 1)
            #expect(after[#"sriovd_events_total{type="vf.bound"}"#] == 1)
            #expect(after[#"sriovd_events_total{type="vf.configured"}"#] == 1)

            // Released: the series of the assigned VF goes; the gauge reads 0.
            try await client.execute(uri: "/v1/assignments/vm-web/net0", method: .delete) { #expect($0.status == .ok) }
            let released = MetricsTestApp.samples(try await scrape(client).text)
            #expect(released[#"sriovd_assignments{state="assigned"}"#] == 0)
            #expect(released[#"sriovd_vfs{state="assigned",driver="vfio-pci"}"#] == nil)
            #expect(released[#"sriovd_operation_duration_seconds_count{operation="assignment.release",result="success"}"#] == 1)
        }
    }

    @Test("a refused request is an operation with result rejected; events dropped are counted")
    func rejectedAndDropped() async throws {
        let app = try MetricsTestApp()
        let slow = app.bus.subscribe(buffering: 1)
        app.bus.publish(.daemonStopping)
        app.bus.publish(.daemonStopping)
        try await Application(router: app.router).test(.router) { client in
            try await client.execute(uri: "/v1/assignments/vm-x/net0", method: .delete) { #expect($0.status == .notFound) }
            let samples = MetricsTestApp.samples(try await scrape(client).text)
            #expect(samples[#"sriovd_operation_duration_seconds_count{operation="assignment.release",result="rejected"}"#] == 1)
            #expect(samples["sriovd_events_dropped_total"] == 1)
            #expect(samples["sriovd_event_stream_readers"] == 1, "the slow subscription")
            #expect(samples["sriovd_inventory_readable"] == 1)
        }
        slow.cancel()
    }

    @Test("a PF that is gone is listed as gone, with the driver it had")
    func gonePF() async throws {
        let app = try MetricsTestApp()
        let inventory = RecordingInventory(app.host, store: app.store, logger: Logger(label: "t"))
        _ = try await inventory.physicalFunctions()  // seen
        let pf = app.host.pf
        app.host.state.withLock { _ = $0.pfs.removeValue(forKey: pf) }
        _ = try await inventory.physicalFunctions()  // gone
        let samples = MetricsTestApp.samples(String(decoding: await app.exposition.scrape(), as: UTF8.self))
        #expect(samples[#"sriovd_pfs{state="gone",driver="igb"}"#] == 1)
        #expect(samples[#"sriovd_pfs{state="present",driver="igb"}"#] == nil)
    }

    @Test("the metrics listener serves /metrics alone over TCP; any other path is a 404")
    func tcpListener() async throws {
        let app = try MetricsTestApp()
        let port = Mutex<Int?>(nil)
        let listener = MetricsListener(
            address: MetricsListenAddress(host: "127.0.0.1", port: 0), exposition: app.exposition,
            logger: Logger(label: "test"), onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } })
        let task = Task { try await listener.run() }
        defer { task.cancel() }
        var bound: Int?
        for _ in 0..<500 where bound == nil {
            bound = port.withLock { $0 }
            if bound == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let tcpPort = try #require(bound)

        let metrics = try await httpGet(port: tcpPort, path: "/metrics")
        #expect(metrics.hasPrefix("HTTP/1.1 200"), "\(metrics.prefix(200))")
        #expect(metrics.lowercased().contains("content-type: text/plain; version=0.0.4"))
        #expect(metrics.contains("sriovd_assignments{state=\"assigned\"} 0"))
        for path in ["/v1/health", "/v1/pfs", "/v1/events", "/", "/metrics/x"] {
            let other = try await httpGet(port: tcpPort, path: path)
            #expect(other.hasPrefix("HTTP/1.1 404"), "\(path): \(other.prefix(200))")
        }
    }

    @Test("the listen address: IPv4 or bracketed IPv6 and a port; anything else is refused naming the key")
    func listenAddress() throws {
        #expect(try MetricsListenAddress.parse("127.0.0.1:9477", field: "f") == MetricsListenAddress(host: "127.0.0.1", port: 9477))
        #expect(try MetricsListenAddress.parse("[::1]:9477", field: "f") == MetricsListenAddress(host: "::1", port: 9477))
        #expect(try MetricsListenAddress.parse("[::1]:9477", field: "f").description == "[::1]:9477")
        for bad in ["127.0.0.1", "localhost:9477", "127.0.0.1:0x10", "127.0.0.1:70000", "256.0.0.1:1", "::1:9477", "[::1:9477", ":9477", "[zz::1]:80"] {
            #expect(throws: ValidationError.self, "\(bad)") { try MetricsListenAddress.parse(bad, field: "metrics.listen") }
        }
    }

    @Test("metrics.listen in the configuration: off by default, read when set, a bad value names the key and line")
    func configuration() throws {
        #expect(SRIOVConfiguration.defaults.metrics.listen == nil)
        let set = try SRIOVConfiguration.parse("[metrics]\nlisten = \"127.0.0.1:9477\"\n", fileName: "x")
        #expect(set.metrics.listen == MetricsListenAddress(host: "127.0.0.1", port: 9477))
        #expect(try SRIOVConfiguration.parse("[metrics]\nlisten = \"\"\n", fileName: "x").metrics.listen == nil)

        func errors(_ text: String) -> [ConfigurationError] {
            do {
                _ = try SRIOVConfiguration.parse(text, fileName: "sriovd.toml")
                return []
            } catch { return error.errors }
        }
        let bad = errors("[daemon]\nlog_level = \"info\"\n[metrics]\nlisten = \"localhost:9477\"\n")
        #expect(bad.count == 1)
        #expect(bad.first?.key == "metrics.listen" && bad.first?.line == 4, "\(bad)")
        #expect(bad.first?.message.contains("\"localhost:9477\" is not a listen address") == true, "\(bad)")
        let number = errors("[metrics]\nlisten = 9477\n")
        #expect(number.first?.key == "metrics.listen", "\(number)")
        let unknown = errors("[metrics]\nport = 9477\n")
        #expect(unknown.first?.key == "metrics.port", "\(unknown)")
        let misplaced = errors("listen = \"127.0.0.1:9477\"\n")
        #expect(misplaced.first?.message.contains("belongs under the [metrics] header") == true, "\(misplaced)")
    }
}

/// One HTTP/1.1 GET to 127.0.0.1:`port` on a plain socket; the whole
/// answer as text. On a thread of its own: the server under test needs the
/// concurrency pool's.
func httpGet(port: Int, path: String) async throws -> String {
    try await offPool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestError("connect: \(errno)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            answer += buffer[..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite("Events and metrics under a burst of requests")
struct BurstTests {
    @Test("200 concurrent VF changes over the socket: a reader sees each one once, in seq order; scrapes during and after count them")
    func burst() async throws {
        let host = FakeHost.threeVFs()
        let registry = PrometheusCollectorRegistry()
        let dir = NSTemporaryDirectory() + "sriovd-burst-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore(directory: dir + "/state")
        let logger = Logger(label: "test")
        let history = EventHistory()
        let (bus, controller) = withMetricsFactory(MetricsExposition.factory(registry)) {
            let bus = EventBus(recorders: [history.record])
            return (
                bus,
                VFController(
                    host: host, store: store, logger: logger, verifyAttempts: 3, verifyInterval: .milliseconds(1), events: bus)
            )
        }
        let exposition = MetricsExposition(registry: registry, inventory: host, store: store, logger: logger)
        let router = makeRouter(
            inventory: host, controller: controller, events: EventStream(bus: bus, history: history), metrics: exposition)
        let socket = dir + "/api.sock"
        let requests = 200
        try await EventStreamTests.serving(router, on: socket) {
            let client = SRIOVClient(socketPath: socket, timeout: .seconds(60))
            let reader = Task { () throws(ClientError) -> [EventLine] in
                try await client.withStreamingResponse(.init(method: .get, path: "/v1/events?type=vf.")) {
                    response throws(ClientError) in
                    var lines: [EventLine] = []
                    for try await text in response.lines {
                        guard let line = try? APIJSON.decoder().decode(EventLine.self, from: Data(text.utf8)) else {
                            throw .malformedResponse(text)
                        }
                        lines.append(line)
                        if lines.filter(\.isEvent).count == requests || line.type == EventLine.overflow { break }
                    }
                    return lines
                }
            }
            while bus.subscriberCount == 0 { try await Task.sleep(for: .milliseconds(5)) }

            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 0..<requests {
                    group.addTask {
                        let body = Array(#"{"vlan":\#(n % 4000 + 1)}"#.utf8)
                        return try await client.request(method: .patch, path: "/v1/vfs/\(host.address(n % 3))", body: body).status
                    }
                    if n % 10 == 0 {
                        group.addTask {
                            let scrape = try await client.request(method: .get, path: "/metrics", body: nil)
                            let text = String(decoding: scrape.body, as: UTF8.self)
                            return scrape.status == 200 && text.contains("sriovd_vfs{") ? 0 : -1
                        }
                    }
                }
                return try await group.reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(statuses == [200: requests, 0: requests / 10], "PATCH answers, and scrapes (0: good)")

            let lines = try await reader.value
            let events = lines.filter(\.isEvent)
            #expect(!lines.contains { $0.type == EventLine.overflow })
            #expect(events.count == requests && events.allSatisfy { $0.type == "vf.configured" })
            #expect(zip(events, events.dropFirst()).allSatisfy { $0.seq < $1.seq }, "in seq order, none twice")
            #expect(bus.dropped == 0)

            let samples = MetricsTestApp.samples(String(decoding: await exposition.scrape(), as: UTF8.self))
            #expect(samples[#"sriovd_operation_duration_seconds_count{operation="vf.configure",result="success"}"#] == Double(requests))
            #expect(samples[#"sriovd_vfs{state="configured",driver="none"}"#] == 3)
        }
    }
}
