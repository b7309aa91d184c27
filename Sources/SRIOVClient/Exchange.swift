import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One HTTP/1.1 exchange on a fresh connection to the daemon's Unix socket.
/// NIO does the work: its client bootstrap connects, its HTTP/1 codec writes
/// the request and reads the response, which arrives as a stream of parts.
extension SRIOVClient {
    /// Opens a connection, sends `request` and hands the response to `read`
    /// as soon as its head has arrived; the body is read as the daemon sends
    /// it, for as long as `read` goes on (`GET /v1/events` never ends: cancel
    /// the task to stop). The connection is closed when `read` returns.
    /// `timeout` bounds connecting and the head, not the body; no size limit
    /// applies to the body as a whole, only to each line of `lines`.
    public func withStreamingResponse<Value: Sendable>(
        _ request: Request, _ read: (StreamingResponse) async throws(ClientError) -> Value
    ) async throws(ClientError) -> Value {
        try await exchange(request, timeBoundsBody: false, bodyLimit: nil, read)
    }

    /// Sends `request` on a fresh connection and reads the whole response,
    /// all of it within `timeout` and `maxResponseSize`.
    public func send(_ request: Request) async throws(ClientError) -> Response {
        try await exchange(request, timeBoundsBody: true, bodyLimit: maxResponseSize) {
            response throws(ClientError) in try await response.collected()
        }
    }

    private typealias HTTPChannel = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    private func exchange<Value: Sendable>(
        _ request: Request, timeBoundsBody: Bool, bodyLimit: Int?,
        _ read: (StreamingResponse) async throws(ClientError) -> Value
    ) async throws(ClientError) -> Value {
        let head = try request.head(userAgent: Self.userAgent)
        guard !Task.isCancelled else { throw .cancelled }
        let channel = try await connect()
        let interruption = Interruption()
        let timer = channel.channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            interruption.interrupt(.timedOut, closing: channel.channel)
        }
        defer { timer.cancel() }
        do {
            return try await withTaskCancellationHandler {
                try await channel.executeThenClose { inbound, outbound in
                    // The daemon may refuse a request before reading all of it
                    // (413) and close: sending then fails, but its answer is
                    // there to read. The send's error counts only if none is.
                    var sendError: (any Error)?
                    do {
                        try await outbound.write(.head(head))
                        if let body = request.body, !body.isEmpty {
                            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
                        }
                        try await outbound.write(.end(nil))
                    } catch {
                        sendError = error
                    }
                    let reader = ResponseReader(inbound.makeAsyncIterator(), limit: bodyLimit, client: self)
                    let response: StreamingResponse
                    do {
                        response = StreamingResponse(head: try await reader.head(), reader: reader)
                    } catch {
                        // An answer that arrived unreadable says more than the
                        // failed send; no answer at all, and the send's error does.
                        if let sendError {
                            if let answer = error as? ClientError, case .malformedResponse(let reason) = answer,
                                reason != ResponseReader.closedUnanswered
                            {
                                throw answer
                            }
                            throw ClientError(sendError, during: .send, of: self)
                        }
                        throw error
                    }
                    if !timeBoundsBody { timer.cancel() }
                    return try await read(response)
                }
            } onCancel: {
                interruption.interrupt(.cancelled, closing: channel.channel)
            }
        } catch {
            switch interruption.reason {
            case .timedOut?: throw .timedOut(socketPath: socketPath, after: timeout)
            case .cancelled?: throw .cancelled
            case nil: throw ClientError(error, during: .recv, of: self)
            }
        }
    }

    /// A connection with NIO's HTTP/1 client codec, wrapped for async use.
    private func connect() async throws(ClientError) -> HTTPChannel {
        do {
            return try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(TimeAmount(timeout))
                .connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try HTTPChannel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw ClientError(error, during: .connect, of: self)
        }
    }
}

extension SRIOVClient {
    /// A response whose body is read as it arrives, inside
    /// `withStreamingResponse`: the status and header fields at once, then
    /// the body through `body` (pieces as they arrive) or `lines` (for
    /// newline-delimited JSON); one of them, once.
    public struct StreamingResponse {
        public let status: Int
        public let headers: Headers
        fileprivate let reader: ResponseReader

        fileprivate init(head: HTTPResponseHead, reader: ResponseReader) {
            status = Int(head.status.code)
            headers = head.headers
            self.reader = reader
        }

        /// 2xx.
        public var isSuccess: Bool { (200..<300).contains(status) }

        /// The body in pieces, as the daemon's writes arrive.
        public var body: Body { Body(reader: reader) }

