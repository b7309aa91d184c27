import Glibc
import SRIOVCore
import Testing

@testable import SRIOVHost

/// A reader whose kernel answers every request with `reply(request)`.
private func reader(
    initialReceiveCapacity: Int = 1024, reply: @escaping (ReceivedNetlinkRequest) -> [[UInt8]]
) -> (LinkReader, FakeNetlinkKernel) {
    let kernel = FakeNetlinkKernel(initialReceiveCapacity: initialReceiveCapacity, respond: reply)
    return (LinkReader(transport: kernel), kernel)
}

/// A reader whose kernel answers with one RTM_NEWLINK for `link`.
private func reader(answering link: KernelLink) -> LinkReader {
    reader { request in [KernelMessageBuilder.datagram { $0.putNewLink(link, sequence: request.sequence) }] }.0
}

private func vfMAC(_ number: Int) -> [UInt8] { [0x02, 0x00, 0x5E, 0x10, UInt8(number >> 8), UInt8(number & 0xFF)] }

/// VF `number` of the 256-VF PF: every setting differs from its neighbours'.
private func kernelVF(_ number: Int) -> KernelVF {
    let switches: [UInt32] = [0, 1, KernelNumbers.unreported]
    return KernelVF(
        number: UInt32(number), mac: vfMAC(number), vlan: UInt32(number + 1), qos: UInt32(number % 8),
        vlanProto: number.isMultiple(of: 2) ? 0x8100 : 0x88A8,
        spoofCheck: switches[number % 3], linkState: UInt32(number % 3),
        minTxRate: UInt32(number), maxTxRate: UInt32(number * 10 + 100),
        rssQuery: number.isMultiple(of: 4) ? KernelNumbers.unreported : UInt32(number % 2),
        trust: switches[(number + 1) % 3])
}

/// What `kernelVF(number)` must parse to.
private func expectedVF(_ number: Int) throws -> LinkVF {
    let switches: [Bool?] = [false, true, nil]
    var vf = LinkVF(
        index: number,
        settings: VFSettings(
            mac: MACAddress(bytes: vfMAC(number)), vlan: try VLANID(number + 1), qos: try VLANQoS(number % 8),
            vlanProto: number.isMultiple(of: 2) ? .dot1Q : .dot1AD,
            spoofCheck: switches[number % 3], trust: switches[(number + 1) % 3],
            linkState: VFLinkState(kernelValue: UInt32(number % 3)),
            minTxRate: UInt32(number), maxTxRate: UInt32(number * 10 + 100),
            rssQuery: number.isMultiple(of: 4) ? nil : number % 2 == 1))
    // IFLA_VF_STATS as the builder writes it: VF number * 1000 + the counter's attribute type.
    var counters = VFTrafficCounters()
    let base = UInt64(number) * 1000
    (counters.rxPackets, counters.txPackets, counters.rxBytes, counters.txBytes) = (base, base + 1, base + 2, base + 3)
    (counters.broadcast, counters.multicast, counters.rxDropped, counters.txDropped) = (base + 4, base + 5, base + 7, base + 8)
    vf.counters = counters
    return vf
}

@Suite("Netlink link reader against built kernel replies")
struct NetlinkLinkReaderTests {
    @Test func pfWith256VFsArrivesAsOneDatagramOver64KiBAndEveryVFParses() throws {
        let link = KernelLink(ifindex: 7, name: "ens1f0", vfs: (0..<256).map(kernelVF), altName: "enp59s0f0np0")
        var sentReply = KernelMessageBuilder()
        let (reader, kernel) = reader(initialReceiveCapacity: 4096) { request in
            sentReply = KernelMessageBuilder()
            sentReply.putNewLink(link, sequence: request.sequence)
            return [sentReply.bytes]
        }

        let info = try reader.link(ifindex: 7)

        #expect(sentReply.bytes.count > 65_536)
        // The VF list alone passes 64 KiB, so the kernel's nla_nest_end()
        // stored its length wrapped.
        #expect(sentReply.wrappedNestLengths.count == 1)
        #expect(kernel.receiveCalls.count == 2, "one datagram: one peek, one read")
        #expect(info.ifindex == 7)
        #expect(info.name == "ens1f0")
        #expect(info.mac == MACAddress(bytes: [0x3C, 0xFD, 0xFE, 0x00, 0x00, 0x01]))
        #expect(info.isAdminUp)
        #expect(info.hasCarrier == true)
        #expect(info.operState == "up")
        #expect(info.mtu == 1500)
        #expect(info.numVFs == 256)
        #expect(info.vfs == (try (0..<256).map(expectedVF)))
        #expect(Set(info.vfs.compactMap(\.settings.mac)).count == 256)
    }

