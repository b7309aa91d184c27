import Glibc
import Testing

@testable import SRIOVHost

/// `datagram` with its first message's sequence number set to `sequence`.
private func withSequence(_ datagram: [UInt8], _ sequence: UInt32) -> [UInt8] {
    guard datagram.count >= 12 else { return datagram }
    var copy = datagram
    copy.replaceSubrange(8..<12, with: bytesInHostOrder(sequence))
    return copy
}

/// What reading ifindex 7 makes of `datagram` as the kernel's reply.
private func outcome(of datagram: [UInt8]) -> Result<LinkInfo, NetlinkError> {
    let kernel = FakeNetlinkKernel { request in [withSequence(datagram, request.sequence)] }
    let reader = LinkReader(transport: kernel)
    return Result { () throws(NetlinkError) in try reader.link(ifindex: 7) }
}

private func newLink(_ build: (inout KernelMessageBuilder) -> Void) -> [UInt8] {
    KernelMessageBuilder.datagram {
        let message = $0.beginMessage(type: KernelNumbers.newLink, flags: 0, sequence: 0)
        build(&$0)
        $0.endMessage(message)
    }
}

/// A link named ens1f0 whose VF list holds one IFLA_VF_INFO built by `build`.
private func linkWithOneVF(_ build: @escaping (inout KernelMessageBuilder) -> Void) -> [UInt8] {
    newLink {
        $0.putLinkHeader(ifindex: 7)
        $0.putString(3, "ens1f0")  // IFLA_IFNAME
        $0.putU32(21, 1)  // IFLA_NUM_VF
        let list = $0.beginNest(22)  // IFLA_VFINFO_LIST
        let info = $0.beginNest(1)  // IFLA_VF_INFO
        build(&$0)
        $0.endNest(info)
        $0.endNest(list)
    }
}

private func linkWith(_ vf: KernelVF) -> [UInt8] {
    KernelMessageBuilder.datagram { $0.putNewLink(KernelLink(ifindex: 7, name: "ens1f0", vfs: [vf]), sequence: 0) }
}

/// A reply that is wrong in one way, and what the error must say.
struct MalformedReply: Sendable, CustomTestStringConvertible {
    let testDescription: String
    let reasonFragment: String
    let datagram: @Sendable () -> [UInt8]

    static let all: [MalformedReply] = [
        MalformedReply(
            testDescription: "datagram shorter than a message header", reasonFragment: "too short for a message header"
        ) {
            [UInt8](repeating: 0, count: 10)
        },
        MalformedReply(testDescription: "message longer than its datagram", reasonFragment: "the datagram has") {
            var bytes = linkWith(KernelVF(number: 0, mac: [2, 0, 0, 0, 0, 1]))
            bytes.replaceSubrange(0..<4, with: bytesInHostOrder(UInt32(bytes.count + 64)))
            return bytes
        },
        MalformedReply(testDescription: "ifinfomsg cut short", reasonFragment: "RTM_NEWLINK has 4 bytes; at least 16") {
            newLink { $0.put(UInt32(0)) }
        },
        MalformedReply(testDescription: "attribute shorter than its header", reasonFragment: "claims 2 bytes") {
            newLink {
                $0.putLinkHeader(ifindex: 7)
                $0.put(UInt16(2))
                $0.put(UInt16(3))
            }
        },
        MalformedReply(testDescription: "attribute running past the message", reasonFragment: "claims 400 bytes") {
            newLink {
                $0.putLinkHeader(ifindex: 7)
                $0.put(UInt16(400))
                $0.put(UInt16(3))
                $0.put(UInt32(0))
            }
        },
        MalformedReply(testDescription: "link without a name", reasonFragment: "has no IFLA_IFNAME") {
            newLink {
                $0.putLinkHeader(ifindex: 7)
                $0.putU32(4, 1500)  // IFLA_MTU
            }
        },
        MalformedReply(
            testDescription: "VF MAC struct cut short", reasonFragment: "IFLA_VF_MAC has 8 bytes; at least 10"
        ) {
            linkWithOneVF { $0.putAttribute(1, bytesInHostOrder(UInt32(0)) + [2, 0, 0, 0]) }
        },
        MalformedReply(
            testDescription: "VF structs naming different VFs", reasonFragment: "is for VF 1 inside the entry of VF 0"
        ) {
            linkWithOneVF {
                $0.putAttribute(1, bytesInHostOrder(UInt32(0)) + [UInt8](repeating: 2, count: 32))  // IFLA_VF_MAC
                // IFLA_VF_VLAN for VF 1: VLAN 10, QoS 0
                let vlan = [UInt32(1), 10, 0].flatMap(bytesInHostOrder)
                $0.putAttribute(2, vlan)
            }
        },
        MalformedReply(testDescription: "VF info naming no VF", reasonFragment: "no attribute names the VF") {
            linkWith(KernelVF(number: 0, mac: [2, 0, 0, 0, 0, 1], omitted: [1, 2, 3, 4, 5, 6, 7, 9, 12, 13]))
        },
        MalformedReply(testDescription: "NLMSG_ERROR cut short", reasonFragment: "NLMSG_ERROR has 4 bytes; at least 20")
        {
            KernelMessageBuilder.datagram {
                let message = $0.beginMessage(type: KernelNumbers.error, flags: 0, sequence: 0)
                $0.put(Int32(-EINVAL))
                $0.endMessage(message)
            }
        },
        MalformedReply(
            testDescription: "acknowledgement without the link", reasonFragment: "acknowledged without describing"
        ) {
            KernelMessageBuilder.datagram { $0.putError(0, answering: [UInt8](repeating: 0, count: 16), capped: true) }
        },
        MalformedReply(testDescription: "unexpected message type", reasonFragment: "unexpected message type 99") {
            KernelMessageBuilder.datagram { $0.endMessage($0.beginMessage(type: 99, flags: 0, sequence: 0)) }
        },
    ]
}

