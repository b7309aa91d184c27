import NIOCore
import NIOHTTP1
import NIOPosix
import SRIOVAPI
import SRIOVCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A client of sriovd's HTTP/1.1 + JSON API on its Unix socket.
///
/// Every call opens a connection, sends one request with `Connection: close`
/// and reads the response, whole or as a stream (`withStreamingResponse`).
/// SwiftNIO does the I/O on its event loops, never blocking a thread of the
/// concurrency pool, so the calls can be awaited from anywhere, including
/// tests that run the daemon in the same process. Cancelling the awaiting
/// task closes the connection.
///
/// Types of this module that other modules also name (`Response`, `Method`,
/// `Health`...) are nested here, so `SRIOVClient.Response` never collides
/// with, say, HTTPTypes' `HTTPResponse`.
public struct SRIOVClient: Sendable {
    public static let defaultSocketPath = "/run/sriovd/sriovd.sock"
    public static let defaultTimeout: Duration = .seconds(30)
    public static let defaultMaxResponseSize = 16 * 1024 * 1024
    static let userAgent = "sriovd-client/0.1.0"

    public var socketPath: String
    /// How long one request may take, from connecting to the last byte of the response.
    public var timeout: Duration
    /// The most bytes a response's body may have (NIO's codec bounds the head).
    public var maxResponseSize: Int
    /// Where the connections run: NIO's shared event loops unless told otherwise.
    public var eventLoopGroup: any EventLoopGroup

    public init(
        socketPath: String = SRIOVClient.defaultSocketPath, timeout: Duration = SRIOVClient.defaultTimeout,
        maxResponseSize: Int = SRIOVClient.defaultMaxResponseSize,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.socketPath = socketPath
        self.timeout = timeout
        self.maxResponseSize = maxResponseSize
        self.eventLoopGroup = eventLoopGroup
    }

    /// `GET /v1/health`.
    public func health() async throws(ClientError) -> Health {
        try await get(.health).decode(Health.self)
    }

    /// `GET /v1/pfs`: every SR-IOV physical function the daemon sees.
    public func pfs() async throws(ClientError) -> [PhysicalFunction] {
        try await get(.pfs).decode(PFList.self).pfs
    }

    /// `GET /v1/pfs/{address}`: one PF with its VFs. A PF the daemon does not
    /// know is `ClientError.api` with status 404.
    public func pf(_ address: PCIAddress) async throws(ClientError) -> PhysicalFunctionDetail {
        try await get(.pf(address)).decode(PhysicalFunctionDetail.self)
    }

    /// `GET /v1/vfs`: the VFs of every PF, or of `pf` only.
    public func vfs(pf: PCIAddress? = nil) async throws(ClientError) -> [VirtualFunction] {
        try await get(.vfs(pf: pf)).decode(VFList.self).vfs
    }

    /// GETs `endpoint` and returns the response when it is a 2xx; any other
    /// status is thrown as `ClientError.api` or `.forbidden`.
    public func get(_ endpoint: Endpoint) async throws(ClientError) -> Response {
        try await send(Request(method: .get, path: endpoint.path)).checked()
    }

    /// Sends any request and returns the response whatever its status; use
    /// `Response.checked()` to turn an error status into a `ClientError`.
    /// A body is sent as `application/json` unless `headers` says otherwise.
    public func request(
        method: Method, path: String, body: [UInt8]? = nil, headers: Headers = [:]
    ) async throws(ClientError) -> Response {
        try await send(Request(method: method, path: path, headers: headers, body: body))
    }

    /// Sends `json` encoded as the body of any request; returns the response whatever its status.
    public func request(method: Method, path: String, json: some Encodable) async throws(ClientError) -> Response {
        try await request(method: method, path: path, body: try Request.jsonBody(json))
    }
}

extension SRIOVClient {
    /// A resource of the API, as a request path.
    public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
        public let path: String

        public static let health = Endpoint(path: "/v1/health")
        public static let pfs = Endpoint(path: "/v1/pfs")

        /// PCI addresses need no escaping: `:` and `.` are allowed in paths and queries.
        public static func pf(_ address: PCIAddress) -> Endpoint { Endpoint(path: "/v1/pfs/\(address)") }

        public static func vfs(pf: PCIAddress?) -> Endpoint {
            Endpoint(path: pf.map { "/v1/vfs?pf=\($0)" } ?? "/v1/vfs")
        }

        public var description: String { path }
    }

    // The API's bodies, defined once in SRIOVAPI for the daemon and this client.
    public typealias Health = SRIOVAPI.Health
    typealias PFList = SRIOVAPI.PFList
    typealias VFList = SRIOVAPI.VFList
    typealias AssignmentList = SRIOVAPI.AssignmentList
}

extension SRIOVClient.Response {
    /// The body decoded from JSON; a body that does not fit is a malformed
    /// response. Dates are ISO 8601, as the daemon writes them.
    public func decode<T: Decodable>(_ type: T.Type) throws(ClientError) -> T {
        do {
            return try APIJSON.decoder().decode(T.self, from: Data(body))
        } catch let error as DecodingError {
            throw .malformedResponse(describe(error))
        } catch {
            throw .malformedResponse("\(error)")
        }
    }

    /// The JSON body re-indented with its keys sorted, as jq prints it, so
    /// that scripts and diffs see a stable text whatever order the daemon
    /// wrote. Every member is kept, including ones this client does not know.
    public func prettyPrintedJSON() throws(ClientError) -> String {
        try decode(JSONValue.self).prettyPrinted
    }
}
