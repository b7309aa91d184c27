import SRIOVAPI
import SRIOVCore
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@testable import SRIOVClient

/// Event stream lines as sriovd writes them (`GET /v1/events`).
enum EventFixture {
    static let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"

    static func chunk(_ text: String) -> [UInt8] {
        Array("\(String(text.utf8.count, radix: 16))\r\n\(text)\r\n".utf8)
    }

    static let heartbeat = #"{"seq":3,"time":"2026-12-02T08:00:00Z","type":"heartbeat"}"#
    static let created =
        #"{"details":{"assignment":{"driver":"vfio-pci","state":"assigned","vm":"vm-web"}},"nic":"net0","pf":"0000:01:00.0","seq":4,"time":"2026-12-02T08:00:01Z","type":"assignment.created","vf":"0000:01:10.0","vfIndex":0,"vm":"vm-web"}"#
    static let configured =
        #"{"details":{"action":"configure","failed":false,"results":[{"outcome":"applied","setting":"vlan"},{"outcome":"unchanged","setting":"trust"}]},"pf":"0000:01:00.0","seq":5,"time":"2026-12-02T08:00:02Z","type":"vf.configured","vf":"0000:01:10.1","vfIndex":1}"#
    static let overflow =
        #"{"details":{"detail":"this reader fell too far behind and the stream ends here; follow again with ?since=5","dropped":9,"since":5},"seq":5,"time":"2026-12-02T08:00:03Z","type":"overflow"}"#
    static let numVFs =
        #"{"details":{"numVFs":4,"previous":0},"pf":"0000:01:00.0","seq":6,"time":"2026-12-02T08:00:04Z","type":"pf.numvfs"}"#

    /// A stream of `lines` that the daemon then ends (as at its shutdown).
    static func stream(_ lines: [String]) -> FakeDaemon.Reply {
        .pieces([Array(head.utf8)] + lines.map { chunk($0 + "\n") } + [Array("0\r\n\r\n".utf8)])
    }
}

@Suite("Event stream on the client")
struct EventsTests {
    func json(_ text: String) throws -> JSONValue {
        try APIJSON.decoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test("one line per event: time, seq, type, subject, a short detail; heartbeats are not shown")
    func humanLines() throws {
        #expect(
            EventText.line(try json(EventFixture.created))
                == "2026-12-02T08:00:01Z  #4  assignment.created  vm-web/net0 0000:01:10.0 (VF 0 of 0000:01:00.0)  driver vfio-pci, state assigned")
        #expect(
            EventText.line(try json(EventFixture.configured))
                == "2026-12-02T08:00:02Z  #5  vf.configured  0000:01:10.1 (VF 1 of 0000:01:00.0)  vlan=applied,trust=unchanged")
        #expect(EventText.line(try json(EventFixture.numVFs)) == "2026-12-02T08:00:04Z  #6  pf.numvfs  PF 0000:01:00.0  VFs 0 -> 4")
        #expect(EventText.line(try json(EventFixture.heartbeat)) == nil)
        #expect(
            EventText.line(try json(EventFixture.overflow))
                == "-- overflow: this reader fell too far behind and the stream ends here; follow again with ?since=5")
        // A type this sriovctl does not know: its plain details, key=value.
        let step = #"{"seq":9,"time":"t","type":"migration.step","vm":"vm1","details":{"step":"vf.detached","ms":12,"more":{}}}"#
        #expect(EventText.line(try json(step)) == "t  #9  migration.step  vm1  ms=12 step=vf.detached")
    }

    @Test("the query's path: since, each type, pf, vm")
    func queryPath() throws {
        #expect(SRIOVClient.EventQuery().path == "/v1/events")
        let query = SRIOVClient.EventQuery(
            since: 3, types: ["assignment.", "vf.bound"], pf: try PCIAddress.parse("0000:01:00.0", field: "pf"), vm: "vm-web")
        #expect(query.path == "/v1/events?since=3&type=assignment.&type=vf.bound&pf=0000:01:00.0&vm=vm-web")
    }

    @Test("sriovctl events sends the filters and prints each event as it comes")
    func followsAsText() async throws {
        let daemon = try FakeDaemon(EventFixture.stream([EventFixture.heartbeat, EventFixture.created, EventFixture.configured]))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl([
            "--socket", daemon.socketPath, "events", "--since", "3", "--type", "assignment.", "--type", "vf.",
            "--pf", "0000:01:00.0", "--vm", "vm-web",
        ])
        #expect(run.status == 0, "\(run.errors)")
        #expect(
            daemon.requests.first?.hasPrefix(
                "GET /v1/events?since=3&type=assignment.&type=vf.&pf=0000:01:00.0&vm=vm-web HTTP/1.1\r\n") == true,
            "\(daemon.requests)")
        let lines = run.output.split(separator: "\n")
        #expect(lines.count == 2, "\(run.output)")
        #expect(lines.first?.hasSuffix("assignment.created  vm-web/net0 0000:01:10.0 (VF 0 of 0000:01:00.0)  driver vfio-pci, state assigned") == true)
    }

    @Test("with --json each event is printed as received, one object per line")
    func followsAsJSON() async throws {
        let daemon = try FakeDaemon(EventFixture.stream([EventFixture.heartbeat, EventFixture.created]))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "events", "--json"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output == EventFixture.created + "\n")
        #expect(daemon.requests.first?.hasPrefix("GET /v1/events HTTP/1.1\r\n") == true)
    }

    @Test("cut off for being slow, sriovctl follows again from where the overflow line says")
    func resumesAfterOverflow() async throws {
        let daemon = try FakeDaemon(
            EventFixture.stream([EventFixture.configured, EventFixture.overflow]), EventFixture.stream([EventFixture.numVFs]))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "events", "--type", "pf."])
        #expect(run.status == 0, "\(run.errors)")
        #expect(daemon.requests.count == 2)
        #expect(daemon.requests.last?.hasPrefix("GET /v1/events?since=5&type=pf. HTTP/1.1\r\n") == true, "\(daemon.requests)")
        let lines = run.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(run.output)")
        #expect(lines[1].hasPrefix("-- overflow: "))
        #expect(lines[2].hasSuffix("pf.numvfs  PF 0000:01:00.0  VFs 0 -> 4"))
    }

    @Test("a bad --type or --vm exits 64 before anything is sent; the daemon's 400 exits 1 with its reason")
    func refusals() async throws {
        let problem = #"{"detail":"pf: \"0000:01:00\" is not a PCI address","field":"pf","status":400,"title":"Invalid"}"#
        let daemon = try FakeDaemon(
            .text(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\nContent-Length: \(problem.utf8.count)\r\n\r\n"
                    + problem))
        defer { daemon.stop() }
        let badType = try await runSRIOVCtl(["--socket", daemon.socketPath, "events", "--type", "Assignment"])
        #expect(badType.status == 64)
        #expect(badType.errors.contains("--type: \"Assignment\" is not an event type or prefix"), "\(badType.errors)")
        let badVM = try await runSRIOVCtl(["--socket", daemon.socketPath, "events", "--vm", "a/b"])
        #expect(badVM.status == 64)
        #expect(daemon.requests.isEmpty)

        let refused = try await runSRIOVCtl(["--socket", daemon.socketPath, "events", "--since", "1"])
        #expect(refused.status == 1)
        #expect(refused.errors.contains("is not a PCI address"), "\(refused.errors)")
    }
}
