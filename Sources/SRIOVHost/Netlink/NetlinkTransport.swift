import Glibc

/// The byte pipe under a netlink conversation: requests go out, datagrams
/// come back. `RouteNetlinkSocket` connects it to the kernel; tests connect it
/// to recorded or built kernel replies.
public protocol NetlinkTransport {
    /// Sends one request as one datagram.
    func send(_ bytes: [UInt8]) throws(NetlinkError)
    /// Receives the next datagram whole, however large it is.
    func receive() throws(NetlinkError) -> [UInt8]
}

/// Receives whole datagrams whose size is not known in advance.
///
/// One RTM_NEWLINK for a PF with 256 VFs is well over 64 KiB, and a netlink
/// datagram read into a shorter buffer is cut off with the rest lost, which is
/// how fixed 32-64 KiB buffers broke other netlink clients (vishvananda/netlink
/// #960, pyroute2 #813 and #1044). So each datagram is first peeked with
/// MSG_PEEK|MSG_TRUNC, which leaves it queued and returns its full length;
/// the buffer grows to fit, then the datagram is read.
///
/// The system call is passed in, so this logic runs against the real socket
/// and, in tests, against a simulated one.
struct NetlinkDatagramReader {
    /// Behaves as recv(2) on the socket: fills the buffer, returns the bytes
    /// received or, when `flags` has MSG_TRUNC, the datagram's full length.
    typealias Receive = (UnsafeMutableRawBufferPointer, Int32) throws(NetlinkError) -> Int

    private var buffer: [UInt8]

    /// The current buffer size; it only grows.
    var capacity: Int { buffer.count }

    init(initialCapacity: Int) {
        buffer = [UInt8](repeating: 0, count: max(initialCapacity, NetlinkABI.messageHeaderSize))
    }

    mutating func read(using receive: Receive) throws(NetlinkError) -> [UInt8] {
        let length = try receiveIntoBuffer(receive, flags: Int32(MSG_PEEK | MSG_TRUNC))
        if length > buffer.count {
            let pageSize = 4096
            buffer = [UInt8](repeating: 0, count: (length + pageSize - 1) / pageSize * pageSize)
        }
        let received = try receiveIntoBuffer(receive, flags: Int32(MSG_TRUNC))
        guard received <= buffer.count else {
            // Only another reader of the socket could swap the datagram
            // between the peek and the read.
            throw .system(call: "recv", errno: EMSGSIZE)
        }
        return Array(buffer[..<received])
    }

    private mutating func receiveIntoBuffer(_ receive: Receive, flags: Int32) throws(NetlinkError) -> Int {
        let outcome = buffer.withUnsafeMutableBytes { bytes in
            Result { () throws(NetlinkError) -> Int in try receive(bytes, flags) }
        }
        return try outcome.get()
    }
}