    @Test func vfListOfExactly64KiBWhoseLengthWrapsToZeroParses() throws {
        // Without stats each IFLA_VF_INFO is 196 bytes; 335 of them, 8
        // without their 16-byte IFLA_VF_RATE, make the list's nest
        // 4 + 335 * 196 - 8 * 16 = 65536 bytes: nla_len 0.
        let vfs = (0..<335).map { number in
            KernelVF(number: UInt32(number), mac: vfMAC(number), maxTxRate: 10, omitted: number < 8 ? [6] : [])
        }
        let link = KernelLink(ifindex: 7, name: "ens1f0", vfs: vfs, includeStats: false)
        var sentReply = KernelMessageBuilder()
        let (reader, _) = reader { request in
            sentReply = KernelMessageBuilder()
            sentReply.putNewLink(link, sequence: request.sequence)
            return [sentReply.bytes]
        }

        let info = try reader.link(ifindex: 7)

        #expect(sentReply.wrappedNestLengths == [65_536])
        #expect(info.vfs.count == 335)
        #expect(info.vfs.map(\.settings.minTxRate) == Array(repeating: nil, count: 8) + Array(repeating: 0, count: 327))
        #expect(info.vfs.allSatisfy { $0.settings.maxTxRate == 10 })
        #expect(
            info.mac == MACAddress(bytes: [0x3C, 0xFD, 0xFE, 0x00, 0x00, 0x01]),
            "VF entries read past a mis-measured list would be taken for IFLA_ADDRESS")
    }

    @Test func receiveBufferGrowsWhenADatagramIsLargerThanIt() throws {
        let link = KernelLink(ifindex: 7, name: "ens1f0", vfs: (0..<256).map(kernelVF))
        let (reader, kernel) = reader(initialReceiveCapacity: 1024) { request in
            [KernelMessageBuilder.datagram { $0.putNewLink(link, sequence: request.sequence) }]
        }

        let info = try reader.link(ifindex: 7)

        let calls = kernel.receiveCalls
        try #require(calls.count == 2)
        let length = calls[0].returned
        #expect(
            calls[0]
                == FakeNetlinkKernel.ReceiveCall(bufferSize: 1024, flags: Int32(MSG_PEEK | MSG_TRUNC), returned: length)
        )
        #expect(length > 65_536)
        #expect(calls[1].flags & Int32(MSG_PEEK) == 0)
        #expect(calls[1].bufferSize >= length)
        #expect(calls[1].returned == length)
        #expect(info.vfs.count == 256)
    }

    @Test func grownReceiveBufferIsKeptForLaterDatagrams() throws {
        let big = KernelLink(ifindex: 7, name: "ens1f0", vfs: (0..<64).map(kernelVF))
        let small = KernelLink(ifindex: 7, name: "ens1f0", vfs: [])
        var replies = [big, small, big]
        let (reader, kernel) = reader(initialReceiveCapacity: 512) { request in
            [KernelMessageBuilder.datagram { $0.putNewLink(replies.removeFirst(), sequence: request.sequence) }]
        }

        #expect(try reader.link(ifindex: 7).vfs.count == 64)
        let grown = kernel.receiveCapacity
        #expect(try reader.link(ifindex: 7).vfs.isEmpty)
        #expect(try reader.link(ifindex: 7).vfs.count == 64)

        #expect(grown > 512)
        #expect(kernel.receiveCapacity == grown)
        #expect(
            kernel.receiveCalls.filter { $0.bufferSize == 512 }.count == 1,
            "only the first peek used the initial buffer")
    }

    @Test func singleLinkRequestAsksForVFInfoWithoutVFStats() throws {
        let (reader, kernel) = reader { request in
            [
                KernelMessageBuilder.datagram {
                    $0.putNewLink(KernelLink(ifindex: 42, name: "ens2"), sequence: request.sequence)
                }
            ]
        }

        _ = try reader.link(ifindex: 42)

        let request = try #require(kernel.requests.first)
        #expect(request.bytes.count == 40)  // nlmsghdr, ifinfomsg, IFLA_EXT_MASK
        #expect(request.type == KernelNumbers.getLink)
        #expect(request.flags == 0x1)  // NLM_F_REQUEST only: not a dump
        #expect(request.ifindex == 42)
        let vfInfoWithoutStats: UInt32 = 0x1 | 0x8  // RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS
        #expect(request.extMask == vfInfoWithoutStats)
    }

    @Test func aMetricsReadAsksForVFStatsAndParsesEveryCounter() throws {
        let (reader, kernel) = reader { request in
            [
                KernelMessageBuilder.datagram {
                    $0.putNewLink(KernelLink(ifindex: 42, name: "ens2", vfs: (0..<3).map(kernelVF)), sequence: request.sequence)
                }
            ]
        }

        let info = try reader.link(ifindex: 42, counters: true)

        #expect(kernel.requests.first?.extMask == 0x1, "RTEXT_FILTER_VF alone: stats included")
        #expect(info.vfs.map(\.counters) == (try (0..<3).map { try expectedVF($0).counters }))
        #expect(info.vfs[2].counters?.txDropped == 2008)
    }

    @Test func countersAreSupportedForCountingDriversOrWhenSeenCounting() {
        var traffic = VFTrafficCounters()
        #expect(!VFTrafficCounters.supported(driver: "igb", counters: [VFTrafficCounters(), VFTrafficCounters()]))
        #expect(VFTrafficCounters.supported(driver: "mlx5_core", counters: [VFTrafficCounters()]))
        traffic.rxBytes = 1
        #expect(VFTrafficCounters.supported(driver: "igb", counters: [VFTrafficCounters(), traffic]))
    }

    @Test func linkDumpDoesNotAskForVFInfo() throws {
        let (reader, kernel) = reader { request in
            [KernelMessageBuilder.datagram { $0.putDone(sequence: request.sequence) }]
        }

        #expect(try reader.links().isEmpty)

        let request = try #require(kernel.requests.first)
        #expect(request.type == KernelNumbers.getLink)
        #expect(request.flags == 0x301)  // NLM_F_REQUEST | NLM_F_DUMP
        #expect(request.ifindex == 0)
        #expect(request.extMask == 0x8)  // RTEXT_FILTER_SKIP_STATS, no RTEXT_FILTER_VF
    }

    @Test func dumpGathersEveryLinkAcrossDatagramsUntilDone() throws {
        let (reader, _) = reader { request in
            let multi = KernelNumbers.multi
            let first = KernelMessageBuilder.datagram {
                $0.putNewLink(
                    KernelLink(ifindex: 1, name: "lo", mac: [0, 0, 0, 0, 0, 0]), sequence: request.sequence,
                    flags: multi)
                $0.putNewLink(
                    KernelLink(ifindex: 2, name: "eth0", includeStats: false), sequence: request.sequence, flags: multi)
            }
            let second = KernelMessageBuilder.datagram {
                $0.putNewLink(
                    KernelLink(ifindex: 5, name: "tun0", flags: 0x1, operState: 0, carrier: 0, mac: []),
                    sequence: request.sequence, flags: multi)
                $0.putDone(sequence: request.sequence)
            }
            return [first, second]
        }

        let links = try reader.links()

        #expect(links.map(\.name) == ["lo", "eth0", "tun0"])
        #expect(links.map(\.ifindex) == [1, 2, 5])
        #expect(links[0].mac == MACAddress.zero)
        #expect(links[2].mac == nil, "a link without an Ethernet address has no MAC")
        #expect(links[2].operState == "unknown")
        #expect(links[2].hasCarrier == false)
        #expect(links.allSatisfy { $0.vfs.isEmpty && $0.numVFs == nil })
    }

    @Test func dumpIsRepeatedWhenTheKernelFlagsItInterrupted() throws {
        var attempt = 0
        let (reader, kernel) = reader { request in
            attempt += 1
            let flags = KernelNumbers.multi | (attempt == 1 ? KernelNumbers.dumpInterrupted : 0)
            return [
                KernelMessageBuilder.datagram {
                    $0.putNewLink(
                        KernelLink(ifindex: 1, name: "attempt\(attempt)"), sequence: request.sequence, flags: flags)
                    $0.putDone(sequence: request.sequence)
                }
            ]
        }

        #expect(try reader.links().map(\.name) == ["attempt2"])
        #expect(kernel.requests.count == 2)
        #expect(kernel.requests[0].sequence != kernel.requests[1].sequence)
    }

    @Test func dumpGivesUpWhenEveryAttemptIsInterrupted() {
        let (reader, kernel) = reader { request in
            [
                KernelMessageBuilder.datagram {
                    let flags = KernelNumbers.multi | KernelNumbers.dumpInterrupted
                    $0.putNewLink(KernelLink(ifindex: 1, name: "lo"), sequence: request.sequence, flags: flags)
                    $0.putDone(sequence: request.sequence)
                }
            ]
        }

        #expect(throws: NetlinkError.dumpInterrupted(op: "RTM_GETLINK dump", attempts: 3)) { try reader.links() }
        #expect(kernel.requests.count == 3)
    }

    @Test func vlanListEntryIsPreferredOverTheLegacyVLAN() throws {
        var vf = KernelVF(number: 0, mac: vfMAC(0), vlan: 100, qos: 3, vlanProto: 0x88A8)
        vf.legacyVLAN = (vlan: 5, qos: 1)

        let info = try reader(answering: KernelLink(ifindex: 7, name: "ens1f0", vfs: [vf])).link(ifindex: 7)

        let settings = try #require(info.vfs.first).settings
        #expect(settings.vlan == (try VLANID(100)))
        #expect(settings.qos == (try VLANQoS(3)))
        #expect(settings.vlanProto == .dot1AD)
    }

    @Test func legacyVLANIsReadWhenTheKernelSendsNoVLANList() throws {
        let vf = KernelVF(number: 0, mac: vfMAC(0), vlan: 100, qos: 3, omitted: [12])  // no IFLA_VF_VLAN_LIST

        let info = try reader(answering: KernelLink(ifindex: 7, name: "ens1f0", vfs: [vf])).link(ifindex: 7)

        let settings = try #require(info.vfs.first).settings
        #expect(settings.vlan == (try VLANID(100)))
        #expect(settings.qos == (try VLANQoS(3)))
        #expect(settings.vlanProto == nil, "the legacy attribute carries no protocol")
    }

    @Test func settingsTheDriverDidNotReportAreNil() throws {
        // spoofchk, trust and RSS query preset to -1 by the kernel; no
        // IFLA_VF_RATE or IFLA_VF_LINK_STATE; only the legacy max rate.
        let sparse = KernelVF(number: 0, mac: vfMAC(0), maxTxRate: 500, omitted: [5, 6])
        // Only the MAC.
        let macOnly = KernelVF(number: 1, mac: vfMAC(1), omitted: [2, 3, 4, 5, 6, 7, 9, 12, 13])

        let info = try reader(answering: KernelLink(ifindex: 7, name: "ens1f0", vfs: [sparse, macOnly], includeStats: false))
            .link(ifindex: 7)

        #expect(
            info.vfs == [
                LinkVF(
                    index: 0,
                    settings: VFSettings(
                        mac: MACAddress(bytes: vfMAC(0)), vlan: VLANID.none, qos: VLANQoS.zero, vlanProto: .dot1Q,
                        maxTxRate: 500)),
                LinkVF(index: 1, settings: VFSettings(mac: MACAddress(bytes: vfMAC(1)))),
            ])
    }

    @Test func vfsAreListedByTheirNumberWhateverTheReplyOrder() throws {
        let vfs = [2, 0, 1].map { KernelVF(number: UInt32($0), mac: vfMAC($0)) }

        let info = try reader(answering: KernelLink(ifindex: 7, name: "ens1f0", vfs: vfs)).link(ifindex: 7)

        #expect(info.vfs.map(\.index) == [0, 1, 2])
        #expect(info.vfs.map(\.settings.mac) == [0, 1, 2].map { MACAddress(bytes: vfMAC($0)) })
    }

    @Test func nestsMarkedNLANestedParseLikeUnmarkedOnes() throws {
        var link = KernelLink(ifindex: 7, name: "ens1f0", vfs: (0..<4).map(kernelVF))
        let unmarked = try reader(answering: link).link(ifindex: 7)
        link.flagsVFNests = true
        let marked = try reader(answering: link).link(ifindex: 7)

        #expect(marked == unmarked)
        #expect(marked.vfs.count == 4)
    }

    @Test func repliesWithAnotherSequenceNumberAreSkipped() throws {
        let (reader, _) = reader { request in
            let stale = request.sequence &- 1
            return [
                KernelMessageBuilder.datagram {
                    $0.putNewLink(KernelLink(ifindex: 7, name: "stale0"), sequence: stale)
                },
                KernelMessageBuilder.datagram { $0.putDone(sequence: stale, error: -EINTR) },
                KernelMessageBuilder.datagram {
                    $0.putNewLink(KernelLink(ifindex: 7, name: "ens1f0"), sequence: request.sequence)
                },
            ]
        }

        #expect(try reader.link(ifindex: 7).name == "ens1f0")
    }

    @Test func enodevMeansNoSuchLink() {
        let (reader, _) = reader { request in
            [KernelMessageBuilder.datagram { $0.putError(-ENODEV, answering: request.bytes, capped: true) }]
        }

        #expect(throws: NetlinkError.noSuchLink(ifindex: 99)) { try reader.link(ifindex: 99) }
    }

    @Test(arguments: [true, false])
    func extendedAckTextIsInTheError(echoCapped: Bool) {
        let text = "VF info is not supported by this device"
        let (reader, _) = reader { request in
            [
                KernelMessageBuilder.datagram {
                    $0.putError(-EOPNOTSUPP, answering: request.bytes, capped: echoCapped, extAck: text)
                }
            ]
        }

        let error = #expect(throws: NetlinkError.self) { try reader.link(ifindex: 7) }

        #expect(error == .request(op: "RTM_GETLINK", ifindex: 7, errno: EOPNOTSUPP, message: text))
        #expect(error?.description.contains(text) == true)
        #expect(error?.description.contains("ifindex 7") == true)
    }

    @Test func errorWithoutExtendedAckHasNoMessage() {
        let (reader, _) = reader { request in
            [KernelMessageBuilder.datagram { $0.putError(-EBUSY, answering: request.bytes, capped: false) }]
        }

        #expect(throws: NetlinkError.request(op: "RTM_GETLINK", ifindex: 3, errno: EBUSY, message: nil)) {
            try reader.link(ifindex: 3)
        }
    }

    @Test func dumpEndingInAnErrorFailsWithItsExtendedAck() {
        let (reader, _) = reader { request in
            [
                KernelMessageBuilder.datagram {
                    $0.putNewLink(
                        KernelLink(ifindex: 1, name: "lo"), sequence: request.sequence, flags: KernelNumbers.multi)
                    $0.putDone(sequence: request.sequence, error: -EINVAL, extAck: "Invalid header for link dump")
                }
            ]
        }

        #expect(
            throws: NetlinkError.request(
                op: "RTM_GETLINK dump", ifindex: nil, errno: EINVAL, message: "Invalid header for link dump")
        ) { try reader.links() }
    }

    @Test func replyDescribingAnotherLinkIsRejected() {
        let reader = reader(answering: KernelLink(ifindex: 8, name: "ens1f1"))

        #expect(
            throws: NetlinkError.malformedReply(
                op: "RTM_GETLINK", ifindex: 7, reason: "the reply describes ifindex 8")
        ) { try reader.link(ifindex: 7) }
    }
}
