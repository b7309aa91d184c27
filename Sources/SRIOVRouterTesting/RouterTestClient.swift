import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded

// Test support (no product ships it): drives an application's router in-process: each request is handed to the
// responder as a `Request` with its body already in memory, and the response
// body is written into a buffer. No server, no socket, no HTTP client, so the
// tests need nothing of an HTTP client stack (TLS, HTTP/2). What the socket
// itself does (peer credentials, framing) is tested over the Unix socket with
// `SRIOVClient`.

/// How `test(_:_:)` reaches the application. `.router` is the one way: the
/// router in-process. It is spelled out so a call says what it tests.
public enum TestingSetup: Sendable {
    case router
}

/// A response as the router produced it, its body written out whole.
public struct TestResponse: Sendable {
    public let head: HTTPResponse
    /// Every chunk the body wrote, in order: a streamed body (the event
    /// stream) gives one chunk per write.
    public let body: ByteBuffer
    /// Trailers passed to the body writer's `finish`.
    public let trailerHeaders: HTTPFields?

    public var status: HTTPResponse.Status { head.status }
    public var headers: HTTPFields { head.headerFields }
}

/// A client that sends requests to an application under test. The tests take
/// `any TestClientProtocol` so they need not name the router's context type.
public protocol TestClientProtocol: Sendable {
    func executeRequest(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?)
        async throws -> TestResponse
}

extension TestClientProtocol {
    /// Sends one request and hands its response to `check`; returns what
    /// `check` returns (the response itself by default).
    @discardableResult
    public func execute<Value>(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil,
        _ check: (TestResponse) async throws -> Value = { $0 }
    ) async throws -> Value {
        try await check(try await executeRequest(uri: uri, method: method, headers: headers, body: body))
    }
}

public enum RouterTestError: Error, CustomStringConvertible {
    /// The application has services to run; the router client runs none.
    case servicesNotRun(count: Int)
    /// The response body stopped writing without `finish`: over a socket
    /// the response would never end.
    case bodyNotFinished(uri: String, written: Int)

    public var description: String {
        switch self {
        case .servicesNotRun(let count):
            "the application has \(count) service(s); the router test client runs none"
        case .bodyNotFinished(let uri, let written):
            "the response body of \(uri) returned after \(written) bytes without finishing"
        }
    }
}

extension ApplicationProtocol {
    /// Runs `body` with a client whose requests go straight to this
    /// application's responder, after the application's before-start
    /// processes.
    public func test<Value>(
        _ setup: TestingSetup, _ body: @Sendable (any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        guard services.isEmpty else { throw RouterTestError.servicesNotRun(count: services.count) }
        for process in processesRunBeforeServerStart {
            try await process()
        }
        return try await body(RouterTestClient(responder: try await responder, logger: logger))
    }
}

/// Hands each request to a responder in the caller's task, so task-local
/// values set around `execute` are seen by the request context.
struct RouterTestClient<Responder: HTTPResponder>: TestClientProtocol
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let responder: Responder
    let logger: Logger

    func executeRequest(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?)
        async throws -> TestResponse
    {
        var headers = headers
        if let body { headers[.contentLength] = String(body.readableBytes) }
        let request = Request(
            head: HTTPRequest(method: method, scheme: "http", authority: "localhost", path: uri, headerFields: headers),
            body: RequestBody(buffer: body ?? ByteBuffer()))
        // A channel that is no socket: the context finds no peer credentials
        // on it, as on any connection that is not a Unix socket.
        let context = Responder.Context(source: ApplicationRequestContextSource(channel: NIOAsyncTestingChannel(), logger: logger))
        let response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch {
            // The router turns errors that carry a status into responses;
            // what escapes it is a 500, as the server answers.
            logger.error("responder threw", metadata: ["uri": "\(uri)", "error": "\(error)"])
            response = Response(status: .internalServerError)
        }
        let writer = CollectingBodyWriter()
        try await response.body.write(writer)
        guard writer.finished else {
            throw RouterTestError.bodyNotFinished(uri: uri, written: writer.body.readableBytes)
        }
        return TestResponse(head: response.head, body: writer.body, trailerHeaders: writer.trailers)
    }
}

/// Appends what a response body writes. Used from one task only.
private final class CollectingBodyWriter: ResponseBodyWriter {
    var body = ByteBuffer()
    var trailers: HTTPFields?
    var finished = false

    func write(_ buffer: ByteBuffer) async throws {
        body.writeImmutableBuffer(buffer)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {
        trailers = trailingHeaders
        finished = true
    }
}
