import NIOCore
import NIOPosix
import SRIOVCore
import Testing

@testable import SRIOVClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("SRIOVClient against a fake daemon on a Unix socket")
struct ClientExchangeTests {
    @Test func healthDecodesAContentLengthBodyAndSendsAMinimalRequest() async throws {
        let daemon = try FakeDaemon(.text(Fixture.response(body: Fixture.healthJSON)))
        defer { daemon.stop() }
        let health = try await SRIOVClient(socketPath: daemon.socketPath).health()
        #expect(health == SRIOVClient.Health(status: "ok", version: "0.1.0", pfCount: 2))
        let request = try #require(daemon.requests.first)
        #expect(request.hasPrefix("GET /v1/health HTTP/1.1\r\n"))
        #expect(request.contains("\r\nHost: localhost\r\n"))
        #expect(request.contains("\r\nConnection: close\r\n"))
        #expect(!request.contains("Content-Length"))
        #expect(request.hasSuffix("\r\n\r\n"))
    }

    @Test func pfsReassemblesAChunkedBodyArrivingInPieces() async throws {
        let body = Array(Fixture.pfsJSON.utf8)
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        // Three chunks, one with an extension, split mid-size-line and mid-data, then a trailer.
        let first = body[..<40]
        let second = body[40..<300]
        let third = body[300...]
        let pieces: [[UInt8]] = [
            Array(head.utf8) + Array("\(String(first.count, radix: 16));note=x\r\n".utf8) + first.prefix(10),
            Array(first.dropFirst(10)) + Array("\r\n\(String(second.count, radix: 16, uppercase: true))".utf8),
            Array("\r\n".utf8) + second + Array("\r\n\(String(third.count, radix: 16))\r\n".utf8) + third,
            Array("\r\n0\r\nX-Trailer: yes\r\n\r\n".utf8),
        ]
        let daemon = try FakeDaemon(.pieces(pieces))
        defer { daemon.stop() }
        let pfs = try await SRIOVClient(socketPath: daemon.socketPath).pfs()
        #expect(pfs == [Fixture.pf])
    }

    @Test func vfsAsksForOnePFAndReadsABodyThatEndsWithTheConnection() async throws {
        let daemon = try FakeDaemon(
            .text("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + Fixture.vfsJSON))
        defer { daemon.stop() }
        let vfs = try await SRIOVClient(socketPath: daemon.socketPath).vfs(pf: Fixture.address("0000:01:00.0"))
        #expect(daemon.requests.first?.hasPrefix("GET /v1/vfs?pf=0000:01:00.0 HTTP/1.1\r\n") == true)
        #expect(vfs.count == 2)
        #expect(vfs.first?.settings.vlan?.value == 100)
        #expect(vfs.first?.settings.linkState == .auto)
        // Absent keys: the driver did not report them.
        #expect(vfs.last?.driver == nil)
        #expect(vfs.last?.settings == VFSettings())
    }

    @Test func unknownPFIsAnAPIErrorCarryingTheProblemDocument() async throws {
        let daemon = try FakeDaemon(.text(Fixture.problem("404 Not Found", Fixture.notFoundProblem)))
        defer { daemon.stop() }
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: daemon.socketPath).pf(Fixture.address("0000:09:00.0"))
        }
        let problem = SRIOVClient.Problem(title: "Not Found", status: 404, detail: "no SR-IOV PF at 0000:09:00.0")
        #expect(error == .api(problem))
        #expect(error?.description == "Not Found: no SR-IOV PF at 0000:09:00.0")
        #expect(error?.exitStatus == 1)
        #expect(daemon.requests.first?.hasPrefix("GET /v1/pfs/0000:09:00.0 HTTP/1.1\r\n") == true)
    }