@Suite("Netlink link reader against malformed replies")
struct NetlinkMalformedReplyTests {
    @Test(arguments: MalformedReply.all)
    func malformedReplyIsAnErrorThatSaysWhy(_ malformation: MalformedReply) {
        let result = outcome(of: malformation.datagram())
        guard case .failure(.malformedReply(let op, let ifindex, let reason)) = result else {
            Issue.record("expected a malformed-reply error, got \(result)")
            return
        }
        #expect(op == "RTM_GETLINK")
        #expect(ifindex == 7)
        #expect(reason.contains(malformation.reasonFragment), "reason: \(reason)")
    }

    /// A reply with a few VFs, cut after every byte (with nlmsg_len cut to
    /// match, so the parser walks into the cut attribute).
    @Test func everyTruncationIsAnErrorOrAShorterLinkNeverACrash() {
        let full = KernelMessageBuilder.datagram {
            $0.putNewLink(
                KernelLink(
                    ifindex: 7, name: "ens1f0",
                    vfs: (0..<3).map { KernelVF(number: $0, mac: [2, 0, 0, 0, 0, UInt8($0)]) }, altName: "pf0"),
                sequence: 0)
        }
        var parsed = 0
        var refused = 0
        for length in 1..<full.count {
            var cut = Array(full[..<length])
            if length >= 4 { cut.replaceSubrange(0..<4, with: bytesInHostOrder(UInt32(length))) }
            switch outcome(of: cut) {
            case .success: parsed += 1
            case .failure(.malformedReply): refused += 1
            case .failure(let other): Issue.record("cut at \(length): unexpected \(other)")
            }
        }
        #expect(refused > parsed)
        #expect(refused + parsed == full.count - 1)
    }

    /// Every byte after the message header set in turn to values that make
    /// lengths and types wrong: each reply parses or is refused.
    @Test func everyGarbledByteIsAnErrorOrALinkNeverACrash() {
        let original = KernelMessageBuilder.datagram {
            $0.putNewLink(
                KernelLink(
                    ifindex: 7, name: "ens1f0",
                    vfs: (0..<3).map { KernelVF(number: $0, mac: [2, 0, 0, 0, 0, UInt8($0)], vlan: 5) }),
                sequence: 0)
        }
        var refused = 0
        for offset in 16..<original.count {
            for value: UInt8 in [0x00, 0x01, 0x03, 0x7F, 0x80, 0xFF] where original[offset] != value {
                var garbled = original
                garbled[offset] = value
                switch outcome(of: garbled) {
                case .success: break
                case .failure(.malformedReply): refused += 1
                case .failure(let other): Issue.record("byte \(offset) = \(value): unexpected \(other)")
                }
            }
        }
        #expect(refused > 0)
    }
}

/// Values a driver may report that sriovd's domain types cannot hold (the
/// kernel accepts VLAN 4095; a driver may invent a link state): only that
/// field becomes unknown; the rest of the VF and the PF's other VFs still read.
@Suite struct NetlinkUnrepresentableValueTests {
    @Test(arguments: [
        KernelVF(number: 0, mac: [2, 0, 0, 0, 0, 1], vlan: 4095),
        KernelVF(number: 0, mac: [2, 0, 0, 0, 0, 1], vlan: 10, qos: 9),
        KernelVF(number: 0, mac: [2, 0, 0, 0, 0, 1], vlan: 10, vlanProto: 0x1234),
        KernelVF(number: 0, mac: [2, 0, 0, 0, 0, 1], linkState: 7),
    ])
    func unrepresentableValueLeavesOnlyThatFieldUnknown(_ odd: KernelVF) throws {
        let datagram = KernelMessageBuilder.datagram {
            $0.putNewLink(
                KernelLink(ifindex: 7, name: "ens1f0", vfs: [odd, KernelVF(number: 1, mac: [2, 0, 0, 0, 0, 2], vlan: 20)]),
                sequence: 0)
        }
        let link = try outcome(of: datagram).get()
        #expect(link.vfs.count == 2)
        let first = try #require(link.vfs.first { $0.index == 0 })
        #expect(first.settings.mac?.description == "02:00:00:00:00:01")
        let vlanKnown = first.settings.vlan != nil && first.settings.qos != nil && first.settings.vlanProto != nil
        #expect(!vlanKnown || first.settings.linkState == nil, "the odd value is not reported as a valid one")
        let second = try #require(link.vfs.first { $0.index == 1 })
        #expect(second.settings.vlan?.value == 20)
    }
}
