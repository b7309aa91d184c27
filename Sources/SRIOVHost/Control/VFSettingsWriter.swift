import CNetlink
import SRIOVCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A libnl call that failed, with libnl's negative NLE_* code and its text.
public struct LibnlError: Error, Sendable, Hashable, CustomStringConvertible {
    public var call: String
    public var code: Int32
    public var message: String

    init(call: String, code: Int32) {
        self.call = call
        self.code = code
        self.message = String(cString: nl_geterror(code))
    }

    public var description: String { "\(call) failed: \(message) (NLE \(-code))" }
}

/// Programs a VF's settings through its PF with libnl-route: one RTM_SETLINK
/// per attribute, so one attribute the driver does not support (link state
/// on igb) or refuses (a rate while the PF link is down) never keeps the
/// others from being applied. Each attribute gets its own result.
///
/// It does not read anything back: a caller that needs to know a value
/// took (MACs are applied asynchronously by some VF drivers) reads the PF
/// with `LinkReader`.
///
/// One writer owns one netlink socket, kept open between calls (no link
/// cache is filled, nothing is dumped). Its byte pipe is the same seam as
/// `LinkReader`'s: given a `NetlinkTransport`, libnl's send and receive are
/// overwritten (`nl_cb_overwrite_send`/`_recv`) to go through it, so tests
/// check the exact RTM_SETLINK bytes and answer with kernel acks and
/// errors, no kernel needed. Requests and answers are matched
/// on that socket, so a writer serves one caller at a time: it is not
/// Sendable; give it one owner (an actor, or one thread). Calls block
/// until the kernel answers, at most `answerTimeout` per attribute.
public final class VFSettingsWriter {
    /// How long one attribute waits for the kernel's answer. Some PF drivers
    /// ask their firmware under RTNL, which can take seconds.
    public let answerTimeout: Duration

    /// nil after a failure that leaves the socket's sequence numbers in
    /// doubt (an answer not received in time); the next request opens a
    /// new socket.
    private var socket: OpaquePointer?
    /// libnl's callbacks for waiting on an answer, writing into `answer`.
    private let callbacks: OpaquePointer
    private let answer = KernelAnswer()
    /// The byte pipe when it is not the kernel's socket (tests).
    private let pipe: LibnlTransportPipe?

    /// Opens a NETLINK_ROUTE socket. Opening needs no privileges; the kernel
    /// checks CAP_NET_ADMIN on each change (EPERM otherwise).
    public convenience init(answerTimeout: Duration = .seconds(10)) throws(LibnlError) {
        try self.init(pipe: nil, answerTimeout: answerTimeout)
    }

    /// Sends each request through `transport` and reads the answers from it
    /// instead of a kernel socket.
    public convenience init(transport: any NetlinkTransport, answerTimeout: Duration = .seconds(10)) throws(LibnlError) {
        try self.init(pipe: LibnlTransportPipe(transport), answerTimeout: answerTimeout)
    }

    private init(pipe: LibnlTransportPipe?, answerTimeout: Duration) throws(LibnlError) {
        self.answerTimeout = answerTimeout
        self.pipe = pipe
        guard let callbacks = nl_cb_alloc(NL_CB_DEFAULT) else { throw LibnlError(call: "nl_cb_alloc", code: -NLE_NOMEM) }
        self.callbacks = callbacks
        let context = Unmanaged.passUnretained(answer).toOpaque()
        // C callbacks capture nothing: the answer is reached through `context`,
        // which lives as long as the writer (and so as `callbacks`).
        nl_cb_err(
            callbacks, NL_CB_CUSTOM,
            { _, error, context in
                guard let error, let context else { return Int32(NL_STOP.rawValue) }
                Unmanaged<KernelAnswer>.fromOpaque(context).takeUnretainedValue().record(error: error)
                return Int32(NL_STOP.rawValue)
            }, context)
        nl_cb_set(
            callbacks, NL_CB_ACK, NL_CB_CUSTOM,
            { _, context in
                if let context { Unmanaged<KernelAnswer>.fromOpaque(context).takeUnretainedValue().recordAcknowledgement() }
                return Int32(NL_STOP.rawValue)
            }, context)
        if pipe != nil { LibnlTransportPipe.overwriteSendAndReceive(callbacks) }
        do {
            socket = try openSocket()
        } catch {
            nl_cb_put(callbacks)
            throw error
        }
    }

    deinit {
        dropSocket()
        nl_cb_put(callbacks)
    }

