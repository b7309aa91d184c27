import Glibc

/// Reads links from the kernel over rtnetlink: one link with its VFs'
/// settings, or every link without them.
///
/// Requests and replies are matched by sequence number on one transport, so
/// a reader serves one caller at a time: give it one owner (an actor or a
/// single thread). Its calls block until the kernel answers.
public final class LinkReader {
    private let transport: any NetlinkTransport
    private var nextSequence: UInt32 = 1

    /// How many times `links()` dumps before giving up on a link list that
    /// keeps changing under it.
    static let dumpAttempts = 3

    /// A reader on a new `RouteNetlinkSocket`.
    public convenience init() throws(NetlinkError) {
        self.init(transport: try RouteNetlinkSocket())
    }

    /// A reader over `transport`: a `RouteNetlinkSocket`, or a fake kernel in tests.
    public init(transport: any NetlinkTransport) {
        self.transport = transport
    }

    /// One link with its VFs' settings (RTM_GETLINK, IFLA_EXT_MASK =
    /// RTEXT_FILTER_VF). The kernel asks the driver for every VF under RTNL,
    /// about 1-2 ms per VF, so ask this of a PF, not of every link.
    /// - Throws: `.noSuchLink` when no link has `ifindex`.
    public func link(ifindex: Int32, counters: Bool = false) throws(NetlinkError) -> LinkInfo {
        let op = "RTM_GETLINK"
        let sequence = takeSequence()
        var request = NetlinkRequestWriter(
            type: NetlinkABI.rtmGetLink, flags: NetlinkABI.flagRequest, sequence: sequence)
        request.appendLinkHeader(ifindex: ifindex)
        // VF stats only when asked for (a metrics scrape): some drivers fetch
        // them from firmware per VF, and they add 100 bytes per VF.
        request.appendAttribute(
            type: NetlinkABI.iflaExtMask, NetlinkABI.rtextFilterVF | (counters ? 0 : NetlinkABI.rtextFilterSkipStats))

        let reply = try exchange(request.finish(), sequence: sequence, isDump: false, op: op, ifindex: ifindex)
        guard let payload = reply.links.first else {
            throw .malformedReply(
                op: op, ifindex: ifindex, reason: "the kernel acknowledged without describing the link")
        }
        let link = try parsing(op, ifindex) { () throws(NetlinkParseError) in try LinkInfo(newLinkPayload: payload) }
        guard link.ifindex == ifindex else {
            throw .malformedReply(op: op, ifindex: ifindex, reason: "the reply describes ifindex \(link.ifindex)")
        }
        return link
    }

    /// Every link: name, ifindex, flags, MAC, MTU, carrier and operational
    /// state, without VF info (a dump of RTM_GETLINK). Cheap enough to call
    /// whenever links are looked up by name.
    public func links() throws(NetlinkError) -> [LinkInfo] {
        let op = "RTM_GETLINK dump"
        for _ in 1...Self.dumpAttempts {
            let sequence = takeSequence()
            var request = NetlinkRequestWriter(
                type: NetlinkABI.rtmGetLink, flags: NetlinkABI.flagRequest | NetlinkABI.flagDump, sequence: sequence)
            request.appendLinkHeader(ifindex: 0)
            request.appendAttribute(type: NetlinkABI.iflaExtMask, NetlinkABI.rtextFilterSkipStats)

            let reply = try exchange(request.finish(), sequence: sequence, isDump: true, op: op, ifindex: nil)
            if reply.wasInterrupted { continue }
            return try parsing(op, nil) { () throws(NetlinkParseError) in
                try reply.links.map { payload throws(NetlinkParseError) in try LinkInfo(newLinkPayload: payload) }
            }
        }
        throw .dumpInterrupted(op: op, attempts: Self.dumpAttempts)
    }

    /// Sends one change (RTM_SETLINK or RTM_NEWLINK on an existing link)
    /// and waits for the kernel's acknowledgement; a refusal throws with
    /// the kernel's errno and extended-ack text.
    func change(
        type: UInt16, op: String, ifindex: Int32, _ attributes: (inout NetlinkRequestWriter) -> Void
    ) throws(NetlinkError) {
        let sequence = takeSequence()
        var request = NetlinkRequestWriter(
            type: type, flags: NetlinkABI.flagRequest | NetlinkABI.flagAck, sequence: sequence)
        request.appendLinkHeader(ifindex: ifindex)
        attributes(&request)
        _ = try exchange(request.finish(), sequence: sequence, isDump: false, op: op, ifindex: ifindex)
    }

