import SRIOVCore

/// Responses as sriovd sends them, for the fake daemon to replay.
enum Fixture {
    static let healthJSON = #"{"status":"ok","version":"0.1.0","pfCount":2}"#

    static let pfsJSON = """
        {"pfs":[{"pciAddress":"0000:01:00.0","vendorID":32902,"deviceID":4297,"vendorName":"Intel Corporation",\
        "deviceName":"82576 Gigabit Network Connection","driver":"igb","netdev":"enp1s0","ifindex":2,\
        "mac":"52:54:00:12:34:56","adminUp":true,"linkUp":true,"operState":"up","mtu":1500,"numaNode":0,\
        "totalVFs":7,"numVFs":2,"driversAutoprobe":true,"vfDeviceID":4298,"warnings":[]}]}
        """

    static let vfsJSON = """
        {"vfs":[{"index":0,"pciAddress":"0000:01:10.0","pf":"0000:01:00.0","driver":"igbvf","netdev":"enp1s0v0",\
        "iommuGroup":12,"mac":"52:54:00:00:00:01","vlan":100,"qos":3,"spoofCheck":true,"trust":false,\
        "linkState":"auto","minTxRate":0,"maxTxRate":1000},\
        {"index":1,"pciAddress":"0000:01:10.2","pf":"0000:01:00.0"}]}
        """

    static let notFoundProblem = """
        {"type":"about:blank","title":"Not Found","status":404,"detail":"no SR-IOV PF at 0000:09:00.0"}
        """

    /// A full response with a Content-Length body.
    static func response(
        _ status: String = "200 OK", contentType: String = "application/json", body: String
    ) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// A full error response with a problem document.
    static func problem(_ status: String, _ body: String) -> String {
        response(status, contentType: "application/problem+json", body: body)
    }

    static let pf = PhysicalFunction(
        pciAddress: address("0000:01:00.0"), vendorID: 0x8086, deviceID: 0x10c9, vendorName: "Intel Corporation",
        deviceName: "82576 Gigabit Network Connection", driver: "igb", netdev: "enp1s0", ifindex: 2,
        mac: try! MACAddress.parse("52:54:00:12:34:56", field: "mac"), adminUp: true, linkUp: true, operState: "up",
        mtu: 1500, numaNode: 0, totalVFs: 7, numVFs: 2, driversAutoprobe: true, vfDeviceID: 0x10ca)

    static func address(_ text: String) -> PCIAddress { try! PCIAddress.parse(text, field: "test") }
}