        /// The body as lines, without their `\n` (or `\r\n`); a last line
        /// without one counts too. A line longer than the client's
        /// `maxResponseSize` is refused.
        public var lines: Lines { Lines(reader: reader) }

        /// The rest of the body, read to its end, as the buffered calls answer.
        public func collected() async throws(ClientError) -> Response {
            var bytes: [UInt8] = []
            while let chunk = try await reader.nextChunk() { bytes += chunk.readableBytesView }
            return Response(status: status, headers: headers, body: bytes)
        }

        public struct Body: AsyncSequence {
            public typealias Element = [UInt8]
            public typealias Failure = ClientError
            fileprivate let reader: ResponseReader

            public struct AsyncIterator: AsyncIteratorProtocol {
                public typealias Failure = ClientError
                fileprivate let reader: ResponseReader

                public mutating func next() async throws(ClientError) -> [UInt8]? {
                    try await reader.nextChunk().map { Array($0.readableBytesView) }
                }
            }

            public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: reader) }
        }

        public struct Lines: AsyncSequence {
            public typealias Element = String
            public typealias Failure = ClientError
            fileprivate let reader: ResponseReader

            public struct AsyncIterator: AsyncIteratorProtocol {
                public typealias Failure = ClientError
                fileprivate let reader: ResponseReader
                private var pending: [UInt8] = []
                private var ended = false

                fileprivate init(reader: ResponseReader) { self.reader = reader }

                public mutating func next() async throws(ClientError) -> String? {
                    while true {
                        if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            var line = pending[..<newline]
                            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                            defer { pending.removeSubrange(...newline) }
                            return String(decoding: line, as: UTF8.self)
                        }
                        guard pending.count <= reader.client.maxResponseSize else {
                            throw .responseTooLarge(limit: reader.client.maxResponseSize)
                        }
                        if ended {
                            guard !pending.isEmpty else { return nil }
                            defer { pending = [] }
                            return String(decoding: pending, as: UTF8.self)
                        }
                        if let chunk = try await reader.nextChunk() {
                            pending += chunk.readableBytesView
                        } else {
                            ended = true
                        }
                    }
                }
            }

            public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: reader) }
        }
    }
}

/// The response parts of one connection, as NIO's codec decodes them, read
/// in order: the head once, then body pieces until the end.
private final class ResponseReader {
    private var parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    /// The most bytes the body may have; nil: no limit.
    private let limit: Int?
    let client: SRIOVClient
    private var received = 0
    private var ended = false

    init(_ parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator, limit: Int?, client: SRIOVClient) {
        self.parts = parts
        self.limit = limit
        self.client = client
    }

    /// The final response's head (NIO's codec drops interim 1xx responses).
    static let closedUnanswered = "sriovd closed the connection without answering"

    func head() async throws(ClientError) -> HTTPResponseHead {
        switch try await next() {
        case .head(let head)?:
            if let limit, let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                throw .responseTooLarge(limit: limit)
            }
            return head
        case nil:
            throw .malformedResponse(Self.closedUnanswered)
        case .body?, .end?:
            throw .malformedResponse("sriovd sent a body before a status line")
        }
    }

    /// The next piece of the body; nil at its end.
    func nextChunk() async throws(ClientError) -> ByteBuffer? {
        guard !ended else { return nil }
        switch try await next() {
        case .body(let piece)?:
            received += piece.readableBytes
            if let limit, received > limit { throw .responseTooLarge(limit: limit) }
            return piece
        case .end?:
            ended = true
            return nil
        case nil:
            throw .malformedResponse("sriovd closed the connection before the response was complete")
        case .head?:
            throw .malformedResponse("sriovd sent a second response before the first was complete")
        }
    }

    private func next() async throws(ClientError) -> HTTPClientResponsePart? {
        do {
            return try await parts.next()
        } catch {
            throw ClientError(error, during: .recv, of: client)
        }
    }
}

/// Why an exchange was stopped from outside: its deadline passed, or the
/// waiting task was cancelled. The first reason wins and closes the channel,
/// which ends whatever the exchange was waiting for.
private final class Interruption: Sendable {
    enum Reason { case timedOut, cancelled }

    private let state = Mutex<Reason?>(nil)

    func interrupt(_ reason: Reason, closing channel: any Channel) {
        let first = state.withLock { state in
            guard state == nil else { return false }
            state = reason
            return true
        }
        if first { channel.close(promise: nil) }
    }

    var reason: Reason? { state.withLock { $0 } }
}

extension TimeAmount {
    /// `duration`, to the nanosecond.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
