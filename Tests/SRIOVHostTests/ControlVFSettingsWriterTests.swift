import CNetlink
import Foundation
import SRIOVCore
import Testing

@testable import SRIOVHost

private let mac = try! MACAddress.parse("52:54:00:12:34:56", field: "mac")

/// The single IFLA_VF_* attribute inside IFLA_VFINFO_LIST > IFLA_VF_INFO of
/// a request built for `change`, with the message type and ifindex.
private struct BuiltRequest {
    var type: UInt16
    var ifindex: Int32
    /// Top-level attribute types after the ifinfomsg.
    var topLevel: [UInt16]
    var vfAttributes: [NetlinkAttribute]

    /// The request for the one group `config` sets.
    init(_ config: VFConfig, pfIfindex: Int32 = 7, vf: UInt32 = 3) throws {
        let changes = VFChange.changes(for: config)
        try #require(changes.count == 1)
        let bytes = try VFChangeRequest.bytes(changes[0], pfIfindex: pfIfindex, vf: vf).get()
        let message = try #require(try NetlinkMessage.split(datagram: bytes).first)
        type = message.type
        ifindex = try message.payload.int32(at: NetlinkABI.linkHeaderIndexOffset)
        let attributes = try message.payload.slice(from: NetlinkABI.linkHeaderSize).attributes()
        topLevel = attributes.map(\.type)
        let list = try #require(attributes.first { $0.type == NetlinkABI.iflaVFInfoList })
        let infos = try list.payload.attributes()
        try #require(infos.count == 1 && infos[0].type == NetlinkABI.iflaVFInfo)
        vfAttributes = try infos[0].payload.attributes()
    }

    /// The one VF attribute, checked to be of `type`.
    func only(_ type: UInt16) throws -> NetlinkBytes {
        try #require(vfAttributes.count == 1, "attributes: \(vfAttributes.map(\.type))")
        try #require(vfAttributes[0].type == type)
        return vfAttributes[0].payload
    }
}

@Suite("Control: VF settings through libnl")
struct ControlVFSettingsWriterTests {
    // MARK: Error mapping

