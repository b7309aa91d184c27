/// Reads one HTTP/1.1 response from bytes as they arrive, in pieces of any
/// size: status line, header fields, then a body framed by Content-Length, by
/// chunked transfer coding, or by the end of the connection (RFC 9112 §6.3).
struct ResponseParser {
    /// Status line and header fields together may not exceed this.
    static let maxHeadSize = 64 * 1024
    /// A chunk-size line longer than this is not one.
    static let maxChunkLineSize = 1024

    private enum State {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkEnd
        case trailers
        case untilClose
        case complete
    }

    /// HEAD responses have no body whatever their header fields say.
    let requestMethod: SRIOVClient.Method
    /// The most bytes, head and body, a response may have.
    let maxResponseSize: Int

    private var state = State.head
    private var buffer: [UInt8] = []
    /// `buffer` holds no line feed before this index: a line that arrives a
    /// byte at a time is searched once, not once per byte.
    private var searchedUpTo = 0
    private var received = 0
    private var headLines: [String] = []
    private var headSize = 0
    private var status = 0
    private var reason = ""
    private var headers = SRIOVClient.Headers()
    private var body: [UInt8] = []

    init(requestMethod: SRIOVClient.Method, maxResponseSize: Int) {
        self.requestMethod = requestMethod
        self.maxResponseSize = maxResponseSize
    }

    /// Takes the next bytes from the connection. Returns the response as soon
    /// as it is complete; bytes after its end are ignored.
    mutating func consume(_ bytes: some Collection<UInt8>) throws(ClientError) -> SRIOVClient.Response? {
        received += bytes.count
        guard received <= maxResponseSize else { throw .responseTooLarge(limit: maxResponseSize) }
        buffer.append(contentsOf: bytes)
        var index = 0
        defer {
            buffer.removeFirst(index)
            searchedUpTo = max(searchedUpTo - index, 0)
        }
        parsing: while true {
            switch state {
            case .head:
                guard let line = nextLine(&index) else {
                    guard headSize + buffer.count - index <= Self.maxHeadSize else { throw headTooLarge }
                    break parsing
                }
                headSize += line.count + 2
                guard headSize <= Self.maxHeadSize else { throw headTooLarge }
                if !line.isEmpty {
                    headLines.append(String(decoding: line, as: UTF8.self))
                } else if !headLines.isEmpty {
                    try endHead()
                }  // Empty lines before the status line are skipped (RFC 9112 §2.2).
            case .body(let remaining):
                let taken = take(upTo: remaining, from: &index)
                state = taken == remaining ? .complete : .body(remaining: remaining - taken)
                if taken < remaining { break parsing }
            case .chunkSize:
                guard let line = nextLine(&index) else {
                    guard buffer.count - index <= Self.maxChunkLineSize else {
                        throw malformed("a chunk-size line is too long")
                    }
                    break parsing
                }
                let size = try chunkSize(line)
                guard size <= maxResponseSize - body.count else { throw .responseTooLarge(limit: maxResponseSize) }
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let taken = take(upTo: remaining, from: &index)
                state = taken == remaining ? .chunkEnd : .chunkData(remaining: remaining - taken)
                if taken < remaining { break parsing }
            case .chunkEnd:
                guard let line = nextLine(&index) else {
                    guard buffer.count - index < 2 else { throw malformed("chunk data is longer than its chunk size") }
                    break parsing
                }
                guard line.isEmpty else { throw malformed("chunk data is longer than its chunk size") }
                state = .chunkSize
            case .trailers:
                // Trailer fields carry nothing this client uses; the overall size bounds them.
                guard let line = nextLine(&index) else { break parsing }
                if line.isEmpty { state = .complete }
            case .untilClose:
                body.append(contentsOf: buffer[index...])
                index = buffer.count
                break parsing
            case .complete:
                return response
            }
        }
        return nil
    }

    /// The peer closed the connection: the response, if that completes it.
    mutating func finish() throws(ClientError) -> SRIOVClient.Response {
        switch state {
        case .untilClose, .complete:
            return response
        case .head where received == 0:
            throw malformed("sriovd closed the connection without answering")
        default:
            throw malformed("the connection closed after \(received) bytes, before the response was complete")
        }
    }

