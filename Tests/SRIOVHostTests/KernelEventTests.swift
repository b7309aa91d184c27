import SRIOVCore
import Testing

@testable import SRIOVHost

@Suite("Link events from RTNLGRP_LINK datagrams")
struct LinkEventParsingTests {
    @Test("RTM_NEWLINK and RTM_DELLINK become events with the PCI function under the link; other messages are skipped")
    func newAndDeletedLinks() throws {
        var secondStart = 0
        var bytes = KernelMessageBuilder.datagram { b in
            b.putNewLink(KernelLink(ifindex: 4, name: "enp59s0f0"), sequence: 0)
            secondStart = b.bytes.count
            b.putNewLink(KernelLink(ifindex: 5, name: "enp59s0f0v0", flags: 0), sequence: 0)
            b.putDone(sequence: 0)
        }
        // The kernel's RTM_DELLINK has RTM_NEWLINK's layout: the second message becomes one.
        withUnsafeBytes(of: UInt16(17)) { bytes.replaceSubrange(secondStart + 4..<secondStart + 6, with: $0) }

        let events = try LinkEvent.parse(datagram: bytes)

        #expect(events.map(\.ifindex) == [4, 5])
        #expect(events.map(\.removed) == [false, true])
        #expect(events.map(\.adminUp) == [true, false])
        #expect(events.map(\.name) == ["enp59s0f0", "enp59s0f0v0"])
        #expect(events.first?.pci == (try PCIAddress.parse("0000:3b:00.0", field: "x")))
    }

    @Test("a link without a PCI parent names none")
    func virtualLink() {
        let event = LinkEvent(ifindex: 9, name: "veth0", removed: false, parentDevice: nil, adminUp: true)
        #expect(event.pci == nil)
        #expect(LinkEvent(ifindex: 9, name: "x", removed: false, parentDevice: "virtual", adminUp: true).pci == nil)
    }
}
