import NIOCore
import NIOHTTP1
import SRIOVAPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why a request to sriovd failed, said so that an operator can act on it.
/// System errors and HTTP statuses become these cases in one place each:
/// `init(_:socketPath:timeout:)` and `init(response:)`.
public enum ClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Nothing accepts connections at the socket: there is no socket file
    /// (ENOENT), or nobody listens on it (ECONNREFUSED).
    case daemonNotRunning(socketPath: String, code: Int32)
    /// The kernel refused the connection (EACCES/EPERM): the caller may not
    /// write to the socket or search a directory above it. `socketGroup` is
    /// the group the socket is open to, when it is open to one.
    case permissionDenied(socketPath: String, socketGroup: String?)
    /// The daemon answered 403 Forbidden.
    case forbidden(SRIOVClient.Problem)
    /// The daemon answered with another status outside 2xx.
    case api(SRIOVClient.Problem)
    /// Connecting, sending or the whole response took longer than the client's timeout.
    case timedOut(socketPath: String, after: Duration)
    /// The response is not HTTP/1.1, or its body is not the JSON expected.
    case malformedResponse(String)
    /// The response exceeded the client's size limit, in bytes.
    case responseTooLarge(limit: Int)
    /// The request could not be sent as asked (a bad path or header).
    case invalidRequest(String)
    /// Another system call failure, e.g. EPIPE when the daemon vanished mid-request.
    case system(call: String, socketPath: String, code: Int32)
    /// The task waiting for the response was cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .daemonNotRunning(let path, let code):
            let why = code == ENOENT ? "no socket at \(path)" : "nothing is listening on \(path)"
            return "sriovd is not running (\(why)); start it with systemctl start sriovd"
        case .permissionDenied(let path, let group?):
            return "permission denied connecting to sriovd at \(path); members of the \(group) group may use it: "
                + "ask an administrator to add you to the \(group) group"
        case .permissionDenied(let path, nil):
            return "permission denied connecting to sriovd at \(path); "
                + "ask an administrator to add you to the sriovd group"
        case .forbidden(let problem):
            // The daemon's detail says who may do what; without one, say the usual remedy.
            return problem.detail == nil
                ? "\(problem.title): ask an administrator to add you to the sriovd group" : problem.summary
        case .api(let problem):
            return problem.summary
        case .timedOut(let path, let timeout):
            return "sriovd did not answer within \(formatSeconds(timeout)) on \(path)"
        case .malformedResponse(let reason):
            return "sriovd sent a response this client cannot read: \(reason)"
        case .responseTooLarge(let limit):
            return "sriovd's response is larger than this client's limit of \(limit) bytes"
        case .invalidRequest(let reason):
            return "invalid request: \(reason)"
        case .system(let call, let path, let code):
            return "\(call) on \(path) failed: \(String(cString: strerror(code))) (errno \(code))"
        case .cancelled:
            return "the request to sriovd was cancelled"
        }
    }
}

extension ClientError {
    /// The exit status a command-line tool ends with on this error, from
    /// sysexits.h so that scripts and systemd can tell failures apart:
    /// 69 not running, 77 no permission, 75 no answer in time, 76 unreadable
    /// answer, 71 system error, 70 a bug in the caller, 1 the daemon refused.
    /// (64, bad arguments, is the argument parser's own.)
    public var exitStatus: Int32 {
        switch self {
        case .daemonNotRunning: 69  // EX_UNAVAILABLE
        case .permissionDenied, .forbidden: 77  // EX_NOPERM
        case .timedOut: 75  // EX_TEMPFAIL
        case .malformedResponse, .responseTooLarge: 76  // EX_PROTOCOL
        case .system: 71  // EX_OSERR
        case .invalidRequest: 70  // EX_SOFTWARE
        case .api, .cancelled: 1
        }
    }

    /// The one place an error of NIO (or of the socket under it) becomes an
    /// operator's error; `call` is what the exchange was doing.
    init(_ error: any Error, during call: Syscall, of client: SRIOVClient) {
        let path = client.socketPath
        switch error {
        case let error as ClientError:
            self = error
        case let error as IOError:
            self.init(SyscallError(call: call, code: error.errnoCode), socketPath: path, timeout: client.timeout)
        case SocketAddressError.unixDomainSocketPathTooLong:
            self.init(SyscallError(call: .connect, code: ENAMETOOLONG), socketPath: path, timeout: client.timeout)
        case ChannelError.connectTimeout:
            self = .timedOut(socketPath: path, after: client.timeout)
        case HTTPParserError.invalidEOFState:
            self = .malformedResponse("sriovd closed the connection before the response was complete")
        case let error as HTTPParserError:
            self = .malformedResponse("the response is not HTTP/1.1 as this client reads it (\(error))")
        case is ChannelError where call == .send:
            // The connection went away under the request (ChannelError.ioOnClosedChannel, .outputClosed...).
            self = .system(call: call.rawValue, socketPath: path, code: EPIPE)
        case is ChannelError:
            self = .malformedResponse("sriovd closed the connection before the response was complete")
        default:
            self = .system(call: call.rawValue, socketPath: path, code: EIO)
        }
    }

