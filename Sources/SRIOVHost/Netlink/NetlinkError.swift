import Glibc

/// A failure talking rtnetlink. Each case names what was asked and of which
/// link, so a log line or API error can say it without more context.
public enum NetlinkError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A socket call failed; `call` is the system call (`socket`, `bind`,
    /// `setsockopt(SO_RCVBUF)`, `send`, `recv`...). `EAGAIN` from `recv`
    /// means the kernel did not answer within the socket's receive timeout.
    case system(call: String, errno: Int32)
    /// The kernel refused a request (NLMSG_ERROR). `message` is its extended
    /// ack text when it gave one. `ifindex` is nil for a dump.
    case request(op: String, ifindex: Int32?, errno: Int32, message: String?)
    /// No link has this ifindex (the kernel answered ENODEV).
    case noSuchLink(ifindex: Int32)
    /// The reply is truncated or does not follow the kernel's layout.
    case malformedReply(op: String, ifindex: Int32?, reason: String)
    /// The link list kept changing while it was being dumped
    /// (NLM_F_DUMP_INTR on every attempt).
    case dumpInterrupted(op: String, attempts: Int)

    public var description: String {
        switch self {
        case .system(let call, let errno) where errno == EAGAIN && call == "recv":
            return "netlink recv: no reply from the kernel within the receive timeout"
        case .system(let call, let errno):
            return "netlink \(call) failed: \(Self.describe(errno: errno))"
        case .request(let op, let ifindex, let errno, let message):
            let text = "\(Self.subject(op, ifindex)) failed: \(Self.describe(errno: errno))"
            return message.map { "\(text): \($0)" } ?? text
        case .noSuchLink(let ifindex):
            return "no network link has ifindex \(ifindex)"
        case .malformedReply(let op, let ifindex, let reason):
            return "\(Self.subject(op, ifindex)): malformed reply: \(reason)"
        case .dumpInterrupted(let op, let attempts):
            return "\(op): the link list changed during each of \(attempts) dump attempts"
        }
    }

    private static func subject(_ op: String, _ ifindex: Int32?) -> String {
        ifindex.map { "\(op) ifindex \($0)" } ?? op
    }

    private static func describe(errno: Int32) -> String {
        "\(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Why a reply could not be parsed; the reader adds the request it answers
/// and reports it as `NetlinkError.malformedReply`.
struct NetlinkParseError: Error, Equatable {
    var reason: String

    init(_ reason: String) { self.reason = reason }
}
