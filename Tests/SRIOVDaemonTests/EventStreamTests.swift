import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SRIOVAPI
import SRIOVClient
import SRIOVCore
import SRIOVHostTesting
import Synchronization
import SRIOVRouterTesting
import Testing
@testable import SRIOVDaemon

/// The lines one reader of the event stream received.
final class ReceivedLines: Sendable {
    private let lines = Mutex<[EventLine]>([])
    var all: [EventLine] { lines.withLock { $0 } }
    var events: [EventLine] { all.filter(\.isEvent) }
    func append(_ line: EventLine) { lines.withLock { $0.append(line) } }

    /// Waits (up to 5 s) until `condition` holds for the lines so far.
    func wait(until condition: ([EventLine]) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition(all) {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out; lines so far: \(all.map { "\($0.type)#\($0.seq)" })")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

@Suite("Event history")
struct EventHistoryTests {
    func bus(_ history: EventHistory) -> EventBus { EventBus(recorders: [history.record]) }

    @Test("holds the last events in order; a reader is told what it missed only when the history no longer holds it")
    func ringAndReplay() {
        let history = EventHistory(capacity: 5)
        let bus = bus(history)
        for n in 1...12 { bus.publish(.pfNumVFs(count: n, previous: n - 1)) }
        #expect(history.count == 5)

        let all = history.events(after: 7)
        #expect(all.events.map(\.seq) == [8, 9, 10, 11, 12])
        #expect(!all.isIncomplete && all.oldest == 8 && all.newest == 12)

        #expect(history.events(after: 10).events.map(\.seq) == [11, 12])
        #expect(history.events(after: 12).events.isEmpty && !history.events(after: 12).isIncomplete)

        let old = history.events(after: 3)
        #expect(old.isIncomplete, "4-7 are gone")
        #expect(old.events.map(\.seq) == [8, 9, 10, 11, 12])

        let otherRun = history.events(after: 40)
        #expect(otherRun.isIncomplete, "seq 40 was never published in this run")
        #expect(otherRun.events.map(\.seq) == [8, 9, 10, 11, 12], "so everything held is news")
    }

    @Test("an empty history: since=0 is complete, anything else is from another run")
    func empty() {
        let history = EventHistory(capacity: 3)
        #expect(!history.events(after: 0).isIncomplete)
        #expect(history.events(after: 1).isIncomplete)
    }
}

@Suite("Event filters")
struct EventFilterTests {
    let pf = FakeHost.address("0000:01:00.0")
    let otherPF = FakeHost.address("0000:02:00.0")

    func event(_ change: StateChange, _ subject: EventSubject) -> StateEvent {
        let bus = EventBus()
        return bus.publish(change, subject)
    }

    @Test("type prefixes (any of them), PF and VM must all match")
    func matching() {
        let bound = event(.vfBound(driver: "vfio-pci", previous: nil), EventSubject(pf: pf, vm: "vm1"))
        let count = event(.pfNumVFs(count: 2, previous: 0), EventSubject(pf: otherPF))
        let started = event(.daemonStopping, EventSubject())

        #expect(EventFilter().matches(bound) && EventFilter().matches(started))
        #expect(EventFilter(typePrefixes: ["vf."]).matches(bound))
        #expect(!EventFilter(typePrefixes: ["vf."]).matches(count))
        #expect(EventFilter(typePrefixes: ["assignment.", "pf.num"]).matches(count))
        #expect(EventFilter(typePrefixes: ["vf.bound"]).matches(bound))
        #expect(EventFilter(pf: pf).matches(bound) && !EventFilter(pf: pf).matches(count))
        #expect(!EventFilter(pf: pf).matches(started), "an event of no PF is not one of this PF")
        #expect(EventFilter(vm: "vm1").matches(bound) && !EventFilter(vm: "vm2").matches(bound))
        #expect(!EventFilter(typePrefixes: ["vf."], vm: "vm2").matches(bound))
    }

    @Test("each kind the daemon publishes is a type the stream writes and a filter accepts")
    func kindsAreValidTypes() throws {
        for kind in StateChange.kinds {
            #expect(try EventLine.checkedTypePrefix(kind, field: "type") == kind)
        }
        for bad in ["", "Assignment.", "vf bound", "vf/bound", String(repeating: "a", count: 65)] {
            #expect(throws: ValidationError.self) { try EventLine.checkedTypePrefix(bad, field: "type") }
        }
    }
}

@Suite("Event stream")
struct EventStreamTests {
    let pf = FakeHost.address("0000:01:00.0")
    let otherPF = FakeHost.address("0000:02:00.0")

    func numVFs(_ n: Int) -> StateChange { .pfNumVFs(count: n, previous: n - 1) }

    /// A reader following `stream` in a task, its lines in `received`.
    func follow(
        _ stream: EventStream, since: UInt64? = nil, filter: EventFilter = EventFilter(), into received: ReceivedLines,
        write: @escaping @Sendable (EventLine) async throws -> Void = { _ in }
    ) -> Task<Void, any Error> {
        Task {
            try await stream.follow(since: since, filter: filter) { line in
                try await write(line)
                received.append(line)
            }
        }
    }

    @Test("a reader gets a heartbeat with where the stream is, then every event as it is published, as objects with seq, time, type, subject and details")
    func live() async throws {
        let bus = EventBus()
        let stream = EventStream(bus: bus, history: EventHistory())
        bus.publish(numVFs(1), EventSubject(pf: pf))  // before the reader: not sent
        let received = ReceivedLines()
        let reader = follow(stream, into: received)
        defer { reader.cancel() }
        try await received.wait { $0.count == 1 }
        #expect(received.all.map(\.type) == ["heartbeat"] && received.all[0].seq == 1)

        let vf = FakeHost.address("0000:01:10.2")
        let before = Date()
        bus.publish(.vfBound(driver: "vfio-pci", previous: nil), EventSubject(pf: pf, vf: vf, vfIndex: 2, vm: "vm1", nic: "net0"))
        bus.publish(numVFs(2), EventSubject(pf: pf))
        try await received.wait { $0.count == 3 }
        let events = received.events
        #expect(events.map(\.seq) == [2, 3])
        #expect(events.map(\.type) == ["vf.bound", "pf.numvfs"])
        let bound = events[0]
        #expect(bound.pf == pf && bound.vf == vf && bound.vfIndex == 2 && bound.vm == "vm1" && bound.nic == "net0")
        #expect(bound.details == ["driver": "vfio-pci", "previous": .null])
        #expect(events[1].details == ["numVFs": 2, "previous": 1])
        #expect(events[1].vm == nil)
        #expect(abs(bound.time.timeIntervalSince(before)) < 5)
    }

    @Test("filters leave other events out; the heartbeat's seq still moves past them")
    func filtered() async throws {
        let bus = EventBus()
        let stream = EventStream(bus: bus, history: EventHistory(), settings: .init(heartbeat: .milliseconds(50)))
        let received = ReceivedLines()
        let reader = follow(stream, filter: EventFilter(typePrefixes: ["pf."], pf: pf), into: received)
        defer { reader.cancel() }
        try await received.wait { $0.count == 1 }
        bus.publish(numVFs(1), EventSubject(pf: otherPF))  // another PF
        bus.publish(.vfBound(driver: nil, previous: "igbvf"), EventSubject(pf: pf))  // another type
        bus.publish(numVFs(3), EventSubject(pf: pf))
        bus.publish(.daemonStopping)  // no PF
        try await received.wait { lines in lines.contains { $0.type == "heartbeat" && $0.seq == 4 } }
        #expect(received.events.map(\.seq) == [3])
    }

    @Test("heartbeats come every interval, with the seq to resume from")
    func heartbeats() async throws {
        let bus = EventBus()
        let stream = EventStream(bus: bus, history: EventHistory(), settings: .init(heartbeat: .milliseconds(40)))
        let received = ReceivedLines()
        let start = ContinuousClock.now
        let reader = follow(stream, into: received)
        defer { reader.cancel() }
        try await received.wait { $0.filter { $0.type == "heartbeat" }.count >= 4 }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(110), "the first at once, then one every 40 ms: \(elapsed)")
        #expect(received.all.allSatisfy { $0.type == "heartbeat" && $0.seq == 0 && $0.details == nil })
        bus.publish(numVFs(1))
        try await received.wait { $0.last?.type == "heartbeat" && $0.last?.seq == 1 }
    }

    @Test("since replays the held events after it, then goes on live with no event twice")
    func sinceReplays() async throws {
        let history = EventHistory()
        let bus = EventBus(recorders: [history.record])
        let stream = EventStream(bus: bus, history: history)
        for n in 1...5 { bus.publish(numVFs(n), EventSubject(pf: pf)) }
        let received = ReceivedLines()
        let reader = follow(stream, since: 2, into: received)
        defer { reader.cancel() }
        try await received.wait { $0.count == 4 }
        #expect(received.all.map(\.type) == ["pf.numvfs", "pf.numvfs", "pf.numvfs", "heartbeat"])
        #expect(received.all.map(\.seq) == [3, 4, 5, 5])
        bus.publish(numVFs(6), EventSubject(pf: pf))
        try await received.wait { $0.count == 5 }
        #expect(received.events.map(\.seq) == [3, 4, 5, 6])
    }

    @Test("since older than the history holds: a resync line first, then what is held")
    func resync() async throws {
        let history = EventHistory(capacity: 3)
        let bus = EventBus(recorders: [history.record])
        let stream = EventStream(bus: bus, history: history)
        for n in 1...10 { bus.publish(numVFs(n)) }
        let received = ReceivedLines()
        let reader = follow(stream, since: 4, into: received)
        defer { reader.cancel() }
        try await received.wait { $0.count == 5 }
        #expect(received.all.map(\.type) == ["resync", "pf.numvfs", "pf.numvfs", "pf.numvfs", "heartbeat"])
        let resync = received.all[0]
        #expect(resync.seq == 7, "the replay starts after 7")
        #expect(resync.details?["since"] == 4 && resync.details?["oldest"] == 8)
        #expect(resync.details?["detail"]?.stringValue == "events 5-7 are no longer held: read the state again")
        #expect(received.events.map(\.seq) == [8, 9, 10])
    }

    @Test("since from an earlier run (newer than anything published): resync, then live")
    func resyncAfterRestart() async throws {
        let history = EventHistory()
        let bus = EventBus(recorders: [history.record])
        bus.publish(numVFs(1))
        let received = ReceivedLines()
        let reader = follow(EventStream(bus: bus, history: history), since: 900, into: received)
        defer { reader.cancel() }
        try await received.wait { $0.count == 3 }
        #expect(received.all.map(\.type) == ["resync", "pf.numvfs", "heartbeat"])
        #expect(received.all[0].details?["detail"]?.stringValue?.contains("not from this run") == true)
    }

    @Test("a reader too slow for its buffer slows no one; its stream ends with an overflow line saying where to resume, and resuming there loses nothing")
    func slowReader() async throws {
        let history = EventHistory()
        let bus = EventBus(recorders: [history.record])
        let stream = EventStream(bus: bus, history: history, settings: .init(buffer: 4))
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let stalled = Mutex(false)
        let received = ReceivedLines()
        // The reader stalls writing its first event until the gate opens.
        let reader = follow(stream, into: received) { line in
            if line.isEvent && line.seq == 1 {
                stalled.withLock { $0 = true }
                for await _ in gate { break }
            }
        }
        try await received.wait { $0.count == 1 }  // the first heartbeat: subscribed
        bus.publish(numVFs(1), EventSubject(pf: pf))
        while !stalled.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(2)) }

        let clock = ContinuousClock()
        let started = clock.now
        for n in 2...50 { bus.publish(numVFs(n), EventSubject(pf: pf)) }
        #expect(clock.now - started < .seconds(1), "publishing did not wait for the reader")
        #expect(bus.dropped > 0)
        open.yield()
        try await reader.value  // the stream ends by itself

        let lines = received.all
        #expect(lines.map(\.type) == ["heartbeat", "pf.numvfs", "overflow"])
        let overflow = try #require(lines.last)
        #expect(overflow.seq == 1 && overflow.details?["since"] == 1)
        #expect(overflow.details?["detail"]?.stringValue?.contains("?since=1") == true)
        #expect(bus.subscriberCount == 0, "its subscription is gone")

        let resumed = ReceivedLines()
        let again = follow(stream, since: 1, into: resumed)
        defer { again.cancel() }
        try await resumed.wait { $0.count == 50 }
        #expect(resumed.events.map(\.seq) == Array(2...50))
    }

