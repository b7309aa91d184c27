import Testing

@testable import SRIOVClient

/// A response read as it arrives, as `GET /v1/events` will need:
/// newline-delimited JSON in chunked transfer coding that does not end.
@Suite("Streaming responses")
struct StreamingResponseTests {
    static let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"

    /// One chunk of chunked transfer coding.
    static func chunk(_ text: String) -> [UInt8] {
        Array("\(String(text.utf8.count, radix: 16))\r\n\(text)\r\n".utf8)
    }

    static let events = [#"{"event":"vfChanged","vf":"0000:01:10.0"}"#, #"{"event":"linkDown","pf":"0000:01:00.0"}"#, "{}"]

    /// Lines split across chunks, two lines in one chunk, a CRLF ending;
    /// each piece 100 ms after the last, and then the stream stays open.
    static let pieces: [[UInt8]] = [
        Array(head.utf8) + chunk(String(events[0].prefix(10))),
        chunk(String(events[0].dropFirst(10)) + "\n"),
        chunk(events[1] + "\r\n" + events[2]),
        chunk("\n"),
    ]

    @Test func linesArriveWhileTheResponseGoesOnAndTheTimeoutBoundsOnlyTheHead() async throws {
        let daemon = try FakeDaemon(.stream(Self.pieces, pause: 100_000))
        defer { daemon.stop() }
        // 150 ms: less than the 300 ms the lines take to come.
        let client = SRIOVClient(socketPath: daemon.socketPath, timeout: .milliseconds(150))
        let start = ContinuousClock.now
        let (status, lines) = try await client.withStreamingResponse(.init(method: .get, path: "/v1/events")) {
            response throws(ClientError) in
            var lines: [String] = []
            for try await line in response.lines {
                lines.append(line)
                // The daemon never ends the response: stop at the third line.
                if lines.count == Self.events.count { break }
            }
            return (response.status, lines)
        }
        #expect(status == 200)
        #expect(lines == Self.events)
        #expect(ContinuousClock.now - start >= .milliseconds(250))
        #expect(daemon.requests.first?.hasPrefix("GET /v1/events HTTP/1.1\r\n") == true)
    }

    @Test func bodyPiecesArriveAsTheDaemonWritesThem() async throws {
        let daemon = try FakeDaemon(.stream([Array(Self.head.utf8) + Self.chunk("one"), Self.chunk("two")], pause: 50_000))
        defer { daemon.stop() }
        let pieces = try await SRIOVClient(socketPath: daemon.socketPath).withStreamingResponse(
            .init(method: .get, path: "/v1/events")
        ) { response throws(ClientError) in
            var pieces: [String] = []
            for try await piece in response.body {
                pieces.append(String(decoding: piece, as: UTF8.self))
                if pieces.joined() == "onetwo" { break }
            }
            return pieces
        }
        #expect(pieces == ["one", "two"])
    }

    @Test func theBufferedCallWaitsForAnEndThatNeverComesAndTimesOut() async throws {
        let daemon = try FakeDaemon(.stream(Self.pieces, pause: 10_000))
        defer { daemon.stop() }
        let client = SRIOVClient(socketPath: daemon.socketPath, timeout: .milliseconds(300))
        await #expect(throws: ClientError.timedOut(socketPath: daemon.socketPath, after: .milliseconds(300))) {
            try await client.send(.init(method: .get, path: "/v1/events"))
        }
    }

    @Test func cancellingTheReaderEndsAStream() async throws {
        let daemon = try FakeDaemon(.stream([Array(Self.head.utf8) + Self.chunk("{}\n")], pause: 0))
        defer { daemon.stop() }
        let client = SRIOVClient(socketPath: daemon.socketPath, timeout: .seconds(60))
        let task = Task { () throws(ClientError) -> Int in
            try await client.withStreamingResponse(.init(method: .get, path: "/v1/events")) {
                response throws(ClientError) in
                var count = 0
                for try await _ in response.lines { count += 1 }
                return count
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        await #expect(throws: ClientError.cancelled) { try await task.value }
    }

    @Test func anErrorStatusIsThereToReadBeforeTheBody() async throws {
        let daemon = try FakeDaemon(.text(Fixture.problem("404 Not Found", Fixture.notFoundProblem)))
        defer { daemon.stop() }
        let error = try await SRIOVClient(socketPath: daemon.socketPath).withStreamingResponse(
            .init(method: .get, path: "/v1/events")
        ) { response throws(ClientError) in
            response.isSuccess ? nil : ClientError(response: try await response.collected())
        }
        #expect(error?.description == "Not Found: no SR-IOV PF at 0000:09:00.0")
    }
}
