import Glibc

/// A NETLINK_ROUTE socket: the kernel's end of `NetlinkTransport`.
///
/// Error replies carry the kernel's extended-ack text (NETLINK_EXT_ACK) and
/// echo only the request's header (NETLINK_CAP_ACK). Datagrams of any size
/// are received whole (see `NetlinkDatagramReader`). Not for concurrent use:
/// one owner sends a request and reads its reply.
public final class RouteNetlinkSocket: NetlinkTransport {
    private let descriptor: Int32
    private var reader: NetlinkDatagramReader

    /// Opens and binds the socket.
    /// - Parameters:
    ///   - initialReceiveCapacity: the first receive buffer, in bytes; it
    ///     grows to fit each larger datagram.
    ///   - socketReceiveBufferSize: the kernel-side queue asked for. A
    ///     reply is queued whole before it is read, so it is set well above
    ///     the largest expected reply: SO_RCVBUFFORCE with CAP_NET_ADMIN,
    ///     else SO_RCVBUF (capped by net.core.rmem_max).
    ///   - receiveTimeout: how long `receive()` waits for the kernel before
    ///     it throws `.system(call: "recv", errno: EAGAIN)`.
    public init(
        initialReceiveCapacity: Int = 32 * 1024,
        socketReceiveBufferSize: Int32 = 4 * 1024 * 1024,
        receiveTimeout: Duration = .seconds(30)
    ) throws(NetlinkError) {
        let descriptor = try SocketCalls.openRouteSocket()
        do {
            try Self.configure(
                descriptor, socketReceiveBufferSize: socketReceiveBufferSize, receiveTimeout: receiveTimeout)
            try SocketCalls.bindToKernelAssignedPort(descriptor)
        } catch {
            SocketCalls.close(descriptor)
            throw error
        }
        self.descriptor = descriptor
        reader = NetlinkDatagramReader(initialCapacity: initialReceiveCapacity)
    }

    deinit {
        SocketCalls.close(descriptor)
    }

    /// The receive buffer's current size; it grows with the largest datagram read.
    var receiveCapacity: Int { reader.capacity }

    /// Sends one request to the kernel.
    public func send(_ bytes: [UInt8]) throws(NetlinkError) {
        let descriptor = descriptor
        let outcome = bytes.withUnsafeBytes { buffer in
            Result { () throws(NetlinkError) -> Int in try SocketCalls.send(descriptor, buffer) }
        }
        guard try outcome.get() == bytes.count else { throw .system(call: "send", errno: EMSGSIZE) }
    }

    /// Waits for the next datagram from the kernel and returns it whole.
    public func receive() throws(NetlinkError) -> [UInt8] {
        let descriptor = descriptor
        return try reader.read { buffer, flags throws(NetlinkError) in
            try SocketCalls.receive(descriptor, into: buffer, flags: flags)
        }
    }

    private static func configure(
        _ descriptor: Int32, socketReceiveBufferSize: Int32, receiveTimeout: Duration
    ) throws(NetlinkError) {
        try SocketCalls.setReceiveQueue(descriptor, bytes: socketReceiveBufferSize)
        try SocketCalls.setReceiveTimeout(descriptor, receiveTimeout)
        let on: Int32 = 1
        try SocketCalls.setOption(
            descriptor, level: NetlinkABI.solNetlink, option: NetlinkABI.netlinkExtAck, on, name: "NETLINK_EXT_ACK")
        try SocketCalls.setOption(
            descriptor, level: NetlinkABI.solNetlink, option: NetlinkABI.netlinkCapAck, on, name: "NETLINK_CAP_ACK")
    }
}