    @Test("bad filter values are refused with a 400 naming the parameter, before the stream starts")
    func badParameters() async throws {
        let stream = EventStream(bus: EventBus(), history: EventHistory())
        let app = Application(router: makeRouter(inventory: try FakeHost.twoPFs(), events: stream))
        try await app.test(.router) { client in
            for (query, field) in [
                ("type=Assignment", "type"), ("type=", "type"), ("type=vf.&type=a%20b", "type"), ("pf=0000:01:00", "pf"),
                ("vm=a/b", "vm"), ("since=-1", "since"), ("since=x", "since"), ("limit=3", "limit"),
            ] {
                try await client.execute(uri: "/v1/events?\(query)", method: .get) { response in
                    #expect(response.status == .badRequest, "\(query)")
                    let body = try jsonObject(response.body)
                    #expect(body["field"] as? String == field, "\(query): \(body)")
                }
            }
        }
    }

    @Test("the reader group may follow the stream; a stranger may not")
    func readersMayFollow() async throws {
        let stream = EventStream(bus: EventBus(), history: EventHistory())
        let router = Router(context: FixedPeerContext.self)
        router.middlewares.add(ProblemMiddleware())
        router.addAdmissionChecks(
            authorization: AuthorizationPolicy(adminGroup: adminGroup, readerGroup: readerGroup, databaseGroups: testGroupDatabase),
            maxRequestBytes: 4096)
        EventRoutes<FixedPeerContext>(stream: stream).register(on: router)
        try await Application(router: router).test(.router) { client in
            // A bad since gets past admission to the route's own check: 400, not 403.
            let reader = try await FixedPeerContext.$peer.withValue(AuthorizationTests.reader) {
                try await client.execute(uri: "/v1/events?since=x", method: .get) { $0.status }
            }
            #expect(reader == .badRequest)
            let stranger = try await FixedPeerContext.$peer.withValue(AuthorizationTests.stranger) {
                try await client.execute(uri: "/v1/events", method: .get) { $0.status }
            }
            #expect(stranger == .forbidden)
        }
    }

