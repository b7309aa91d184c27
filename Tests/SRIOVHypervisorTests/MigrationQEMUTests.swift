import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SRIOVAPI
import SRIOVCore
import SRIOVDaemon
import SRIOVHostTesting
import SRIOVHypervisor
import SRIOVRouterTesting
import Testing

/// The probes of one phase: the ping sequence numbers the guest sent in it
/// (known from the replies on either side) and which of them got no reply.
struct ProbeWindow: Sendable, CustomStringConvertible {
    var name: String
    var first: Int
    var last: Int
    var lost: [Int]
    /// How long the API call took, and the whole window (the call and the
    /// settling after it): sent / window gives the probes' real rate.
    var callMs: Int
    var windowMs: Int

    var sent: Int { max(0, last - first + 1) }
    /// The longest run of consecutive probes without a reply (10 ms each).
    var longestRun: Int {
        var longest = 0, run = 0, previous = Int.min
        for n in lost.sorted() {
            run = n == previous + 1 ? run + 1 : 1
            longest = max(longest, run)
            previous = n
        }
        return longest
    }

    var description: String {
        "\(name): \(sent) sent, \(lost.count) lost, longest run lost \(longestRun) (call \(callMs) ms, window \(windowMs) ms)"
    }

    var json: [String: Any] {
        ["window": name, "sent": sent, "lost": lost.count, "longestRunLost": longestRun, "callMs": callMs, "windowMs": windowMs]
    }
}

