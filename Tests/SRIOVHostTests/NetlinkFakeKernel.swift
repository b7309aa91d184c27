import Glibc

@testable import SRIOVHost

/// A request as the fake kernel received it, with its fields read from the
/// bytes (nlmsghdr, ifinfomsg, then the first attribute).
struct ReceivedNetlinkRequest {
    let bytes: [UInt8]

    var type: UInt16 { load(UInt16.self, at: 4) }
    var flags: UInt16 { load(UInt16.self, at: 6) }
    var sequence: UInt32 { load(UInt32.self, at: 8) }
    var ifindex: Int32 { load(Int32.self, at: 20) }
    /// IFLA_EXT_MASK, when it is the first attribute.
    var extMask: UInt32? {
        guard bytes.count >= 40, load(UInt16.self, at: 34) == 29 else { return nil }
        return load(UInt32.self, at: 36)
    }

    private func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}

/// Plays the kernel's end of a netlink socket. Each request is answered
/// with the datagrams `respond` returns; they are handed out by the
/// production `NetlinkDatagramReader` through a `recv` that behaves like the
/// kernel's (MSG_PEEK leaves the datagram queued, MSG_TRUNC returns its full
/// length), starting from a deliberately small buffer.
final class FakeNetlinkKernel: NetlinkTransport {
    /// One recv(2) call the reader made.
    struct ReceiveCall: Equatable {
        let bufferSize: Int
        let flags: Int32
        let returned: Int
    }

    private let respond: (ReceivedNetlinkRequest) -> [[UInt8]]
    private var queue: [[UInt8]] = []
    private var reader: NetlinkDatagramReader
    private(set) var requests: [ReceivedNetlinkRequest] = []
    private(set) var receiveCalls: [ReceiveCall] = []

    init(initialReceiveCapacity: Int = 1024, respond: @escaping (ReceivedNetlinkRequest) -> [[UInt8]]) {
        self.respond = respond
        reader = NetlinkDatagramReader(initialCapacity: initialReceiveCapacity)
    }

    var receiveCapacity: Int { reader.capacity }

    func send(_ bytes: [UInt8]) throws(NetlinkError) {
        let request = ReceivedNetlinkRequest(bytes: bytes)
        requests.append(request)
        queue += respond(request)
    }

    func receive() throws(NetlinkError) -> [UInt8] {
        try reader.read { buffer, flags throws(NetlinkError) in try self.recv(into: buffer, flags: flags) }
    }

    private func recv(into buffer: UnsafeMutableRawBufferPointer, flags: Int32) throws(NetlinkError) -> Int {
        // An empty queue is what a real socket's receive timeout reports.
        guard let datagram = queue.first else { throw .system(call: "recv", errno: EAGAIN) }
        let copied = min(datagram.count, buffer.count)
        datagram.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<copied])) }
        if flags & Int32(MSG_PEEK) == 0 { queue.removeFirst() }
        let returned = flags & Int32(MSG_TRUNC) != 0 ? datagram.count : copied
        receiveCalls.append(ReceiveCall(bufferSize: buffer.count, flags: flags, returned: returned))
        return returned
    }
}