    private var response: SRIOVClient.Response {
        SRIOVClient.Response(status: status, reason: reason, headers: headers, body: body)
    }

    private var headTooLarge: ClientError {
        malformed("the status line and header fields exceed \(Self.maxHeadSize) bytes")
    }

    private func malformed(_ reason: String) -> ClientError { .malformedResponse(reason) }

    /// The next line from `index`, without its CRLF (or bare LF), or nil when
    /// the buffer holds no complete line yet.
    private mutating func nextLine(_ index: inout Int) -> ArraySlice<UInt8>? {
        guard let newline = buffer[max(index, searchedUpTo)...].firstIndex(of: UInt8(ascii: "\n")) else {
            searchedUpTo = buffer.count
            return nil
        }
        var end = newline
        if end > index, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        defer { index = newline + 1 }
        return buffer[index..<end]
    }

    /// Moves up to `count` buffered bytes into the body; returns how many.
    private mutating func take(upTo count: Int, from index: inout Int) -> Int {
        let taken = min(count, buffer.count - index)
        body.append(contentsOf: buffer[index..<index + taken])
        index += taken
        return taken
    }

    /// `chunk-size [ chunk-ext ]`: hex digits, then optional `;name=value` extensions.
    private func chunkSize(_ line: ArraySlice<UInt8>) throws(ClientError) -> Int {
        let digits = line.prefix { $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
        // 15 hex digits stay below Int.max.
        guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy(isHexDigit),
            let size = Int(String(decoding: digits, as: UTF8.self), radix: 16)
        else {
            throw malformed("chunk size \"\(String(decoding: line, as: UTF8.self))\" is not a hex number")
        }
        return size
    }

    /// Parses the collected status line and header fields and picks how the body is framed.
    private mutating func endHead() throws(ClientError) {
        let statusLine = headLines[0]
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0",
            parts[1].utf8.count == 3, parts[1].utf8.allSatisfy(isDigit), let code = Int(parts[1]),
            (100...599).contains(code)
        else {
            throw malformed("\"\(statusLine.prefix(80))\" is not an HTTP/1.1 status line")
        }
        var fields = SRIOVClient.Headers()
        for line in headLines.dropFirst() {
            if line.first == " " || line.first == "\t" {
                throw malformed("header field line \"\(line.prefix(80))\" uses obsolete line folding")
            }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                line[..<colon].utf8.allSatisfy(isTokenByte)
            else {
                throw malformed("\"\(line.prefix(80))\" is not a header field")
            }
            fields.append(name: String(line[..<colon]), value: trimmingWhitespace(line[line.index(after: colon)...]))
        }
        headLines = []
        headSize = 0
        if (100..<200).contains(code) {
            // An interim response (100 Continue, 103 Early Hints): the final one follows.
            guard code != 101 else {
                throw malformed("sriovd switched protocols (101), which this client does not speak")
            }
            return
        }
        status = code
        reason = parts.count == 3 ? String(parts[2]) : ""
        headers = fields
        state = try bodyFraming()
    }

    /// RFC 9112 §6.3, for a client that sent `Connection: close`.
    private func bodyFraming() throws(ClientError) -> State {
        if requestMethod == .head || status == 204 || status == 304 { return .complete }
        let codings = headers.listValues(named: "transfer-encoding").map { $0.lowercased() }
        if !codings.isEmpty {
            guard codings == ["chunked"] else {
                throw malformed(
                    "transfer coding \"\(codings.joined(separator: ", "))\" is not supported; only chunked is")
            }
            return .chunkSize
        }
        let lengths = headers.listValues(named: "content-length")
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), first.utf8.count <= 18, first.utf8.allSatisfy(isDigit),
                let length = Int(first)
            else {
                throw malformed("Content-Length \"\(lengths.joined(separator: ", "))\" is not one decimal length")
            }
            guard length <= maxResponseSize else { throw .responseTooLarge(limit: maxResponseSize) }
            return length == 0 ? .complete : .body(remaining: length)
        }
        return .untilClose
    }
}

private func isDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
}

private func isHexDigit(_ byte: UInt8) -> Bool {
    isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
}
