extension SRIOVClient {
    /// An HTTP request method. Any token is allowed; the ones the API uses are named.
    public struct Method: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
        public let rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }

        public static let get: Method = "GET"
        public static let head: Method = "HEAD"
        public static let post: Method = "POST"
        public static let put: Method = "PUT"
        public static let patch: Method = "PATCH"
        public static let delete: Method = "DELETE"

        public var description: String { rawValue }

        /// Whether a request with this method is expected to carry content,
        /// so an empty one is sent with `Content-Length: 0`.
        var expectsContent: Bool { self == .post || self == .put || self == .patch }
    }

    /// Header fields in the order they were sent or received. Names compare
    /// case-insensitively, as HTTP requires.
    public struct Headers: Hashable, Sendable, Sequence, ExpressibleByDictionaryLiteral {
        public struct Field: Hashable, Sendable {
            public var name: String
            public var value: String

            public init(name: String, value: String) {
                self.name = name
                self.value = value
            }
        }

        public private(set) var fields: [Field]

        public init(_ fields: [Field] = []) { self.fields = fields }

        public init(dictionaryLiteral elements: (String, String)...) {
            fields = elements.map { Field(name: $0.0, value: $0.1) }
        }

        public mutating func append(name: String, value: String) {
            fields.append(Field(name: name, value: value))
        }

        /// The first value of the field called `name`, in any case.
        public subscript(name: String) -> String? {
            let key = name.lowercased()
            return fields.first { $0.name.lowercased() == key }?.value
        }

        /// Every value of the field called `name`, in any case, in order.
        public func values(named name: String) -> [String] {
            let key = name.lowercased()
            return fields.filter { $0.name.lowercased() == key }.map(\.value)
        }

        /// The comma-separated elements of every `name` field, trimmed; empty
        /// elements are dropped (`Transfer-Encoding: gzip, chunked`).
        func listValues(named name: String) -> [String] {
            values(named: name).flatMap { $0.split(separator: ",") }
                .map { trimmingWhitespace($0) }
                .filter { !$0.isEmpty }
        }

        public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }
    }

    /// A request to the daemon. `Host`, `Connection`, `Accept`, `User-Agent`
    /// and the content framing are added when it is sent.
    public struct Request: Hashable, Sendable {
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

        /// The request as HTTP/1.1 bytes. Refuses what would break the framing:
        /// control characters or spaces in the target, a method that is not a
        /// token, header fields this client sets itself.
        func serialized() throws(ClientError) -> [UInt8] {
            guard !method.rawValue.isEmpty, method.rawValue.utf8.allSatisfy(isTokenByte) else {
                throw .invalidRequest("method \"\(method)\" is not an HTTP token")
            }
            guard path.hasPrefix("/"), path.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
                throw .invalidRequest("path \"\(path)\" must start with / and contain no spaces or control characters")
            }
            for field in headers {
                guard !field.name.isEmpty, field.name.utf8.allSatisfy(isTokenByte) else {
                    throw .invalidRequest("header name \"\(field.name)\" is not an HTTP token")
                }
                guard !Self.reservedFields.contains(field.name.lowercased()) else {
                    throw .invalidRequest("header \(field.name) is set by the client itself")
                }
                guard field.value.utf8.allSatisfy({ $0 >= 0x20 || $0 == 0x09 }), !field.value.utf8.contains(0x7F) else {
                    throw .invalidRequest("header \(field.name) has a control character in its value")
                }
            }
            var head = "\(method) \(path) HTTP/1.1\r\n"
            head += "Host: localhost\r\n"
            head += "User-Agent: \(SRIOVClient.userAgent)\r\n"
            head += "Connection: close\r\n"
            if headers["accept"] == nil {
                head += "Accept: application/json, application/problem+json\r\n"
            }
            if let body {
                if headers["content-type"] == nil { head += "Content-Type: application/json\r\n" }
                head += "Content-Length: \(body.count)\r\n"
            } else if method.expectsContent {
                head += "Content-Length: 0\r\n"
            }
            for field in headers { head += "\(field.name): \(field.value)\r\n" }
            head += "\r\n"
            return Array(head.utf8) + (body ?? [])
        }
    }

    /// A complete response from the daemon, whatever its status.
    public struct Response: Hashable, Sendable {
        public var status: Int
        /// The reason phrase of the status line; may be empty.
        public var reason: String
        public var headers: Headers
        public var body: [UInt8]

        public init(status: Int, reason: String = "", headers: Headers = [:], body: [UInt8] = []) {
            self.status = status
            self.reason = reason
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

/// `text` without leading and trailing spaces and tabs (HTTP's OWS).
func trimmingWhitespace(_ text: Substring) -> String {
    let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
    guard let first = text.firstIndex(where: { !isOWS($0) }) else { return "" }
    let last = text.lastIndex(where: { !isOWS($0) })!
    return String(text[first...last])
}
