import SRIOVCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@testable import SRIOVClient

/// Answers of `/v1/assignments` as sriovd writes them (sorted keys, ISO 8601
/// dates, absent optionals left out), for the fake daemon to replay.
enum AssignmentFixture {
    static let createdAt = "2025-03-01T12:00:00Z"
    static let updatedAt = "2025-03-01T12:05:30Z"

    /// vm1/net0 on VF 0 of 0000:01:00.0 from pool "fast", handed to vfio-pci.
    static let vfioJSON = """
        {"config":{"mac":"52:54:00:aa:00:01","qos":3,"spoofCheck":true,"vlan":100},\
        "createdAt":"\(createdAt)","driver":"vfio-pci","iommuGroup":12,"nic":"net0","numaNode":0,\
        "pf":"0000:01:00.0","pool":"fast","previousDriver":"igbvf","state":"assigned",\
        "updatedAt":"\(updatedAt)","vf":"0000:01:10.0","vfIndex":0,"vfioDevice":"/dev/vfio/12","vm":"vm1"}
        """

    /// vm2/eth1 on VF 3 of 0000:02:00.0, asked for by PF, handed to the host driver, no settings.
    static let hostJSON = """
        {"config":{},"createdAt":"\(createdAt)","driver":"host","iommuGroup":30,"netdev":"enp2s0v3",\
        "nic":"eth1","pf":"0000:02:00.0","previousDriver":"iavf","state":"assigned",\
        "updatedAt":"\(createdAt)","vf":"0000:02:02.1","vfIndex":3,"vm":"vm2"}
        """

    /// vm1/net1, an 802.1ad VLAN, being released.
    static let releasingJSON = """
        {"config":{"vlan":200,"vlanProto":"802.1ad"},"createdAt":"\(createdAt)","driver":"vfio-pci",\
        "nic":"net1","pf":"0000:01:00.0","pool":"fast","state":"releasing","updatedAt":"\(updatedAt)",\
        "vf":"0000:01:10.2","vfIndex":1,"vm":"vm1"}
        """

    static let listJSON = #"{"assignments":[\#(hostJSON),\#(releasingJSON),\#(vfioJSON)]}"#

    static let releasedJSON = vfioJSON.replacing(#""state":"assigned""#, with: #""state":"released""#)

    static let changedJSON = """
        {"assignment":\(vfioJSON.replacing(#""vlan":100"#, with: #""vlan":300"#)),\
        "results":[{"outcome":"applied","setting":"vlan"},\
        {"detail":"\(ControlFixture.unsupportedLinkState)","outcome":"unsupported","setting":"linkState"}]}
        """

    static let differentRequestDetail =
        "vm1/net0 already has VF 0000:01:10.0 from a different request; "
        + "release it first (DELETE /v1/assignments/vm1/net0)"

    static let noFreeVFDetail = "no free VF in pool fast: every VF is assigned or in use"

    static func conflict(_ detail: String) -> FakeDaemon.Reply {
        .text(Fixture.problem("409 Conflict", #"{"title":"Conflict","status":409,"detail":"\#(detail)"}"#))
    }

    static let notFound = FakeDaemon.Reply.text(
        Fixture.problem("404 Not Found", #"{"title":"Not found","status":404,"detail":"no assignment for vm1/net9"}"#))

    /// A response with this status line and JSON body.
    static func reply(_ body: String, status: String = "200 OK") -> FakeDaemon.Reply {
        .text(Fixture.response(status, body: body))
    }

    static let vfio = SRIOVClient.Assignment(
        vm: "vm1", nic: "net0", vf: Fixture.address("0000:01:10.0"), pf: Fixture.address("0000:01:00.0"), vfIndex: 0,
        pool: "fast", driver: .vfio,
        config: VFConfig(
            mac: try! MACAddress.parse("52:54:00:aa:00:01", field: "mac"), vlan: try! VLANID(100),
            qos: try! VLANQoS(3), spoofCheck: true),
        state: .assigned, previousDriver: "igbvf", vfioDevice: "/dev/vfio/12", iommuGroup: 12, numaNode: 0,
        createdAt: date(createdAt), updatedAt: date(updatedAt))

    static func date(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    static func key(_ vm: String, _ nic: String) -> SRIOVClient.NICKey { try! .init(vm: vm, nic: nic) }
}