    @Test("EOPNOTSUPP from the kernel is unsupported, with the kernel's message when it gave one")
    func kernelOpNotSupported() {
        let outcome = VFAttributeResult.Outcome(libnlCode: -NLE_OPNOTSUPP, kernelErrno: EOPNOTSUPP, kernelMessage: nil)
        guard case .unsupported(let reason) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(reason.contains("does not support"))
        #expect(
            VFAttributeResult.Outcome(libnlCode: -NLE_OPNOTSUPP, kernelErrno: ENOTSUP, kernelMessage: "no link state op")
                == .unsupported(reason: "no link state op"))
    }

    @Test("libnl's own -NLE_OPNOTSUPP is unsupported too")
    func libnlOpNotSupported() {
        let outcome = VFAttributeResult.Outcome(libnlCode: -NLE_OPNOTSUPP, kernelErrno: nil, kernelMessage: nil)
        guard case .unsupported = outcome else {
            Issue.record("\(outcome)")
            return
        }
    }

    @Test("other kernel refusals fail with the kernel's errno (not libnl's code) and its text")
    func kernelRefusalKeepsErrno() {
        #expect(
            VFAttributeResult.Outcome(libnlCode: -NLE_INVAL, kernelErrno: EINVAL, kernelMessage: nil)
                == .failed(code: EINVAL, message: "Invalid argument"))
        // libnl folds EPROTONOSUPPORT into its own code; the errno survives.
        #expect(
            VFAttributeResult.Outcome(libnlCode: -NLE_PROTO_MISMATCH, kernelErrno: EPROTONOSUPPORT, kernelMessage: "bad proto")
                == .failed(code: EPROTONOSUPPORT, message: "Protocol not supported: bad proto"))
    }

    @Test("a failure on this side keeps libnl's negative code and nl_geterror's text")
    func libnlFailure() {
        #expect(
            VFAttributeResult.Outcome(libnlCode: -NLE_NOMEM, kernelErrno: nil, kernelMessage: nil)
                == .failed(code: -NLE_NOMEM, message: "Out of memory"))
        #expect(VFAttributeResult.Outcome(libnlCode: 0, kernelErrno: nil, kernelMessage: nil) == .applied)
        #expect(VFAttributeResult.Outcome(libnlCode: 0, kernelErrno: 0, kernelMessage: nil) == .applied)
    }

    // MARK: What is asked for

    @Test("each configured attribute is its own change, link state last; unset parts get defaults")
    func changesFromConfig() throws {
        let vlan = try VLANID(100)
        let config = VFConfig(
            mac: mac, vlan: vlan, spoofCheck: false, trust: true, linkState: .disable, maxTxRate: 500, rssQuery: true)
        let changes = VFChange.changes(for: config)
        #expect(changes.map(\.group) == [.mac, .vlan, .spoofCheck, .trust, .rssQuery, .txRate, .linkState])
        #expect(
            changes.map(\.values) == [
                VFSettings(mac: mac), VFSettings(vlan: vlan, qos: .zero, vlanProto: .dot1Q),
                VFSettings(spoofCheck: false), VFSettings(trust: true), VFSettings(rssQuery: true),
                VFSettings(minTxRate: 0, maxTxRate: 500), VFSettings(linkState: .disable),
            ])
        #expect(VFChange.changes(for: VFConfig()).isEmpty)
        #expect(VFChange.changes(for: VFConfig(minTxRate: 10)).map(\.values) == [VFSettings(minTxRate: 10, maxTxRate: 0)])
    }

    // MARK: What libnl builds (no socket)

    @Test("a request is an RTM_SETLINK for the PF's ifindex carrying only IFLA_VFINFO_LIST")
    func requestShape() throws {
        let request = try BuiltRequest(VFConfig(trust: true), pfIfindex: 42)
        #expect(request.type == 19)  // RTM_SETLINK
        #expect(request.ifindex == 42)
        #expect(request.topLevel == [NetlinkABI.iflaVFInfoList])
        let trust = try request.only(NetlinkABI.iflaVFTrust)
        #expect(try trust.uint32(at: 0) == 3)
        #expect(try trust.uint32(at: 4) == 1)
    }

    @Test("RSS query: IFLA_VF_RSS_QUERY_EN with the VF number and the setting", arguments: [true, false])
    func rssQueryRequest(on: Bool) throws {
        let request = try BuiltRequest(VFConfig(rssQuery: on), pfIfindex: 42)
        #expect(request.topLevel == [NetlinkABI.iflaVFInfoList])
        let payload = try request.only(NetlinkABI.iflaVFRSSQueryEnabled)
        #expect(payload.count == 8)
        #expect(try payload.uint32(at: 0) == 3)
        #expect(try payload.uint32(at: 4) == (on ? 1 : 0))
    }

    @Test("MAC: IFLA_VF_MAC with the VF number and the six bytes, zero-padded")
    func macRequest() throws {
        let payload = try BuiltRequest(VFConfig(mac: mac)).only(NetlinkABI.iflaVFMAC)
        #expect(payload.count == 36)
        #expect(try payload.uint32(at: 0) == 3)
        #expect(try payload.bytes(at: 4, count: 6) == mac.bytes)
        #expect(try payload.bytes(at: 10, count: 26).allSatisfy { $0 == 0 })
    }

    @Test("802.1Q VLAN: the plain IFLA_VF_VLAN every driver takes")
    func dot1QRequest() throws {
        let payload = try BuiltRequest(VFConfig(vlan: try VLANID(100), qos: try VLANQoS(5), vlanProto: .dot1Q)).only(NetlinkABI.iflaVFVLAN)
        #expect(try [payload.uint32(at: 0), payload.uint32(at: 4), payload.uint32(at: 8)] == [3, 100, 5])
    }

    @Test("802.1ad VLAN: IFLA_VF_VLAN_LIST with vlan_proto in network byte order")
    func dot1ADRequest() throws {
        let list = try BuiltRequest(VFConfig(vlan: try VLANID(200), qos: try VLANQoS(2), vlanProto: .dot1AD)).only(NetlinkABI.iflaVFVLANList)
        let entries = try list.attributes()
        try #require(entries.count == 1)
        #expect(entries[0].type == 1)  // IFLA_VF_VLAN_INFO
        let info = entries[0].payload
        #expect(try [info.uint32(at: 0), info.uint32(at: 4), info.uint32(at: 8)] == [3, 200, 2])
        #expect(try info.bigEndianUInt16(at: 12) == 0x88A8)
    }

    @Test("spoof check, link state and TX rate each carry the VF number and their value")
    func otherRequests() throws {
        let spoof = try BuiltRequest(VFConfig(spoofCheck: false)).only(NetlinkABI.iflaVFSpoofCheck)
        #expect(try [spoof.uint32(at: 0), spoof.uint32(at: 4)] == [3, 0])
        let state = try BuiltRequest(VFConfig(linkState: .disable)).only(NetlinkABI.iflaVFLinkState)
        #expect(try [state.uint32(at: 0), state.uint32(at: 4)] == [3, 2])
        let rate = try BuiltRequest(VFConfig(minTxRate: 100, maxTxRate: 900)).only(NetlinkABI.iflaVFRate)
        #expect(try [rate.uint32(at: 0), rate.uint32(at: 4), rate.uint32(at: 8)] == [3, 100, 900])
    }

    // MARK: The kernel (loopback only: nothing is changed)

    @Test("VF changes on lo fail cleanly, one result per attribute, and change nothing")
    func loopbackRefusesEveryAttribute() throws {
        let lo = Int32(if_nametoindex("lo"))
        try #require(lo > 0)
        let writer = try VFSettingsWriter(answerTimeout: .seconds(5))
        let config = VFConfig(
            mac: mac, vlan: try VLANID(10), qos: try VLANQoS(1), vlanProto: .dot1AD, spoofCheck: true, trust: false,
            linkState: .auto, minTxRate: 0, maxTxRate: 100)
        let results = writer.apply(config, pfIfindex: lo, vf: 0)
        #expect(results.map(\.group) == [.mac, .vlan, .spoofCheck, .trust, .txRate, .linkState])
        for result in results {
            switch result.outcome {
            case .applied:
                Issue.record("lo accepted a VF setting: \(result)")
            case .unsupported:
                break  // root: lo has no VF operations (EOPNOTSUPP)
            case .failed(let code, _):
                #expect(code == EPERM, "\(result)")  // without CAP_NET_ADMIN
            }
        }
        // The same socket serves the next call: sequence numbers stay in step.
        #expect(writer.apply(VFConfig(trust: true), pfIfindex: lo, vf: 1).map(\.outcome) == [results[3].outcome])
    }

    @Test("a PF ifindex that does not exist fails with ENODEV (or EPERM without privileges)")
    func missingLink() throws {
        let writer = try VFSettingsWriter()
        let results = writer.apply(VFConfig(spoofCheck: true), pfIfindex: Int32.max - 1, vf: 0)
        try #require(results.count == 1)
        guard case .failed(let code, let message) = results[0].outcome else {
            Issue.record("\(results[0])")
            return
        }
        #expect(code == ENODEV || code == EPERM, "\(message)")
    }

    @Test("a negative VF index fails every attribute without sending anything")
    func negativeVFIndex() throws {
        let writer = try VFSettingsWriter()
        let results = writer.apply(VFConfig(spoofCheck: true, trust: true), pfIfindex: 1, vf: -1)
        #expect(results.map(\.group) == [.spoofCheck, .trust])
        #expect(results.allSatisfy { if case .failed(EINVAL, _) = $0.outcome { true } else { false } })
    }

    // MARK: Through a transport (the kernel played by FakeNetlinkKernel)

    @Test("through a transport: one RTM_SETLINK per attribute, exactly the bytes built, each answered by the kernel's ack or errno")
    func writerThroughTransport() throws {
        var answered = 0
        let kernel = FakeNetlinkKernel { request in
            defer { answered += 1 }
            let reply: Int32
            let extAck: String?
            switch answered {
            case 0: (reply, extAck) = (-EINVAL, "VF rate needs the link up")  // spoof check refused
            case 1: (reply, extAck) = (0, nil)  // trust acknowledged
            default: (reply, extAck) = (-EOPNOTSUPP, nil)  // link state: igb has no operation
            }
            return [KernelMessageBuilder.datagram { $0.putError(reply, answering: request.bytes, capped: true, extAck: extAck) }]
        }
        let writer = try VFSettingsWriter(transport: kernel)
        let results = writer.apply(VFConfig(spoofCheck: false, trust: true, linkState: .enable), pfIfindex: 7, vf: 3)

        #expect(results.map(\.group) == [.spoofCheck, .trust, .linkState])
        #expect(results[0].outcome == .failed(code: EINVAL, message: "Invalid argument: VF rate needs the link up"))
        #expect(results[1].outcome == .applied)
        guard case .unsupported = results[2].outcome else {
            Issue.record("\(results[2])")
            return
        }
        let config = VFConfig(spoofCheck: false, trust: true, linkState: .enable)
        let changes = VFChange.changes(for: config)
        try #require(kernel.requests.count == changes.count)
        for (request, change) in zip(kernel.requests, changes) {
            #expect(request.type == 19)  // RTM_SETLINK
            #expect(request.flags == 0x5)  // NLM_F_REQUEST | NLM_F_ACK
            #expect(request.ifindex == 7)
            // Past the header (sequence and port are libnl's), the bytes sent are the ones built.
            let built = try VFChangeRequest.bytes(change, pfIfindex: 7, vf: 3).get()
            #expect(Array(request.bytes.dropFirst(16)) == Array(built.dropFirst(16)))
            #expect(request.bytes.count == built.count)
        }
        #expect(kernel.requests[1].sequence == kernel.requests[0].sequence &+ 1)
        #expect(kernel.requests[2].sequence == kernel.requests[1].sequence &+ 1)
    }

    @Test("through a transport: no answer fails the attribute; the next request starts afresh and is answered")
    func writerWithoutAnswer() throws {
        var requests = 0
        let kernel = FakeNetlinkKernel { request in
            requests += 1
            if requests == 1 { return [] }  // the kernel never answers the first
            return [KernelMessageBuilder.datagram { $0.putError(0, answering: request.bytes, capped: true) }]
        }
        let writer = try VFSettingsWriter(transport: kernel, answerTimeout: .seconds(1))
        let first = writer.apply(VFConfig(trust: true), pfIfindex: 7, vf: 0)
        guard case .failed = first.first?.outcome else {
            Issue.record("\(first)")
            return
        }
        #expect(writer.apply(VFConfig(trust: false), pfIfindex: 7, vf: 0).map(\.outcome) == [.applied])
        #expect(kernel.requests.count == 2)
    }
}
