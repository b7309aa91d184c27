import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SRIOVCore
import SRIOVHost
import Synchronization
import SRIOVRouterTesting
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

/// A request context whose peer the test chooses: the router test framework
/// has no socket, so `SRIOVRequestContext` would find no credentials. Only
/// tests have it; the daemon's context reads them from the connection.
struct FixedPeerContext: PeerIdentifyingContext {
    @TaskLocal static var peer: PeerCredentials?

    var coreContext: CoreRequestContextStorage
    let peer: PeerCredentials?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peer = Self.peer
    }

    func peerCredentials() async -> PeerCredentials? { peer }
}

/// Groups of the tests' made-up users: 1000 is an admin through a
/// supplementary group, 1001 a reader, 1002 in neither, 1003 a reader only
/// through its primary group (not listed in the database).
let testGroupDatabase: @Sendable (uid_t) -> Set<gid_t> = { uid in
    [1000: [1000, 2000], 1001: [1001, 2001], 1002: [1002, 100]][uid] ?? []
}
let adminGroup = AuthorizationPolicy.Group(name: "sriovd", gid: 2000)
let readerGroup = AuthorizationPolicy.Group(name: "sriovd-ro", gid: 2001)

@Suite("Authorization by peer credentials")
struct AuthorizationTests {
    let host = FakeHost.threeVFs()
    static let root = PeerCredentials(pid: 10, uid: 0, gid: 0)
    static let admin = PeerCredentials(pid: 11, uid: 1000, gid: 1000)
    static let reader = PeerCredentials(pid: 12, uid: 1001, gid: 1001)
    static let stranger = PeerCredentials(pid: 13, uid: 1002, gid: 1002)
    static let primaryReader = PeerCredentials(pid: 14, uid: 1003, gid: 2001)

    func policy(admin: AuthorizationPolicy.Group? = adminGroup, reader: AuthorizationPolicy.Group? = readerGroup)
        -> AuthorizationPolicy
    {
        AuthorizationPolicy(adminGroup: admin, readerGroup: reader, databaseGroups: testGroupDatabase)
    }

    /// The daemon's routes and admission checks on a router whose peer is `FixedPeerContext.peer`.
    func withApp(
        _ policy: AuthorizationPolicy, maxRequestBytes: Int = 4096,
        _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let stateDirectory = NSTemporaryDirectory() + "sriovd-auth-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let store = try StateStore(directory: stateDirectory)
        let controller = VFController(
            host: host, store: store, logger: Logger(label: "test"), verifyAttempts: 3, verifyInterval: .milliseconds(1))
        let inventory = try FakeHost.twoPFs()
        let router = Router(context: FixedPeerContext.self)
        router.middlewares.add(ProblemMiddleware())
        router.addAdmissionChecks(authorization: policy, maxRequestBytes: maxRequestBytes)
        InventoryRoutes<FixedPeerContext>(inventory: inventory, version: sriovdVersion).register(on: router)
        ControlRoutes<FixedPeerContext>(inventory: inventory, controller: controller, maxBodyBytes: maxRequestBytes)
            .register(on: router)
        try await Application(router: router).test(.router, body)
    }

    func send(
        _ client: any TestClientProtocol, as peer: PeerCredentials?, _ method: HTTPRequest.Method, _ uri: String,
        json: String? = nil
    ) async throws -> (status: HTTPResponse.Status, body: [String: Any]) {
        try await FixedPeerContext.$peer.withValue(peer) {
            try await client.execute(
                uri: uri, method: method, headers: json == nil ? [:] : [.contentType: "application/json"],
                body: json.map { ByteBuffer(string: $0) }
            ) { response in
                (response.status, response.body.readableBytes == 0 ? [:] : try jsonObject(response.body))
            }
        }
    }

    var vfPath: String { "/v1/vfs/\(host.address(1))" }

