import NIOHTTP1
import Testing

@testable import SRIOVClient

/// What the client makes of the bytes a daemon sends, read by NIO's HTTP/1
/// codec off a real Unix socket: each response is sent whole and, again, in
/// pieces of three bytes, and both must give the same response or error.
@Suite("Reading HTTP/1.1 responses over the socket")
struct HTTPExchangeTests {
    func exchange(
        _ text: String, method: SRIOVClient.Method = .get, limit: Int = 1 << 20
    ) async throws(ClientError) -> SRIOVClient.Response {
        func read(_ pieces: [[UInt8]]) async -> Result<SRIOVClient.Response, ClientError> {
            guard let daemon = try? FakeDaemon(.pieces(pieces)) else {
                return .failure(.invalidRequest("the fake daemon did not start"))
            }
            defer { daemon.stop() }
            let client = SRIOVClient(socketPath: daemon.socketPath, timeout: .seconds(10), maxResponseSize: limit)
            do {
                return .success(try await client.send(.init(method: method, path: "/v1/x")))
            } catch {
                return .failure(error)
            }
        }
        let bytes = Array(text.utf8)
        let whole = await read([bytes])
        let inPieces = await read(stride(from: 0, to: bytes.count, by: 3).map { Array(bytes[$0..<min($0 + 3, bytes.count)]) })
        #expect(whole == inPieces, "reading in one piece and in pieces differ")
        return try whole.get()
    }

    @Test func contentLengthBodyEndsAtItsLength() async throws {
        let response = try await exchange("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        #expect(response.status == 200)
        #expect(response.reason == "OK")
        #expect(response.text == "hello")
    }

    @Test func headerNamesMatchInAnyCaseAndPaddedValuesAreRead() async throws {
        let response = try await exchange(
            "HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh:   2 \r\nX-Multi: a\r\nx-multi: b\r\n\r\nokEXTRA")
        // The padded length frames the body: what follows it is not read.
        #expect(response.text == "ok")
        #expect(response.headers["X-MULTI"] == ["a", "b"])
    }

    @Test func chunkedBodyIsJoinedAndTrailersSkipped() async throws {
        let response = try await exchange(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: x\r\n\r\n"
        )
        #expect(response.text == "Wikipedia in\r\n\r\nchunks.")
    }

    @Test func bodyWithoutLengthEndsWithTheConnection() async throws {
        #expect(try await exchange("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close").text == "until close")
    }

    @Test func interimResponseIsSkipped() async throws {
        let response = try await exchange(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        #expect(response.status == 201)
    }

    @Test(arguments: ["HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\n\r\n"])
    func statusWithoutContentHasNoBody(head: String) async throws {
        #expect(try await exchange(head).body.isEmpty)
    }

    @Test func headResponseHasNoBodyWhateverItsLength() async throws {
        let response = try await exchange("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method: .head)
        #expect(response.body.isEmpty)
    }

    @Test func statusLineWithoutReasonIsAcceptedAndNamedByItsStatus() async throws {
        let response = try await exchange("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")
        #expect(response.status == 404)
        #expect(response.reason == "Not Found")
    }

    @Test(arguments: [
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "hello\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Le",
    ])
    func malformedResponsesAreRefused(text: String) async {
        let error = await #expect(throws: ClientError.self) { try await exchange(text) }
        guard case .malformedResponse = error else {
            Issue.record("expected a malformed response, got \(String(describing: error))")
            return
        }
        #expect(error?.exitStatus == 76)
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ])
    func responseCutShortSaysSo(text: String) async {
        await #expect(
            throws: ClientError.malformedResponse("sriovd closed the connection before the response was complete")
        ) { try await exchange(text) }
    }

    @Test func announcedLengthAboveTheLimitIsRefusedBeforeReading() async {
        await #expect(throws: ClientError.responseTooLarge(limit: 100)) {
            try await exchange("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", limit: 100)
        }
    }

    @Test func chunkedBodyAboveTheLimitIsRefused() async {
        let chunk = String(repeating: "a", count: 60)
        await #expect(throws: ClientError.responseTooLarge(limit: 100)) {
            try await exchange(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3C\r\n\(chunk)\r\n3C\r\n\(chunk)\r\n0\r\n\r\n",
                limit: 100)
        }
    }
}

@Suite("Writing HTTP/1.1 requests")
struct RequestWritingTests {
    /// The request as the fake daemon read it off the socket.
    func sent(_ request: SRIOVClient.Request) async throws -> String {
        let daemon = try FakeDaemon(.text("HTTP/1.1 204 No Content\r\n\r\n"))
        defer { daemon.stop() }
        _ = try await SRIOVClient(socketPath: daemon.socketPath).send(request)
        return try #require(daemon.requests.first)
    }

    @Test func getHasNoContentFraming() async throws {
        #expect(
            try await sent(SRIOVClient.Request(method: .get, path: "/v1/pfs"))
                == "GET /v1/pfs HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sriovd-client/0.1.0\r\nConnection: close\r\n"
                + "Accept: application/json, application/problem+json\r\n\r\n")
    }

    @Test func putWithoutBodySaysItsLengthIsZero() async throws {
        let text = try await sent(SRIOVClient.Request(method: .put, path: "/v1/x"))
        #expect(text.contains("\r\nContent-Length: 0\r\n"))
        #expect(!text.contains("Content-Type"))
        #expect(!text.lowercased().contains("transfer-encoding"))
    }

    @Test func callersContentTypeReplacesJSON() async throws {
        let request = SRIOVClient.Request(
            method: .post, path: "/v1/x", headers: ["Content-Type": "text/plain"], body: Array("hi".utf8))
        let text = try await sent(request)
        #expect(!text.contains("application/json\r\nContent-Length"))
        #expect(text.hasSuffix("Content-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi"))
    }

    @Test(arguments: [
        SRIOVClient.Request(method: .get, path: "v1/pfs"),
        SRIOVClient.Request(method: .get, path: "/v1/pfs HTTP/1.1\r\nX: y"),
        SRIOVClient.Request(method: "GET /", path: "/v1/pfs"),
        SRIOVClient.Request(method: .get, path: "/v1/pfs", headers: ["Content-Length": "5"]),
        SRIOVClient.Request(method: .get, path: "/v1/pfs", headers: ["X-Note": "a\r\nInjected: 1"]),
    ])
    func requestsThatWouldBreakTheFramingAreRefusedBeforeConnecting(request: SRIOVClient.Request) async {
        // No daemon: a refused request never reaches the socket.
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: "/nonexistent/sriovd.sock").send(request)
        }
        guard case .invalidRequest = error else {
            Issue.record("expected an invalid request, got \(String(describing: error))")
            return
        }
    }
}