    /// Applies each attribute `config` sets to VF `vf` of the PF with
    /// `pfIfindex`, each in its own request, in `VFSettingGroup.sendingOrder`
    /// (link state last). Returns one result per configured group (none for
    /// an empty config).
    ///
    /// VLAN id, QoS and protocol are one kernel attribute, as are min and max
    /// TX rate: an unset part is sent as its default (QoS 0, 802.1Q, rate 0 =
    /// no limit). Program a VF before binding its host driver: igbvf, for
    /// one, picks up a new MAC only when it is reloaded.
    public func apply(_ config: VFConfig, pfIfindex: Int32, vf: Int) -> [VFAttributeResult] {
        let changes = VFChange.changes(for: config)
        guard let index = UInt32(exactly: vf) else {
            return changes.map {
                VFAttributeResult(group: $0.group, outcome: .failed(code: EINVAL, message: "VF index \(vf) is out of range"))
            }
        }
        return changes.map { VFAttributeResult(group: $0.group, outcome: send($0, pfIfindex: pfIfindex, vf: index)) }
    }

    // MARK: One request

    private func send(_ change: VFChange, pfIfindex: Int32, vf: UInt32) -> VFAttributeResult.Outcome {
        let message: OpaquePointer
        switch VFChangeRequest.build(change, pfIfindex: pfIfindex, vf: vf) {
        case .success(let built): message = built
        case .failure(let code): return VFAttributeResult.Outcome(libnlCode: code.value, kernelErrno: nil, kernelMessage: nil)
        }
        defer { nlmsg_free(message) }

        let socket: OpaquePointer
        do {
            socket = try connectedSocket()
        } catch {
            return .failed(code: error.code, message: error.description)
        }
        answer.reset()
        // Adds the sequence number, the port and NLM_F_REQUEST | NLM_F_ACK.
        let sent = nl_send_auto(socket, message)
        guard sent >= 0 else {
            dropSocket()
            return VFAttributeResult.Outcome(libnlCode: sent, kernelErrno: nil, kernelMessage: nil)
        }
        return awaitAnswer(on: socket)
    }

    /// Reads until the kernel acknowledges or refuses the request. The wait
    /// is bounded with poll(2): libnl itself would take a receive timeout
    /// (EAGAIN) for success.
    private func awaitAnswer(on socket: OpaquePointer) -> VFAttributeResult.Outcome {
        let deadline = ContinuousClock.now + answerTimeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                dropSocket()
                return .failed(
                    code: -NLE_AGAIN,
                    message: "the kernel did not answer within \(answerTimeout); the change may still be applied")
            }
            var descriptor = pollfd(fd: nl_socket_get_fd(socket), events: Int16(POLLIN), revents: 0)
            // A transport answers at once (or fails): nothing to wait for.
            let ready = pipe != nil ? 1 : poll(&descriptor, 1, Self.milliseconds(remaining))
            if ready < 0 {
                let code = errno
                if code == EINTR { continue }
                dropSocket()
                return .failed(code: -NLE_FAILURE, message: "poll on the netlink socket: \(String(cString: strerror(code)))")
            }
            if ready == 0 { continue }
            // Returns -NLE_* for the kernel's refusal (the callback records
            // the errno itself), 0 after the acknowledgement.
            let received = nl_recvmsgs(socket, callbacks)
            if answer.isComplete {
                return VFAttributeResult.Outcome(
                    libnlCode: received, kernelErrno: answer.errno, kernelMessage: answer.message)
            }
            if received < 0 {
                dropSocket()
                return VFAttributeResult.Outcome(libnlCode: received, kernelErrno: nil, kernelMessage: nil)
            }
        }
    }

    // MARK: Socket

    private func connectedSocket() throws(LibnlError) -> OpaquePointer {
        if let socket { return socket }
        let opened = try openSocket()
        socket = opened
        return opened
    }

    private func dropSocket() {
        if let socket {
            pipe?.detach(from: socket)
            nl_socket_free(socket)
        }
        socket = nil
    }

    private func openSocket() throws(LibnlError) -> OpaquePointer {
        guard let socket = nl_socket_alloc() else { throw LibnlError(call: "nl_socket_alloc", code: -NLE_NOMEM) }
        if let pipe {
            // Not connected: libnl sends and receives through the pipe.
            nl_socket_set_cb(socket, callbacks)
            pipe.attach(to: socket)
            return socket
        }
        let connected = nl_connect(socket, NetlinkABI.netlinkRoute)
        guard connected >= 0 else {
            nl_socket_free(socket)
            throw LibnlError(call: "nl_connect(NETLINK_ROUTE)", code: connected)
        }
        // Best effort: refusals then carry the kernel's explanation and echo
        // only the request's header. Where the kernel lacks these options,
        // only the messages are poorer.
        let descriptor = nl_socket_get_fd(socket)
        var on: Int32 = 1
        for option in [NetlinkABI.netlinkExtAck, NetlinkABI.netlinkCapAck] {
            _ = setsockopt(descriptor, NetlinkABI.solNetlink, option, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        return socket
    }

    private static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        let total = seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1
        return Int32(clamping: max(total, 1))
    }
}

