import NIOHTTP1
import SRIOVAPI

extension SRIOVClient {
    /// An HTTP request method. Any token is allowed; the ones the API uses are named.
    public struct Method: OpenName {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        public static let get: Method = "GET"
        public static let head: Method = "HEAD"
        public static let post: Method = "POST"
        public static let put: Method = "PUT"
        public static let patch: Method = "PATCH"
        public static let delete: Method = "DELETE"

        /// Whether a request with this method is expected to carry content,
        /// so an empty one is sent with `Content-Length: 0`.
        var expectsContent: Bool { self == .post || self == .put || self == .patch }
    }

    /// Header fields, as NIO keeps them: in order, names compared in any case.
    public typealias Headers = HTTPHeaders

    /// A request to the daemon. `Host`, `Connection`, `Accept`, `User-Agent`
    /// and the content framing are added when it is sent.
    public struct Request: Equatable, Sendable {
        public var method: Method
        /// The request target: an absolute path with an optional query, e.g. `/v1/vfs?pf=0000:01:00.0`.
        public var path: String
        /// Extra header fields, such as a `Content-Type` other than JSON.
        public var headers: Headers
        public var body: [UInt8]?

        public init(method: Method, path: String, headers: Headers = [:], body: [UInt8]? = nil) {
            self.method = method
            self.path = path
            self.headers = headers
            self.body = body
        }

        /// The fields this client always sets itself.
        static let reservedFields: Set<String> = ["host", "connection", "content-length", "transfer-encoding"]

        /// The request head as NIO's encoder writes it. Refuses what would
        /// break the framing before anything is sent: a method that is not a
        /// token, spaces or control characters in the target, header fields
        /// this client sets itself or with control characters.
        func head(userAgent: String) throws(ClientError) -> HTTPRequestHead {
            guard !method.rawValue.isEmpty, method.rawValue.utf8.allSatisfy(isTokenByte) else {
                throw .invalidRequest("method \"\(method)\" is not an HTTP token")
            }
            guard path.hasPrefix("/"), path.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
                throw .invalidRequest("path \"\(path)\" must start with / and contain no spaces or control characters")
            }
            for (name, value) in headers {
                guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                    throw .invalidRequest("header name \"\(name)\" is not an HTTP token")
                }
                guard !Self.reservedFields.contains(name.lowercased()) else {
                    throw .invalidRequest("header \(name) is set by the client itself")
                }
                guard value.utf8.allSatisfy({ $0 >= 0x20 || $0 == 0x09 }), !value.utf8.contains(0x7F) else {
                    throw .invalidRequest("header \(name) has a control character in its value")
                }
            }
            var fields: HTTPHeaders = ["Host": "localhost", "User-Agent": userAgent, "Connection": "close"]
            if !headers.contains(name: "accept") {
                fields.add(name: "Accept", value: "application/json, application/problem+json")
            }
            if let body {
                if !headers.contains(name: "content-type") { fields.add(name: "Content-Type", value: "application/json") }
                fields.add(name: "Content-Length", value: String(body.count))
            } else if method.expectsContent {
                fields.add(name: "Content-Length", value: "0")
            }
            fields.add(contentsOf: headers)
            return HTTPRequestHead(
                version: .http1_1, method: HTTPMethod(rawValue: method.rawValue), uri: path, headers: fields)
        }
    }

    /// A complete response from the daemon, whatever its status.
    public struct Response: Equatable, Sendable {
        public var status: Int
        /// The status's reason phrase. NIO's codec does not keep the one on
        /// the wire (RFC 9112 §4 lets clients ignore it): this is the standard one.
        public var reason: String
        public var headers: Headers
        public var body: [UInt8]

        public init(status: Int, reason: String? = nil, headers: Headers = [:], body: [UInt8] = []) {
            self.status = status
            self.reason = reason ?? standardReason(for: status)
            self.headers = headers
            self.body = body
        }

        /// 2xx.
        public var isSuccess: Bool { (200..<300).contains(status) }

        /// The body as text, with invalid UTF-8 repaired.
        public var text: String { String(decoding: body, as: UTF8.self) }

        /// This response when it is a success; otherwise the error it stands
        /// for (see `ClientError.init(response:)`).
        public func checked() throws(ClientError) -> Response {
            guard isSuccess else { throw ClientError(response: self) }
            return self
        }
    }
}

/// tchar of RFC 9110 §5.6.2.
func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
    }
}