    /// The one place a failed system call becomes an operator's error.
    init(_ error: SyscallError, socketPath: String, timeout: Duration) {
        switch (error.call, error.code) {
        case (.connect, ENOENT), (.connect, ECONNREFUSED):
            self = .daemonNotRunning(socketPath: socketPath, code: error.code)
        case (.connect, EACCES), (.connect, EPERM):
            self = .permissionDenied(socketPath: socketPath, socketGroup: groupAllowedToConnect(to: socketPath))
        // SO_RCVTIMEO/SO_SNDTIMEO expire as EAGAIN; a Unix connect waiting on a
        // full backlog expires the same way.
        case (_, EAGAIN), (_, EWOULDBLOCK), (.connect, EINPROGRESS), (_, ETIMEDOUT):
            self = .timedOut(socketPath: socketPath, after: timeout)
        default:
            self = .system(call: error.call.rawValue, socketPath: socketPath, code: error.code)
        }
    }

    /// The one place an HTTP error status becomes an operator's error. The
    /// body's problem document (RFC 9457) is used when there is one; otherwise
    /// the status line and a short text body stand in for it. The status line
    /// wins over the document's `status` member, which is only advisory.
    public init(response: SRIOVClient.Response) {
        var problem: SRIOVClient.Problem
        if let decoded = try? APIJSON.decoder().decode(SRIOVClient.Problem.self, from: Data(response.body)) {
            problem = decoded
        } else {
            let text = trimmingWhitespace(
                Substring(response.text.replacing("\r\n", with: " ").replacing("\n", with: " ")))
            problem = SRIOVClient.Problem(
                title: "", status: response.status, detail: text.isEmpty ? nil : String(text.prefix(300)))
        }
        problem.status = response.status
        if problem.title.isEmpty {
            problem.title = response.reason.isEmpty ? standardReason(for: response.status) : response.reason
        }
        self = response.status == 403 ? .forbidden(problem) : .api(problem)
    }
}

/// The system calls under an exchange, named for error messages.
enum Syscall: String, Sendable {
    case socket, connect, setsockopt, send, recv
}

/// A system call that failed, with the errno it left.
struct SyscallError: Error, Equatable, Sendable {
    var call: Syscall
    var code: Int32
}

extension SRIOVClient {
    /// An RFC 9457 problem document, as the daemon sends with every error status.
    public typealias Problem = SRIOVAPI.Problem
}

/// The group that may connect to the socket at `path`: its group, when the
/// socket is group-writable and that group is not root's. nil when that cannot
/// be known (e.g. a directory above it is closed to the caller).
func groupAllowedToConnect(to path: String) -> String? {
    var info = stat()
    guard stat(path, &info) == 0, info.st_mode & 0o020 != 0, info.st_gid != 0 else { return nil }
    var entry = group()
    var found: UnsafeMutablePointer<group>?
    var buffer = [CChar](repeating: 0, count: 4096)
    return buffer.withUnsafeMutableBufferPointer { storage in
        guard getgrgid_r(info.st_gid, &entry, storage.baseAddress, storage.count, &found) == 0, let found else {
            return nil
        }
        return String(cString: found.pointee.gr_name)
    }
}

func standardReason(for status: Int) -> String {
    switch status {
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 409: "Conflict"
    case 413: "Content Too Large"
    case 415: "Unsupported Media Type"
    case 422: "Unprocessable Content"
    case 429: "Too Many Requests"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    default:
        // NIO's name for the other statuses it knows.
        HTTPResponseStatus(statusCode: status).reasonPhrase.isEmpty
            ? "HTTP \(status)" : HTTPResponseStatus(statusCode: status).reasonPhrase
    }
}

/// "30 s", "0.25 s".
func formatSeconds(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let milliseconds = attoseconds / 1_000_000_000_000_000
    guard milliseconds > 0 else { return "\(seconds) s" }
    var fraction = String(milliseconds)
    fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
    while fraction.hasSuffix("0") { fraction.removeLast() }
    return "\(seconds).\(fraction) s"
}

/// A decoding failure as "where: what", e.g. `pfs[0].totalVFs is missing`.
func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        let text = keys.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
        return text.hasPrefix(".") ? String(text.dropFirst()) : (text.isEmpty ? "the body" : text)
    }
    switch error {
    case .dataCorrupted(let context):
        if context.codingPath.isEmpty { return "the body is not valid JSON" }
        // SRIOVCore's values already name their field in the message.
        if let last = context.codingPath.last, context.debugDescription.contains("\(last.stringValue):") {
            return context.debugDescription
        }
        return "\(path(context.codingPath)): \(context.debugDescription)"
    case .keyNotFound(let key, let context):
        return "\(path(context.codingPath + [key])) is missing"
    case .typeMismatch(let type, let context):
        return "\(path(context.codingPath)) is not of type \(type)"
    case .valueNotFound(let type, let context):
        return "\(path(context.codingPath)) is null; expected \(type)"
    @unknown default:
        return "\(error)"
    }
}

/// `text` without leading and trailing spaces and tabs (HTTP's OWS).
func trimmingWhitespace(_ text: Substring) -> String {
    let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
    guard let first = text.firstIndex(where: { !isOWS($0) }) else { return "" }
    let last = text.lastIndex(where: { !isOWS($0) })!
    return String(text[first...last])
}