    @Test("over the Unix socket: chunked NDJSON as things happen, filtered, and the reader leaving ends its subscription")
    func overTheSocket() async throws {
        let dir = NSTemporaryDirectory() + "sriovd-ev-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/api.sock"
        let history = EventHistory()
        let bus = EventBus(recorders: [history.record])
        let stream = EventStream(bus: bus, history: history)
        try await Self.serving(makeRouter(inventory: try FakeHost.twoPFs(), events: stream), on: socket) {
            let client = SRIOVClient(socketPath: socket, timeout: .seconds(5))
            let publisher = Task {
                while bus.subscriberCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
                bus.publish(numVFs(1), EventSubject(pf: otherPF))
                bus.publish(.assignmentCreated(Self.assignment(pf: pf)), EventSubject(Self.assignment(pf: pf)))
            }
            let (contentType, lines) = try await client.withStreamingResponse(
                .init(method: .get, path: "/v1/events?type=assignment.&type=vf.")
            ) { response throws(ClientError) in
                var lines: [String] = []
                for try await line in response.lines {
                    lines.append(line)
                    if lines.count == 2 { break }
                }
                return (response.headers.first(name: "content-type"), lines)
            }
            try await publisher.value
            #expect(contentType == "application/x-ndjson")
            let heartbeat = try APIJSON.decoder().decode(EventLine.self, from: Data(lines[0].utf8))
            #expect(heartbeat.type == "heartbeat")
            let created = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
            #expect(created["type"] as? String == "assignment.created")
            #expect(created["seq"] as? Int == 2)
            #expect(created["vm"] as? String == "vm-web" && created["nic"] as? String == "net0")
            #expect(created["pf"] as? String == "0000:01:00.0" && created["vf"] as? String == "0000:01:10.0")
            let time = try #require(created["time"] as? String)
            #expect(try Date(time, strategy: .iso8601) <= Date(), "RFC 3339: \(time)")
            let details = try #require(created["details"] as? [String: Any])
            #expect((details["assignment"] as? [String: Any])?["driver"] as? String == "vfio-pci")

            // The reader closed its connection: the daemon notices at its
            // next write (of an event it wants, or a heartbeat).
            let deadline = ContinuousClock.now + .seconds(5)
            while bus.subscriberCount > 0, ContinuousClock.now < deadline {
                bus.publish(.vfBound(driver: nil, previous: nil))
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(bus.subscriberCount == 0)
        }
    }

    /// Runs `router` on a Unix socket at `socket` while `body` runs.
    static func serving(
        _ router: Router<SRIOVRequestContext>, on socket: String, _ body: () async throws -> Void
    ) async throws {
        let server = SocketBinding.path(socket).server(
            responder: router.buildResponder(), serverName: "sriovd", onServerRunning: {}, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [server], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                while !FileManager.default.fileExists(atPath: socket) { try await Task.sleep(for: .milliseconds(10)) }
                try await body()
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    static func assignment(pf: PCIAddress) -> Assignment {
        Assignment(
            vm: "vm-web", nic: "net0", vf: FakeHost.address("0000:01:10.0"), pf: pf, vfIndex: 0, driver: .vfio,
            state: .assigned, createdAt: Date(timeIntervalSince1970: 0), updatedAt: Date(timeIntervalSince1970: 0))
    }
}

/// An event stream line of each kind of change, and the stream's own lines,
/// as the daemon encodes them: samples for the document's `EventLine`.
enum EventLineSamples {
    static func all() throws -> [EventLine] {
        let pf = FakeHost.address("0000:01:00.0")
        let vf = FakeHost.address("0000:01:10.0")
        let seen = PFSeen(driver: "igb", netdev: nil, numVFs: 2, totalVFs: 7)
        let assignment = EventStreamTests.assignment(pf: pf)
        let changes: [StateChange] = [
            .daemonStarted(DaemonStart(socket: "/run/sriovd/sriovd.sock", activated: false, pfCount: 1, version: "0.1.0")),
            .daemonStopping, .pfNumVFs(count: 4, previous: 0), .pfAppeared(seen, returned: true), .pfGone,
            .pfChanged(seen), .vfsSeen(VFsSeen(appeared: [vf], gone: [], changed: [])),
            .vfSettings(
                VFSettingsChange(
                    action: .configure,
                    results: [.init(setting: .vlan, outcome: .applied, detail: nil), .init(setting: .trust, outcome: .failed, detail: "EPERM")])),
            .vfBound(driver: "vfio-pci", previous: nil), .assignmentCreated(assignment), .assignmentChanged(assignment),
            .assignmentReleased(assignment),
            .reconcilePass(ReconcilePass(trigger: "start", summary: "nothing to change", changed: false, failed: false)),
        ]
        let history = EventHistory(capacity: 2)
        let bus = EventBus(recorders: [history.record])
        var lines = changes.map { EventLine(bus.publish($0, EventSubject(pf: pf, vf: vf, vfIndex: 0, vm: "vm1", nic: "net0"))) }
        lines.append(EventStream.heartbeat(3))
        lines.append(EventStream.resync(since: 1, replay: history.events(after: 1)))
        lines.append(EventStream.overflow(12, dropped: 5))
        return lines
    }
}