    @Test func status403IsForbiddenWithTheDaemonsExplanation() async throws {
        let problem = #"{"title":"Forbidden","status":403,"detail":"changing VFs needs membership of sriovd-admin"}"#
        let daemon = try FakeDaemon(.text(Fixture.problem("403 Forbidden", problem)))
        defer { daemon.stop() }
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: daemon.socketPath).pfs()
        }
        #expect(
            error
                == .forbidden(
                    .init(title: "Forbidden", status: 403, detail: "changing VFs needs membership of sriovd-admin")))
        #expect(error?.exitStatus == 77)
    }

    @Test func errorStatusWithoutAProblemDocumentIsStillReported() async throws {
        let daemon = try FakeDaemon(
            .text(Fixture.response("503 Service Unavailable", contentType: "text/plain", body: "netlink is down\n")))
        defer { daemon.stop() }
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: daemon.socketPath).health()
        }
        #expect(error == .api(.init(title: "Service Unavailable", status: 503, detail: "netlink is down")))
    }

    @Test func missingSocketMeansTheDaemonIsNotRunning() async throws {
        let directory = try makeTemporaryDirectory()
        defer { rmdir(directory) }
        let path = directory + "/sriovd.sock"
        let error = await #expect(throws: ClientError.self) { try await SRIOVClient(socketPath: path).health() }
        #expect(error == .daemonNotRunning(socketPath: path, code: ENOENT))
        #expect(
            error?.description == "sriovd is not running (no socket at \(path)); start it with systemctl start sriovd")
        #expect(error?.exitStatus == 69)
    }

    @Test func socketFileNobodyListensOnMeansTheDaemonIsNotRunning() async throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/sriovd.sock"
        close(try listeningSocket(at: path, listen: false))  // A daemon that died: its socket file stays.
        defer {
            unlink(path)
            rmdir(directory)
        }
        let error = await #expect(throws: ClientError.self) { try await SRIOVClient(socketPath: path).pfs() }
        #expect(error == .daemonNotRunning(socketPath: path, code: ECONNREFUSED))
        #expect(error?.description.contains("nothing is listening on \(path)") == true)
    }

    /// Root passes every permission check through CAP_DAC_OVERRIDE. A
    /// file-system uid other than 0 drops that capability, for the calling
    /// thread only: here the one thread of the event loop the client
    /// connects on, so the connect meets the kernel's real EACCES.
    @Test func socketClosedToTheCallerIsPermissionDenied() async throws {
        let daemon = try FakeDaemon(.text(Fixture.response(body: Fixture.healthJSON)))
        defer { daemon.stop() }
        chmod(daemon.socketPath, 0)
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let previous = try await loop.next().submit { getuid() == 0 ? setFileSystemUID(65534) : nil }.get()
        let client = SRIOVClient(socketPath: daemon.socketPath, timeout: .seconds(5), eventLoopGroup: loop)
        await #expect(throws: ClientError.permissionDenied(socketPath: daemon.socketPath, socketGroup: nil)) {
            try await client.health()
        }
        if let previous { _ = try await loop.next().submit { setFileSystemUID(previous) }.get() }
        try await loop.shutdownGracefully()
        #expect(daemon.requests.isEmpty)
    }

    @Test func daemonThatNeverAnswersTimesOut() async throws {
        let daemon = try FakeDaemon(.silence)
        defer { daemon.stop() }
        let client = SRIOVClient(socketPath: daemon.socketPath, timeout: .milliseconds(300))
        let start = ContinuousClock.now
        let error = await #expect(throws: ClientError.self) { try await client.health() }
        let elapsed = ContinuousClock.now - start
        #expect(error == .timedOut(socketPath: daemon.socketPath, after: .milliseconds(300)))
        #expect(error?.description == "sriovd did not answer within 0.3 s on \(daemon.socketPath)")
        #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(5))
    }

    @Test func cancellingTheWaitingTaskEndsTheExchange() async throws {
        let daemon = try FakeDaemon(.silence)
        defer { daemon.stop() }
        let client = SRIOVClient(socketPath: daemon.socketPath, timeout: .seconds(60))
        let start = ContinuousClock.now
        let task = Task { () throws(ClientError) in try await client.pfs() }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        let result = await task.result
        #expect(throws: ClientError.cancelled) { try result.get() }
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    @Test func responseAboveTheSizeLimitIsRefused() async throws {
        let daemon = try FakeDaemon(.text(Fixture.response(body: String(repeating: " ", count: 4096))))
        defer { daemon.stop() }
        let client = SRIOVClient(socketPath: daemon.socketPath, maxResponseSize: 1024)
        await #expect(throws: ClientError.responseTooLarge(limit: 1024)) { try await client.health() }
    }

    @Test func bodyThatIsNotTheExpectedJSONIsAMalformedResponse() async throws {
        let daemon = try FakeDaemon(.text(Fixture.response(body: #"{"status":"ok","version":"0.1.0"}"#)))
        defer { daemon.stop() }
        await #expect(throws: ClientError.malformedResponse("pfCount is missing")) {
            try await SRIOVClient(socketPath: daemon.socketPath).health()
        }
    }

    @Test func daemonClosingWithoutAnsweringIsAMalformedResponse() async throws {
        let daemon = try FakeDaemon(.pieces([]))
        defer { daemon.stop() }
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: daemon.socketPath).health()
        }
        #expect(error == .malformedResponse("sriovd closed the connection without answering"))
        #expect(error?.exitStatus == 76)
    }

    @Test func requestSendsAJSONBodyWithItsLength() async throws {
        struct Change: Encodable { var trust: Bool }
        let daemon = try FakeDaemon(.text("HTTP/1.1 204 No Content\r\n\r\n"))
        defer { daemon.stop() }
        let response = try await SRIOVClient(socketPath: daemon.socketPath)
            .request(method: .patch, path: "/v1/pfs/0000:01:00.0/vfs/0", json: Change(trust: true))
        #expect(response.status == 204)
        #expect(response.body.isEmpty)
        let request = try #require(daemon.requests.first)
        #expect(request.hasPrefix("PATCH /v1/pfs/0000:01:00.0/vfs/0 HTTP/1.1\r\n"))
        #expect(request.contains("\r\nContent-Type: application/json\r\n"))
        #expect(request.contains("\r\nContent-Length: 14\r\n"))
        #expect(request.hasSuffix("\r\n\r\n{\"trust\":true}"))
    }

    @Test func answerSentBeforeTheDaemonReadTheBodyIsStillRead() async throws {
        let problem = #"{"title":"Content Too Large","status":413,"detail":"the body may have at most 1 MiB"}"#
        let answer = Array(Fixture.problem("413 Content Too Large", problem).utf8)
        let daemon = try FakeDaemon(.beforeTheBody(answer))
        defer { daemon.stop() }
        // Far more than the socket buffers hold, so the send meets the closed connection.
        let body = [UInt8](repeating: UInt8(ascii: " "), count: 8 << 20)
        let client = SRIOVClient(socketPath: daemon.socketPath)
        let response = try await client.request(method: .put, path: "/v1/config", body: body)
        let expected = SRIOVClient.Problem(
            title: "Content Too Large", status: 413, detail: "the body may have at most 1 MiB")
        #expect(throws: ClientError.api(expected)) { try response.checked() }
    }

    @Test func rawRequestReturnsAnErrorStatusWithoutThrowing() async throws {
        let daemon = try FakeDaemon(.text(Fixture.problem("404 Not Found", Fixture.notFoundProblem)))
        defer { daemon.stop() }
        let response = try await SRIOVClient(socketPath: daemon.socketPath).request(
            method: .delete, path: "/v1/pfs/0000:09:00.0")
        #expect(response.status == 404)
        #expect(response.headers.first(name: "CONTENT-TYPE") == "application/problem+json")
        #expect(throws: ClientError.self) { try response.checked() }
    }
}
