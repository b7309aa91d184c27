import SRIOVCore

@testable import SRIOVClient

/// Answers to the write endpoints as sriovd sends them, for the fake daemon to replay.
enum ControlFixture {
    static let vfAddress = Fixture.address("0000:01:10.0")
    static let pfAddress = Fixture.address("0000:01:00.0")

    /// The daemon writes a VF's unknown fields as null and leaves out unreported settings.
    static let vfJSON = """
        {"index":0,"pciAddress":"0000:01:10.0","pf":"0000:01:00.0","driver":"igbvf","netdev":"enp1s0v0",\
        "iommuGroup":12,"numaNode":null,"mac":"52:54:00:00:00:01","vlan":100,"qos":3,"spoofCheck":true,\
        "trust":true,"linkState":"auto","minTxRate":0,"maxTxRate":1000}
        """

    static let vf = VirtualFunction(
        index: 0, pciAddress: vfAddress, pf: pfAddress, driver: "igbvf", netdev: "enp1s0v0", iommuGroup: 12,
        settings: VFSettings(
            mac: try! MACAddress.parse("52:54:00:00:00:01", field: "mac"), vlan: try! VLANID(100),
            qos: try! VLANQoS(3), spoofCheck: true, trust: true, linkState: .auto, minTxRate: 0, maxTxRate: 1000))

    static let unsupportedLinkState =
        "the igbvf driver cannot set a VF's link state: Operation not supported (EOPNOTSUPP)"

    static let changedJSON = """
        {"vf":\(vfJSON),"results":[{"setting":"vlan","outcome":"applied"},\
        {"setting":"trust","outcome":"unchanged"},\
        {"setting":"linkState","outcome":"unsupported","detail":"\(unsupportedLinkState)"}]}
        """

    static let spoofCheckFailure = "RTM_SETLINK failed: Operation not permitted (EPERM)"

    /// A change whose spoof check failed: the MAC it had applied was rolled back.
    static let failedProblem = """
        {"type":"about:blank","title":"VF settings not applied","status":500,\
        "detail":"VF 0 of 0000:01:00.0: spoofCheck: \(spoofCheckFailure); \
        settings applied by this request were undone",\
        "results":[{"setting":"mac","outcome":"rolledBack"},{"setting":"vlan","outcome":"unchanged"},\
        {"setting":"spoofCheck","outcome":"failed","detail":"\(spoofCheckFailure)"}]}
        """

    static let conflictDetail =
        "lowering 0000:01:00.0 to 0 VFs would remove VF 1 (0000:01:10.2, bound to vfio-pci); "
        + "release them first or set force"

    static let conflictProblem = """
        {"type":"about:blank","title":"Conflict","status":409,"detail":"\(conflictDetail)"}
        """

    static let hostFailureProblem = """
        {"type":"about:blank","title":"Host operation failed","status":500,\
        "detail":"reading the settings of VF 0 of 0000:01:00.0: netlink: No buffer space available"}
        """

    static let pfDetailJSON = """
        {"pf":{"pciAddress":"0000:01:00.0","vendorID":32902,"deviceID":4297,"driver":"igb","netdev":"enp1s0",\
        "totalVFs":7,"numVFs":1,"driversAutoprobe":false,"warnings":[]},"vfs":[\(vfJSON)]}
        """

    /// A successful change's response, with the timing header the daemon adds.
    static func changed(_ body: String = changedJSON) -> FakeDaemon.Reply {
        .text(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + "Server-Timing: controller;dur=4.2, netlink;dur=3.1\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    /// The request line and the body of a request the fake daemon read.
    static func split(_ request: String) -> (line: String, body: String) {
        let line = request.firstRange(of: "\r\n").map { request[..<$0.lowerBound] } ?? request[...]
        guard let end = request.firstRange(of: "\r\n\r\n") else { return (String(line), "") }
        return (String(line), String(request[end.upperBound...]))
    }
}
