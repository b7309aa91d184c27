import Glibc
import SRIOVCore
import Testing

@testable import SRIOVHost

/// Passes requests to a real socket with one more attribute appended, so the
/// kernel has something to refuse.
private final class AppendingTransport: NetlinkTransport {
    private let socket: RouteNetlinkSocket
    private let attribute: [UInt8]

    init(socket: RouteNetlinkSocket, attribute: [UInt8]) {
        self.socket = socket
        self.attribute = attribute
    }

    func send(_ bytes: [UInt8]) throws(NetlinkError) {
        var request = bytes + attribute
        request.replaceSubrange(0..<4, with: bytesInHostOrder(UInt32(request.count)))
        try socket.send(request)
    }

    func receive() throws(NetlinkError) -> [UInt8] { try socket.receive() }
}

/// These talk to this machine's kernel. None needs root: reading links is
/// open to every user. Every Linux network namespace has `lo` at ifindex 1.
@Suite("Netlink against this machine's kernel")
struct NetlinkSocketTests {
    @Test func dumpOnThisMachineListsLoopback() throws {
        let links = try LinkReader().links()

        let loopback = try #require(links.first { $0.ifindex == 1 })
        #expect(loopback.name == "lo")
        #expect(loopback.flags & 0x8 != 0)  // IFF_LOOPBACK
        #expect(loopback.mac == MACAddress.zero)
        #expect(loopback.mtu != nil)
        #expect(loopback.operState != nil)
        #expect(loopback.vfs.isEmpty)
        #expect(loopback.numVFs == nil, "a dump does not ask for VF info")
        #expect(Set(links.map(\.ifindex)).count == links.count)
    }

    @Test func singleLinkOnThisMachineIsReadWithVFInfoAsked() throws {
        let reader = try LinkReader()
        let loopback = try reader.link(ifindex: 1)

        #expect(loopback.name == "lo")
        #expect(loopback.vfs.isEmpty)
        #expect(loopback.numVFs == nil, "lo has no parent device, so the kernel sends no IFLA_NUM_VF")
        #expect(
            try reader.links().first { $0.ifindex == 1 }?.name == "lo", "the socket serves one request after another")
    }

    @Test func unknownIfindexOnThisMachineIsNoSuchLink() throws {
        let reader = try LinkReader()

        #expect(throws: NetlinkError.noSuchLink(ifindex: Int32.max)) { try reader.link(ifindex: Int32.max) }
    }

    @Test func realSocketSizesItsBufferByPeekingAtEachDatagram() throws {
        let socket = try RouteNetlinkSocket(initialReceiveCapacity: 64)
        let reader = LinkReader(transport: socket)

        let links = try reader.links()

        #expect(links.contains { $0.name == "lo" })
        #expect(socket.receiveCapacity > 64, "every RTM_NEWLINK is larger than 64 bytes")
    }

    @Test func kernelExtendedAckTextReachesTheError() throws {
        // IFLA_IFNAME longer than IFNAMSIZ - 1: the kernel's policy check
        // refuses it with ERANGE and says why in the extended ack.
        var name = KernelMessageBuilder()
        name.putString(3, "a-name-longer-than-ifnamsiz")
        let transport = AppendingTransport(socket: try RouteNetlinkSocket(), attribute: name.bytes)

        let error = #expect(throws: NetlinkError.self) { try LinkReader(transport: transport).link(ifindex: 1) }

        guard case .request(let op, let ifindex, let errno, let message) = error else {
            Issue.record("expected the kernel to refuse the request, got \(String(describing: error))")
            return
        }
        #expect(op == "RTM_GETLINK")
        #expect(ifindex == 1)
        #expect(errno == ERANGE)
        #expect(message?.isEmpty == false, "the kernel explains policy failures")
    }
}