    @Test("root and admin-group members may read and change")
    func adminsMayChange() async throws {
        try await withApp(policy()) { client in
            for (peer, vlan) in [(Self.root, 10), (Self.admin, 20)] {
                let (read, _) = try await send(client, as: peer, .get, "/v1/pfs")
                #expect(read == .ok, "uid \(peer.uid)")
                let (change, body) = try await send(client, as: peer, .patch, vfPath, json: #"{"vlan":\#(vlan)}"#)
                #expect(change == .ok, "uid \(peer.uid): \(body)")
            }
        }
        #expect(host.state.withLock { $0.writes.count } == 2)
    }

    @Test("reader-group members may read but not change, and are told who may")
    func readersMayOnlyRead() async throws {
        try await withApp(policy()) { client in
            for peer in [Self.reader, Self.primaryReader] {
                let (read, _) = try await send(client, as: peer, .get, "/v1/vfs")
                #expect(read == .ok, "uid \(peer.uid)")
                let (change, body) = try await send(client, as: peer, .patch, vfPath, json: #"{"trust":true}"#)
                #expect(change == .forbidden)
                #expect(body["status"] as? Int == 403)
                #expect(body["detail"] as? String == "uid \(peer.uid) may only read, not change VFs: members of group sriovd may")
            }
        }
        #expect(host.state.withLock { $0.writes.isEmpty })
    }

    @Test("anyone else may do nothing; the 403 says which group grants what")
    func strangersMayNotRead() async throws {
        try await withApp(policy()) { client in
            let (change, changeBody) = try await send(client, as: Self.stranger, .patch, vfPath, json: #"{"trust":true}"#)
            #expect(change == .forbidden)
            #expect(
                changeBody["detail"] as? String
                    == "uid 1002 may not change VFs: members of group sriovd may; members of group sriovd-ro may read")
            let (read, readBody) = try await send(client, as: Self.stranger, .get, "/v1/pfs")
            #expect(read == .forbidden)
            #expect(
                readBody["detail"] as? String
                    == "uid 1002 may not read: members of group sriovd-ro may; members of group sriovd may read and change VFs")
            // Refused before routing: an unknown path is a 403 too, not a 404.
            let (unknown, _) = try await send(client, as: Self.stranger, .get, "/v1/nothing-here")
            #expect(unknown == .forbidden)
        }
        #expect(host.state.withLock { $0.writes.isEmpty })
    }

    @Test("a request whose peer is unknown is refused")
    func unknownPeerIsRefused() async throws {
        try await withApp(policy()) { client in
            let (status, body) = try await send(client, as: nil, .get, "/v1/health")
            #expect(status == .forbidden)
            #expect((body["detail"] as? String)?.hasPrefix("cannot tell who sent this request") == true)
        }
    }

    @Test("without groups only root may use the API")
    func onlyRootWithoutGroups() async throws {
        try await withApp(policy(admin: nil, reader: nil)) { client in
            let (rootRead, _) = try await send(client, as: Self.root, .get, "/v1/pfs")
            #expect(rootRead == .ok)
            let (read, body) = try await send(client, as: Self.admin, .get, "/v1/pfs")
            #expect(read == .forbidden)
            #expect(
                body["detail"] as? String
                    == "uid 1000 may not read: only root may use sriovd's API (no admin or reader group is configured)")
        }
    }

    @Test(
        "readers may GET and HEAD, nothing else",
        arguments: [
            (HTTPRequest.Method.get, true), (.head, true), (.post, false), (.put, false), (.patch, false),
            (.delete, false), (.options, false),
        ])
    func readMethods(method: HTTPRequest.Method, allowed: Bool) {
        let policy = policy()
        #expect((policy.refusal(of: method, by: Self.reader) == nil) == allowed)
        #expect(policy.refusal(of: method, by: Self.admin) == nil)
        #expect(policy.refusal(of: method, by: Self.stranger) != nil)
    }

    @Test("the group database is asked about the peer's uid; its primary group counts without it")
    func membershipSources() {
        let asked = Mutex<[uid_t]>([])
        let policy = AuthorizationPolicy(
            adminGroup: adminGroup, readerGroup: readerGroup,
            databaseGroups: { uid in
                asked.withLock { $0.append(uid) }
                return testGroupDatabase(uid)
            })
        #expect(policy.access(for: Self.admin) == .readAndChange)
        #expect(policy.access(for: Self.primaryReader) == .read)
        #expect(policy.access(for: Self.stranger) == .none)
        #expect(policy.access(for: Self.root) == .readAndChange)
        #expect(asked.withLock { $0 } == [1000, 1003, 1002])  // never for root
    }

    @Test("a configured group that does not exist is logged and grants nothing")
    func missingGroupIsNone() {
        let lines = Mutex<[String]>([])
        let logger = Logger(label: "test") { label in
            StderrLogHandler(label: label, output: { line in lines.withLock { $0.append(line) } })
        }
        let policy = AuthorizationPolicy.resolving(
            adminGroup: "sriovd", readerGroup: "no-such-group", logger: logger,
            lookup: { $0 == "sriovd" ? 2000 : nil })
        #expect(policy.adminGroup == adminGroup)
        #expect(policy.readerGroup == nil)
        let logged = lines.withLock { $0 }
        #expect(logged.count == 1)
        #expect(logged.first?.contains("group=no-such-group") == true)
        #expect(logged.first?.contains("setting=daemon.reader_group") == true)
        let unset = AuthorizationPolicy.resolving(adminGroup: "", readerGroup: nil, logger: logger, lookup: { _ in 1 })
        #expect(unset.adminGroup == nil && unset.readerGroup == nil)
    }