/// The figures of every run of this suite, written as JSON to the file
/// SRIOVD_QMP_FIGURES names (when set) for the migration benchmark:
/// `{"qmp":[{"agent":true,"probeIntervalMs":10,"windows":[{"window","sent","lost","longestRunLost","callMs","windowMs"}]}]}`.
actor QMPFigures {
    static let shared = QMPFigures()
    private var runs: [[String: Any]] = []

    func record(agent: Bool, _ windows: [ProbeWindow]) throws {
        runs.append(["agent": agent, "probeIntervalMs": 10, "windows": windows.map(\.json)])
        guard let path = ProcessInfo.processInfo.environment["SRIOVD_QMP_FIGURES"], !path.isEmpty else { return }
        let data = try JSONSerialization.data(withJSONObject: ["qmp": runs], options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
    }
}

/// A live migration of a real QEMU guest driven by the migration engine
/// through the API: two daemons (source and destination, each with its own
/// state) whose host is a fake (the machine has no VFs), and whose QMP
/// adapter plugs an emulated e1000e NIC with the guest's MAC where a VF
/// would go. QEMU, its guest agent, the guest's hotplug driver and its
/// active-backup bond are real; the guest pings every 10 ms throughout, and
/// every window's loss is asserted.
@Suite(.serialized, .enabled(if: QEMUGuestProcess.shouldRun, "needs QEMU, a kernel in /boot, busybox and qemu-guest-agent (scripts/install-deps.sh)"))
struct MigrationQEMUTests {
    static let pfA = try! PCIAddress.parse("0000:01:00.0", field: "pf")
    static let pfB = try! PCIAddress.parse("0000:02:00.0", field: "pf")
    let mac = QEMUGuestProcess.guestMAC

    /// An emulated NIC where the VF would be: host A's on hub port plug1,
    /// host B's on plug2, with the VF's MAC.
    static let emulatedNIC = QMPDeviceChoice { vf in
        ("e1000e", ["netdev": .string(vf.pf == pfA ? "plug1" : "plug2"), "mac": .string(vf.mac?.description ?? "")])
    }

    /// One daemon's router on the shared fake host, its state in `dir`.
    static func router(host: FakeHost, dir: String) throws -> Router<SRIOVRequestContext> {
        let store = try StateStore(directory: dir)
        let logger = Logger(label: "sriovd-test")
        let controller = VFController(host: host, store: store, logger: logger, verifyAttempts: 3, verifyInterval: .milliseconds(1))
        let assignments = AssignmentService(
            controller: controller, store: store, inventory: host, configuration: { SRIOVConfiguration() }, logger: logger,
            adapters: { spec in
                let adapter = FailoverAdapters.make(spec, unplugDeadline: .seconds(30))
                guard let qmp = adapter as? QMPFailover else { return adapter }
                return QMPFailover(guest: qmp.guest, agent: qmp.agent, plugging: emulatedNIC)
            })
        return makeRouter(inventory: host, controller: controller, assignments: assignments)
    }

    /// Runs `body` with a client of the source daemon and one of the destination's.
    func withDaemons<T: Sendable>(
        _ body: @escaping @Sendable (any TestClientProtocol, any TestClientProtocol) async throws -> T
    ) async throws -> T {
        let host = FakeHost([
            FakeHost.PF(address: Self.pfA, autoprobe: false, vfs: 2),
            FakeHost.PF(address: Self.pfB, autoprobe: false, vfs: 2),
        ])
        let dir = NSTemporaryDirectory() + "sriovd-mig-qemu-\(UUID().uuidString)"
        let a = Application(router: try Self.router(host: host, dir: dir + "/a"))
        let b = Application(router: try Self.router(host: host, dir: dir + "/b"))
        return try await a.test(.router) { source in
            try await b.test(.router) { destination in try await body(source, destination) }
        }
    }

    struct Reply {
        var status: HTTPResponse.Status
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        func migration() throws -> Migration { try APIJSON.decoder().decode(Migration.self, from: body) }
    }

    func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ json: String? = nil) async throws -> Reply {
        try await client.execute(
            uri: uri, method: method, headers: json == nil ? [:] : [.contentType: "application/json"],
            body: json.map { ByteBuffer(string: $0) }
        ) { response in Reply(status: response.status, body: Data(buffer: response.body)) }
    }

    /// The NIC's body: host A plugs as vf0 on rp1, host B as vf1 on rp2.
    func nic(_ guest: QEMUGuestProcess, on pf: PCIAddress, agent: Bool) -> String {
        let (device, bus) = pf == Self.pfA ? ("vf0", "rp1") : ("vf1", "rp2")
        let lever = agent ? #","agent":"\#(guest.agentSocket)","bond":"bond0""# : ""
        return #"{"nic":"net0","pf":"\#(pf)","driver":"vfio-pci","mac":"\#(mac)","failover":{"adapter":"qmp","socket":"\#(guest.qmpSocket)","device":"\#(device)","bus":"\#(bus)","standby":"standby"\#(lever)}}"#
    }

    /// Probes while `body` runs and until replies have come back for
    /// `settle` after it (a window ends with traffic flowing, so the last
    /// probe sent in it is known).
    func window(
        _ name: String, _ guest: QEMUGuestProcess, settle: Duration = .milliseconds(1500), _ body: () async throws -> Void
    ) async throws -> ProbeWindow {
        let first = (guest.pingReplies.max() ?? 0) + 1
        let start = ContinuousClock.now
        try await body()
        let took = ContinuousClock.now - start
        let afterBody = guest.pingReplies.max() ?? 0
        try await Task.sleep(for: settle)
        let last = guest.pingReplies.max() ?? 0
        #expect(last > afterBody, "\(name): replies came back after the call")
        let replies = guest.pingReplies
        return ProbeWindow(
            name: name, first: first, last: last, lost: (first...max(first, last)).filter { !replies.contains($0) },
            callMs: NetnsGuest.milliseconds(took), windowMs: NetnsGuest.milliseconds(ContinuousClock.now - start))
    }

    func waitForReplies(_ guest: QEMUGuestProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        let before = guest.pingReplies.max() ?? 0
        while (guest.pingReplies.max() ?? 0) < before + 20 {
            if ContinuousClock.now > deadline {
                throw QEMUGuestProcess.Failure(description: "the guest's pings get no replies; console:\n\(guest.consoleText.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The guest's bond's active slave's name, as its init reports it.
    func activeSlaveName(_ guest: QEMUGuestProcess) -> String? {
        guest.consoleLines.last(where: { $0.hasPrefix("BOND-ACTIVE ") }).map { String($0.split(separator: " ")[1]) }
    }

    /// A whole cycle, A to B and back as far as an abort: assign on A;
    /// incoming on B; prepare on A and complete on B (the way out and in);
    /// then incoming on A, prepare on B, and abort on B (the guest gets its
    /// VF back) and on A (the reservation released); released at the end.
    func cycle(agent: Bool) async throws -> [ProbeWindow] {
        let guest = try await SharedGuest.failover.get()
        // With the agent, sriovd's steer is the only switch back: the guest
        // makes no plugged NIC its bond's primary. Without, the guest does.
        try await QGAConnection.with(socket: guest.agentSocket) { qga in
            try await qga.writeFile("/run/plug-primary", agent ? "0\n" : "1\n")
            if agent { try await qga.writeFile("/sys/class/net/bond0/bonding/primary", "\n") }
        }
        try guest.waitForActiveSlave(driver: "virtio_net", timeout: 60)
        try await waitForReplies(guest)
        let mac = self.mac
        let (nicA, nicB) = (nic(guest, on: Self.pfA, agent: agent), nic(guest, on: Self.pfB, agent: agent))
        let windows = try await withDaemons { a, b in
            var windows: [ProbeWindow] = []
            let assigned = try await call(a, .post, "/v1/assignments", String(nicA.dropLast()) + #","vm":"vm1"}"#)
            #expect(assigned.status == .created, "assign: \(assigned.text)")
            try guest.waitForActiveSlave(driver: "e1000e", timeout: 30)

            let incoming = try await call(b, .post, "/v1/vms/vm1/migration/incoming", #"{"nics":[\#(nicB)]}"#)
            #expect(incoming.status == .created, "incoming on B: \(incoming.text)")

            var reply = Reply(status: .ok, body: Data())
            windows.append(try await window("prepare A->B", guest) {
                reply = try await call(a, .post, "/v1/vms/vm1/migration/prepare")
            })
            #expect(reply.status == .ok, "prepare on A: \(reply.text)")
            let prepared = try reply.migration()
            #expect(prepared.state == .prepared)
            try guest.waitForActiveSlave(driver: "virtio_net", timeout: 5)
            let standby = try #require(activeSlaveName(guest))
            try expectLevers(prepared, agent: agent, steeredTo: standby, operation: "prepare")

            windows.append(try await window("complete A->B", guest) {
                reply = try await call(b, .post, "/v1/vms/vm1/migration/complete")
            })
            #expect(reply.status == .ok, "complete on B: \(reply.text)")
            #expect(try reply.migration().state == .completed)
            try guest.waitForActiveSlave(driver: "e1000e", timeout: 5)
            try expectLevers(try reply.migration(), agent: agent, steeredTo: try #require(activeSlaveName(guest)), operation: "complete")

            let back = try await call(a, .post, "/v1/vms/vm1/migration/incoming", #"{"nics":[\#(nicA)]}"#)
            #expect(back.status == .created, "incoming on A: \(back.text)")
            windows.append(try await window("prepare B->A", guest) {
                reply = try await call(b, .post, "/v1/vms/vm1/migration/prepare")
            })
            #expect(reply.status == .ok, "prepare on B: \(reply.text)")
            try guest.waitForActiveSlave(driver: "virtio_net", timeout: 5)
            windows.append(try await window("abort on B (back on its VF)", guest) {
                reply = try await call(b, .post, "/v1/vms/vm1/migration/abort")
            })
            #expect(reply.status == .ok, "abort on B: \(reply.text)")
            #expect(try reply.migration().state == .aborted)
            try guest.waitForActiveSlave(driver: "e1000e", timeout: 5)
            let released = try await call(a, .post, "/v1/vms/vm1/migration/abort")
            #expect(released.status == .ok && (try? released.migration().state) == .aborted, "abort on A: \(released.text)")

            let gone = try await call(b, .delete, "/v1/assignments/vm1/net0")
            #expect(gone.status == .ok || gone.status == .noContent, "release on B: \(gone.text)")
            try guest.waitForActiveSlave(driver: "virtio_net", timeout: 10)
            return windows
        }
        try await QMPFigures.shared.record(agent: agent, windows)
        print("QMP migration through the engine, real QEMU guest (TCG), probes every 10 ms, \(agent ? "with" : "without") the guest agent:")
        for w in windows { print("  \(w)") }
        return windows
    }

    /// The timeline's steer step names the lever (with the agent: the
    /// guest's bond, switched to `steeredTo`), and a lever clears the VF's
    /// MAC before the unplug; without one the unplug comes first.
    func expectLevers(_ migration: Migration, agent: Bool, steeredTo slave: String, operation: String) throws {
        let steer = try #require(migration.timeline.last { $0.step == "steer" && $0.operation == operation })
        if agent {
            #expect(steer.lever == "agent bond0 active_slave \(slave)" && steer.result == "ok", "\(operation): \(steer)")
        } else {
            #expect(steer.lever == nil && steer.result == "skipped", "\(operation): \(steer)")
        }
        guard operation == "prepare" else { return }
        let steps = migration.timeline.map(\.step)
        let (clear, detach) = (try #require(steps.firstIndex(of: "clear-mac")), try #require(steps.firstIndex(of: "detach")))
        #expect(agent ? clear < detach : detach < clear, "\(operation) order: \(steps)")
    }

    @Test("preflight through the agent at assign and incoming: a bond that is not there, or a MAC that is not the bond's, is refused with 400 naming failover.bond or mac, and nothing is plugged or reserved")
    func preflightRefusals() async throws {
        let guest = try await SharedGuest.failover.get()
        let good = nic(guest, on: Self.pfA, agent: true)
        let noBond = good.replacingOccurrences(of: #""bond":"bond0""#, with: #""bond":"bond9""#)
        let otherMAC = good.replacingOccurrences(of: mac, with: "52:54:00:5a:01:99")
        try await withDaemons { a, b in
            let refusedBond = try await call(a, .post, "/v1/assignments", String(noBond.dropLast()) + #","vm":"vm1"}"#)
            #expect(refusedBond.status == .badRequest && refusedBond.text.contains(#""field":"failover.bond""#), "\(refusedBond.text)")
            #expect(refusedBond.text.contains("no interface bond9"), "says what the guest has: \(refusedBond.text)")
            let refusedMAC = try await call(b, .post, "/v1/vms/vm1/migration/incoming", #"{"nics":[\#(otherMAC)]}"#)
            #expect(refusedMAC.status == .badRequest && refusedMAC.text.contains(#""field":"nics[0].mac""#), "\(refusedMAC.text)")
            #expect(try await call(a, .get, "/v1/assignments").text.contains("vm1") == false)
            #expect(try await call(b, .get, "/v1/vms/vm1/migration").status == .notFound, "a refused incoming leaves no record")
        }
        #expect(try await QMPGuest(target: QMPTarget(socket: guest.qmpSocket, device: "vf0", bus: "rp1", standby: "standby")).isPresent() == false)
    }

    @Test("with the guest agent: the bond's active slave is the lever, the VF's MAC cleared before the unplug, and no probe at 10 ms is lost in any window (prepare, complete, prepare back, abort)")
    func migrationWithTheAgent() async throws {
        let windows = try await cycle(agent: true)
        #expect(windows.count == 4)
        for w in windows {
            #expect(w.sent > 0, "\(w)")
            #expect(w.lost.isEmpty, "\(w)")
        }
    }

    @Test("without the agent: no lever (the guest's bond follows the unplug and its primary), the unplug before the MAC is cleared; every window carries traffic again at its end, its loss one gap, recorded")
    func migrationWithoutTheAgent() async throws {
        let windows = try await cycle(agent: false)
        #expect(windows.count == 4)
        for w in windows {
            #expect(w.sent > 0, "\(w)")
            #expect(w.longestRun == w.lost.count, "the loss is one gap: \(w)")
        }
    }
}