    /// Sets or clears IFF_UP (RTM_SETLINK with ifi_change = IFF_UP).
    func setAdminState(ifindex: Int32, up: Bool) throws(NetlinkError) {
        let sequence = takeSequence()
        var request = NetlinkRequestWriter(
            type: NetlinkABI.rtmSetLink, flags: NetlinkABI.flagRequest | NetlinkABI.flagAck, sequence: sequence)
        request.append(UInt8(0))
        request.append(UInt8(0))
        request.append(UInt16(0))
        request.append(ifindex)
        request.append(up ? NetlinkABI.iffUp : 0)  // ifi_flags
        request.append(NetlinkABI.iffUp)  // ifi_change
        _ = try exchange(request.finish(), sequence: sequence, isDump: false, op: "RTM_SETLINK (\(up ? "up" : "down"))", ifindex: ifindex)
    }

    /// The RTM_NEWLINK payloads answering one request.
    private struct Reply {
        var links: [NetlinkBytes] = []
        /// The kernel flagged the dump NLM_F_DUMP_INTR: the link list changed
        /// while it was being dumped, so links may be missing or repeated.
        var wasInterrupted = false
    }

    /// Sends `request` and gathers what answers it: the one RTM_NEWLINK of a
    /// plain request, or every part of a dump up to NLMSG_DONE. Messages with
    /// another sequence number are left over from an earlier request that
    /// failed half-way; they are skipped.
    private func exchange(
        _ request: [UInt8], sequence: UInt32, isDump: Bool, op: String, ifindex: Int32?
    ) throws(NetlinkError) -> Reply {
        try transport.send(request)
        var reply = Reply()
        while true {
            let datagram = try transport.receive()
            let messages = try parsing(op, ifindex) { () throws(NetlinkParseError) in
                try NetlinkMessage.split(datagram: datagram)
            }
            for message in messages where message.sequence == sequence {
                switch message.type {
                case NetlinkABI.nlmsgNoop:
                    continue
                case NetlinkABI.rtmNewLink:
                    reply.links.append(message.payload)
                    if message.flags & NetlinkABI.flagDumpInterrupted != 0 { reply.wasInterrupted = true }
                    if !isDump { return reply }
                case NetlinkABI.nlmsgError:
                    // errno 0 is an acknowledgement: nothing follows it.
                    let status = try parsing(op, ifindex) { () throws(NetlinkParseError) in
                        try NetlinkStatus(errorMessage: message)
                    }
                    guard status.errno == 0 else { throw failure(status, op: op, ifindex: ifindex) }
                    return reply
                case NetlinkABI.nlmsgDone:
                    let status = try parsing(op, ifindex) { () throws(NetlinkParseError) in
                        try NetlinkStatus(doneMessage: message)
                    }
                    guard status.errno == 0 else { throw failure(status, op: op, ifindex: ifindex) }
                    return reply
                default:
                    throw .malformedReply(op: op, ifindex: ifindex, reason: "unexpected message type \(message.type)")
                }
            }
        }
    }

    private func failure(_ status: NetlinkStatus, op: String, ifindex: Int32?) -> NetlinkError {
        if status.errno == ENODEV, let ifindex { return .noSuchLink(ifindex: ifindex) }
        return .request(op: op, ifindex: ifindex, errno: status.errno, message: status.extAckMessage)
    }

    /// Runs a parser, reporting its failure as a malformed reply to `op`.
    private func parsing<Value>(
        _ op: String, _ ifindex: Int32?, _ parse: () throws(NetlinkParseError) -> Value
    ) throws(NetlinkError) -> Value {
        do {
            return try parse()
        } catch {
            throw .malformedReply(op: op, ifindex: ifindex, reason: error.reason)
        }
    }

    private func takeSequence() -> UInt32 {
        defer { nextSequence &+= 1 }
        return nextSequence
    }
}

extension NetlinkRequestWriter {
    /// struct ifinfomsg with only the index set (0 for a dump).
    mutating func appendLinkHeader(ifindex: Int32) {
        append(UInt8(0))  // ifi_family: AF_UNSPEC
        append(UInt8(0))  // __ifi_pad
        append(UInt16(0))  // ifi_type
        append(ifindex)  // ifi_index
        append(UInt32(0))  // ifi_flags
        append(UInt32(0))  // ifi_change
    }
}