    @Test("the group database knows root's groups")
    func systemDatabase() {
        #expect(GroupDatabase.groups(ofUID: 0).contains(0))
        #expect(GroupDatabase.gid(named: "root") == 0)
        #expect(GroupDatabase.gid(named: "no-such-group-\(UUID().uuidString.prefix(8))") == nil)
    }

    @Test("a declared body over the limit is 413 before any route runs")
    func declaredBodyTooLarge() async throws {
        let routeRan = Mutex(0)
        let router = Router(context: FixedPeerContext.self)
        router.middlewares.add(ProblemMiddleware())
        router.addAdmissionChecks(authorization: policy(), maxRequestBytes: 64)
        router.post("/echo") { request, _ in
            routeRan.withLock { $0 += 1 }
            return try await request.body.collect(upTo: 1 << 20).readableBytes.description
        }
        try await Application(router: router).test(.router) { client in
            try await FixedPeerContext.$peer.withValue(Self.admin) {
                try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(repeating: 1, count: 65)) { response in
                    let detail = try jsonObject(response.body)["detail"] as? String
                    #expect(response.status == .contentTooLarge)
                    #expect(detail == "the request body is larger than 64 bytes")
                }
                try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(repeating: 1, count: 64)) { response in
                    #expect(response.status == .ok)
                }
            }
            // Who asks is checked first: a stranger learns nothing about sizes.
            try await FixedPeerContext.$peer.withValue(Self.stranger) {
                try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(repeating: 1, count: 65)) { response in
                    #expect(response.status == .forbidden)
                }
            }
        }
        #expect(routeRan.withLock { $0 } == 1)
    }
}

/// The same checks through a real Unix socket: the daemon's own context reads
/// `SO_PEERCRED`, and the group database is the system's. Clients run as
/// other users through `setpriv`, so this needs root.
@Suite("Authorization over a real socket")
struct AuthorizationSocketTests {
    static var unavailableReason: String? {
        if getuid() != 0 { return "needs root to run clients as other users (setpriv)" }
        for tool in ["/usr/bin/setpriv", "/usr/bin/curl"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is not installed"
        }
        if GroupDatabase.gid(named: "nogroup") != 65534 { return "no group nogroup (65534)" }
        return nil
    }