@available(*, unavailable, message: "a VFSettingsWriter owns one netlink socket: give it one owner")
extension VFSettingsWriter: Sendable {}

/// The kernel's answer to the request in flight, written by libnl's callbacks.
private final class KernelAnswer {
    private(set) var isComplete = false
    /// 0 for an acknowledgement, else the kernel's (positive) errno.
    private(set) var errno: Int32 = 0
    private(set) var message: String?

    func reset() {
        isComplete = false
        errno = 0
        message = nil
    }

    func recordAcknowledgement() {
        isComplete = true
    }

    /// `error` is the payload of an NLMSG_ERROR; libnl hands out a pointer
    /// into the received message (nlmsg_data), so its header is just before.
    func record(error: UnsafeMutablePointer<nlmsgerr>) {
        isComplete = true
        errno = Int32(clamping: error.pointee.error.magnitude)
        let header = UnsafeRawPointer(error) - NetlinkABI.messageHeaderSize
        let length = Int(header.loadUnaligned(as: UInt32.self))
        guard length >= NetlinkABI.messageHeaderSize + MemoryLayout<nlmsgerr>.size else { return }
        let bytes = Array(UnsafeRawBufferPointer(start: header, count: length))
        if let reply = try? NetlinkMessage.split(datagram: bytes).first,
            let status = try? NetlinkStatus(errorMessage: reply)
        {
            message = status.extAckMessage
        }
    }
}

/// Connects libnl's send and receive to a `NetlinkTransport`. libnl's
/// overwrite hooks are C functions without a context argument, so each
/// socket using a pipe is registered here, by its address, while it lives.
final class LibnlTransportPipe: @unchecked Sendable {
    // @unchecked: the transport is used only by the writer that owns this
    // pipe, on that writer's thread; the registry is behind a lock.
    private let transport: any NetlinkTransport

    init(_ transport: any NetlinkTransport) { self.transport = transport }

    private static let registry = Mutex<[UInt: LibnlTransportPipe]>([:])

    private static func key(_ socket: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(socket))) }

    func attach(to socket: OpaquePointer) { Self.registry.withLock { $0[Self.key(socket)] = self } }

    func detach(from socket: OpaquePointer) { _ = Self.registry.withLock { $0.removeValue(forKey: Self.key(socket)) } }

    private static func pipe(for socket: OpaquePointer?) -> LibnlTransportPipe? {
        guard let socket else { return nil }
        return registry.withLock { $0[key(socket)] }
    }

    /// Makes every send and receive through `callbacks` (and the sockets it
    /// is set on) go through the socket's registered pipe.
    static func overwriteSendAndReceive(_ callbacks: OpaquePointer) {
        nl_cb_overwrite_send(callbacks) { socket, message in
            guard let pipe = LibnlTransportPipe.pipe(for: socket), let message, let header = nlmsg_hdr(message) else {
                return -NLE_BAD_SOCK
            }
            let bytes = Array(UnsafeRawBufferPointer(start: header, count: Int(header.pointee.nlmsg_len)))
            do {
                try pipe.transport.send(bytes)
            } catch {
                return -NLE_FAILURE
            }
            return Int32(bytes.count)
        }
        // libnl frees the buffer (and the credentials) with free(3).
        nl_cb_overwrite_recv(callbacks) { socket, address, buffer, credentials in
            guard let pipe = LibnlTransportPipe.pipe(for: socket), let buffer else { return -NLE_BAD_SOCK }
            let datagram: [UInt8]
            do {
                datagram = try pipe.transport.receive()
            } catch {
                return -NLE_AGAIN
            }
            guard !datagram.isEmpty else { return 0 }
            guard let copy = malloc(datagram.count) else { return -NLE_NOMEM }
            datagram.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: datagram.count) }
            buffer.pointee = copy.assumingMemoryBound(to: UInt8.self)
            credentials?.pointee = nil
            if let address {
                address.pointee = sockaddr_nl()
                address.pointee.nl_family = sa_family_t(AF_NETLINK)  // from the kernel: port 0
            }
            return Int32(datagram.count)
        }
    }
}
