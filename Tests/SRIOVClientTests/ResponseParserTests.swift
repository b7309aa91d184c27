import Testing

@testable import SRIOVClient

@Suite("Reading HTTP/1.1 responses")
struct ResponseParserTests {
    /// Parses `text` as it would arrive in one read and, again, one byte per
    /// read, then the end of the connection if it is not complete by then.
    /// Both must give the same response or the same error.
    func parse(_ text: String, method: SRIOVClient.Method = .get, limit: Int = 1 << 20) throws(ClientError)
        -> SRIOVClient.Response
    {
        func read(_ pieces: [[UInt8]]) -> Result<SRIOVClient.Response, ClientError> {
            var parser = ResponseParser(requestMethod: method, maxResponseSize: limit)
            return Result { () throws(ClientError) in
                for piece in pieces {
                    if let response = try parser.consume(piece) { return response }
                }
                return try parser.finish()
            }
        }
        let whole = read([Array(text.utf8)])
        let byteByByte = read(text.utf8.map { [$0] })
        #expect(whole == byteByByte, "reading in one piece and byte by byte differ")
        return try whole.get()
    }

    @Test func contentLengthBodyEndsAtItsLengthWhateverFollows() throws {
        let response = try parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA")
        #expect(response.status == 200)
        #expect(response.reason == "OK")
        #expect(response.text == "hello")
    }

    @Test func headerNamesMatchInAnyCaseAndValuesAreTrimmed() throws {
        let response = try parse("HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh:   2 \r\nX-Multi: a\r\nx-multi: b\r\n\r\nok")
        #expect(response.headers["content-length"] == "2")
        #expect(response.headers.values(named: "X-MULTI") == ["a", "b"])
        #expect(response.text == "ok")
    }

    @Test func chunkedBodyIsJoinedAndTrailersSkipped() throws {
        let response = try parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: x\r\n\r\n"
        )
        #expect(response.text == "Wikipedia in\r\n\r\nchunks.")
    }

    @Test func bareLineFeedsAreAccepted() throws {
        #expect(try parse("HTTP/1.1 200 OK\nContent-Length: 2\n\nok").text == "ok")
    }

    @Test func interimResponseIsSkipped() throws {
        let response = try parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        #expect(response.status == 201)
    }

    @Test(arguments: ["HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", "HTTP/1.1 304 Not Modified\r\n\r\n"])
    func statusWithoutContentHasNoBody(head: String) throws {
        #expect(try parse(head + "ignored").body.isEmpty)
    }

    @Test func headResponseHasNoBodyWhateverItsLength() throws {
        let response = try parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method: .head)
        #expect(response.body.isEmpty)
    }

    @Test func statusLineWithoutReasonIsAccepted() throws {
        let response = try parse("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")
        #expect(response.status == 404)
        #expect(response.reason == "")
    }

    @Test(arguments: [
        ("HTTP/2 200 OK\r\n\r\n", "is not an HTTP/1.1 status line"),
        ("HTTP/1.1 2000 OK\r\n\r\n", "is not an HTTP/1.1 status line"),
        ("hello\r\n\r\n", "is not an HTTP/1.1 status line"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "is not one decimal length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "is not one decimal length"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "is not supported"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "is not a hex number"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nab\r\n0\r\n\r\n", "is not a hex number"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "longer than its chunk size"),
        ("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "obsolete line folding"),
        ("HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n", "is not a header field"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "before the response was complete"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "before the response was complete"),
        ("HTTP/1.1 200 OK\r\nContent-Le", "before the response was complete"),
    ])
    func malformedResponsesAreRefusedWithTheReason(text: String, reason: String) {
        let error = #expect(throws: ClientError.self) { try parse(text) }
        guard case .malformedResponse(let message) = error else {
            Issue.record("expected a malformed response, got \(String(describing: error))")
            return
        }
        #expect(message.contains(reason), "\(message)")
    }

    @Test func headLargerThanItsLimitIsRefused() {
        let text = "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "a", count: ResponseParser.maxHeadSize) + "\r\n\r\n"
        #expect(throws: ClientError.malformedResponse("the status line and header fields exceed 65536 bytes")) {
            try parse(text, limit: 1 << 20)
        }
    }

    @Test func announcedLengthAboveTheLimitIsRefusedBeforeReading() {
        #expect(throws: ClientError.responseTooLarge(limit: 100)) {
            try parse("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", limit: 100)
        }
    }

    @Test func chunkedBodyAboveTheLimitIsRefused() {
        #expect(throws: ClientError.responseTooLarge(limit: 100)) {
            try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFF\r\n", limit: 100)
        }
    }
}

@Suite("Writing HTTP/1.1 requests")
struct RequestSerializationTests {
    @Test func getHasNoContentFraming() throws {
        let bytes = try SRIOVClient.Request(method: .get, path: "/v1/pfs").serialized()
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == "GET /v1/pfs HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sriovd-client/0.1.0\r\nConnection: close\r\n"
                + "Accept: application/json, application/problem+json\r\n\r\n")
    }

    @Test func putWithoutBodySaysItsLengthIsZero() throws {
        let text = String(decoding: try SRIOVClient.Request(method: .put, path: "/v1/x").serialized(), as: UTF8.self)
        #expect(text.contains("\r\nContent-Length: 0\r\n"))
        #expect(!text.contains("Content-Type"))
    }

    @Test func callersContentTypeReplacesJSON() throws {
        let request = SRIOVClient.Request(
            method: .post, path: "/v1/x", headers: ["Content-Type": "text/plain"], body: Array("hi".utf8))
        let text = String(decoding: try request.serialized(), as: UTF8.self)
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
    func requestsThatWouldBreakTheFramingAreRefused(request: SRIOVClient.Request) {
        let error = #expect(throws: ClientError.self) { try request.serialized() }
        guard case .invalidRequest = error else {
            Issue.record("expected an invalid request, got \(String(describing: error))")
            return
        }
    }
}