    /// `curl` as `uid`/`gid` with no supplementary groups (`nil`: as root);
    /// returns the status and the body.
    func curl(
        _ socket: String, uid: uid_t?, gid: gid_t? = nil, groups: [gid_t] = [], _ method: String, _ path: String,
        json: String? = nil
    ) async throws -> (status: Int, body: String) {
        var arguments: [String] = []
        if let uid {
            arguments += ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid ?? uid)"]
            arguments += groups.isEmpty ? ["--clear-groups"] : ["--groups=\(groups.map(String.init).joined(separator: ","))"]
        }
        arguments += ["/usr/bin/curl", "-sS", "--max-time", "10", "--unix-socket", socket, "-X", method]
        if let json { arguments += ["-H", "Content-Type: application/json", "--data", json] }
        arguments += ["-w", "\n%{http_code}", "http://sriovd\(path)"]
        // Off the concurrency pool: the server under test needs its threads.
        let (_, text) = try await Checkout.runOffPool(arguments)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? -1, lines.dropLast().joined(separator: "\n"))
    }

    @Test(
        "SO_PEERCRED and the group database decide (needs root)",
        .needing(unavailableReason))
    func realPeers() async throws {
        try TestRequirement.check(Self.unavailableReason)
        let dir = NSTemporaryDirectory() + "sriovd-auth-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/api.sock"
        // nobody (65534) is a reader through its primary group nogroup.
        let policy = AuthorizationPolicy(
            adminGroup: nil, readerGroup: AuthorizationPolicy.Group(name: "nogroup", gid: 65534))
        let server = SocketBinding.path(socket).server(
            responder: makeRouter(inventory: try FakeHost.twoPFs(), authorization: policy).buildResponder(),
            serverName: "sriovd", onServerRunning: { chmod(socket, 0o666) }, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [server], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await checks(socket)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    private func checks(_ socket: String) async throws {
        for _ in 0..<100 where (try? FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int) != 0o666 {
            try await Task.sleep(for: .milliseconds(50))
        }

        let reader = try await curl(socket, uid: 65534, "GET", "/v1/health")
        #expect(reader.status == 200, "\(reader.body)")
        let readerChange = try await curl(socket, uid: 65534, "PUT", "/v1/pfs/0000:01:00.0", json: #"{"numVFs":1}"#)
        #expect(readerChange.status == 403)
        #expect(readerChange.body.contains("uid 65534 may only read, not change VFs: only root may"), "\(readerChange.body)")

        let stranger = try await curl(socket, uid: 40000, "GET", "/v1/health")
        #expect(stranger.status == 403)
        #expect(
            stranger.body.contains("uid 40000 may not read: members of group nogroup may; only root may change VFs"),
            "\(stranger.body)")
        // Supplementary groups come from the group database, not from what
        // the process holds: uid 40000 has no user entry.
        let holder = try await curl(socket, uid: 40000, groups: [65534], "GET", "/v1/health")
        #expect(holder.status == 403)

        // Root passes; the request then fails on its own merits (this router
        // has no controller, so no such route: 404).
        let root = try await curl(socket, uid: nil, "PUT", "/v1/pfs/0000:01:00.0", json: #"{"numVFs":1}"#)
        #expect(root.status == 404, "\(root.body)")
    }
}

/// The reader group reaches a 0660 socket through a POSIX ACL, set by sriovd
/// on a socket it creates and by `sriovd socket-access` on one systemd made.
@Suite("API socket access for the reader group", .serialized)
struct SocketAccessTests {
    @Test("the ACL sriovd writes: version 2, the mode's entries, the group with rw, a mask letting it through")
    func aclLayout() {
        let bytes = SocketAccess.accessACL(mode: 0o660, granting: 65534)
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8 }
        func u32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[i + $1]) << (8 * $1) } }
        #expect(bytes.count == 4 + 5 * 8)
        #expect(u32(0) == 2)
        let entries = (0..<5).map { (tag: u16(4 + $0 * 8), perm: u16(6 + $0 * 8), id: u32(8 + $0 * 8)) }
        #expect(entries.map(\.tag) == [0x01, 0x04, 0x08, 0x10, 0x20], "sorted by tag, as the kernel requires")
        #expect(entries.map(\.perm) == [6, 6, 6, 6, 0])
        #expect(entries.map(\.id) == [.max, .max, 65534, .max, .max])
        // A 0600 socket: the owning group gets nothing, the mask still rw for the added group.
        let narrow = SocketAccess.accessACL(mode: 0o600, granting: 7)
        #expect(narrow[12 + 2] == 0 && narrow[28 + 2] == 6)
    }

    /// Runs sriovd (fake empty sysfs) with `config` until `body` returns.
    func withDaemon(config: String, in dir: String, _ body: (String) async throws -> Void) async throws {
        let configPath = dir + "/sriovd-\(UUID().uuidString.prefix(6)).toml"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let socket = dir + "/api.sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Checkout.sriovd)
        process.arguments = [
            "--config", configPath, "--socket", socket, "--state-dir", dir + "/state", "--sysfs-root", dir + "/sys",
            "--log-target", "stderr",
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        for _ in 0..<300 where (try? FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int) != 0o660 {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(200))  // the ACL follows the mode
        try await body(socket)
    }

    @Test(
        "a reader-group member connects to a 0660 socket it neither owns nor is group of; others still cannot (needs root)",
        .needing(AuthorizationSocketTests.unavailableReason))
    func readerGroupConnects() async throws {
        try TestRequirement.check(AuthorizationSocketTests.unavailableReason)
        let dir = try Checkout.temporaryDirectory("sriovd-acl")
        chmod(dir, 0o755)
        try FileManager.default.createDirectory(atPath: dir + "/sys/bus/pci/devices", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let client = AuthorizationSocketTests()

        // sriovd creates the socket: mode 0660, group root (admin_group ""), ACL for nogroup.
        try await withDaemon(
            config: "[daemon]\nsocket_mode = \"0660\"\nadmin_group = \"\"\nreader_group = \"nogroup\"\n", in: dir
        ) { socket in
            let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
            #expect(mode == 0o660)
            let reader = try await client.curl(socket, uid: 65534, "GET", "/v1/health")
            #expect(reader.status == 200, "\(reader.body)")
            let stranger = try await client.curl(socket, uid: 40000, "GET", "/v1/health")
            #expect(stranger.status == 0, "uid 40000 cannot even connect: \(stranger.body)")
        }

        // No reader group: nogroup cannot connect; `sriovd socket-access` (for
        // sriovd.socket) grants the connection, and sriovd still decides: 403.
        try await withDaemon(config: "[daemon]\nsocket_mode = \"0660\"\nadmin_group = \"\"\n", in: dir) { socket in
            #expect(try await client.curl(socket, uid: 65534, "GET", "/v1/health").status == 0)
            let readerConfig = dir + "/reader.toml"
            try "[daemon]\nreader_group = \"nogroup\"\n".write(toFile: readerConfig, atomically: true, encoding: .utf8)
            let (status, output) = try await Checkout.runOffPool(
                [Checkout.sriovd, "socket-access", "--config", readerConfig, socket])
            #expect(status == 0, "\(output)")
            #expect(output.contains("group nogroup may connect to \(socket)"))
            let reader = try await client.curl(socket, uid: 65534, "GET", "/v1/health")
            #expect(reader.status == 403, "connected, and refused by sriovd's own check: \(reader.body)")
        }
    }
}
