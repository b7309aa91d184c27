import SRIOVCore
import Testing

@testable import SRIOVClient

@Suite("Tables and JSON for people and scripts")
struct InventoryTextTests {
    @Test func columnsAreAsWideAsTheirWidestCellAndMissingValuesShowADash() {
        var table = TextTable([.init("NAME"), .init("N", .right), .init("NOTE")])
        table.append(["a", "1", "first"])
        table.append(["longer", nil, nil])
        table.append(["b", "100", ""])
        #expect(
            table.rendered() == """
                NAME      N  NOTE
                a         1  first
                longer    -  -
                b       100  -

                """)
    }

    @Test func tableWithoutTitlesShowsOnlyRows() {
        var table = TextTable([.init("K"), .init("V")], showsTitles: false)
        table.append(["Driver", "igb"])
        #expect(table.rendered() == "Driver  igb\n")
    }

    @Test func pfTableShowsIDsInHexAndVFCountsAndShortensLongNames() {
        var unknown = PhysicalFunction(
            pciAddress: Fixture.address("0000:00:03.0"), vendorID: 0x15b3, deviceID: 0x1017, totalVFs: 8, numVFs: 0,
            driversAutoprobe: false)
        unknown.adminUp = false
        var short = unknown
        short.pciAddress = Fixture.address("0000:00:04.0")
        short.deviceName = "ConnectX-5"
        #expect(
            InventoryText.physicalFunctions([Fixture.pf, short, unknown]) == """
                PCI           DRIVER  NETDEV  VENDOR:DEVICE  NAME                                         LINK        NUMA  VFS  AUTOPROBE
                0000:00:03.0  -       -       15b3:1017      -                                            admin-down  -     0/8  no
                0000:00:04.0  -       -       15b3:1017      ConnectX-5                                   admin-down  -     0/8  no
                0000:01:00.0  igb     enp1s0  8086:10c9      Intel Corporation 82576 Gigabit Network ...  up          0     2/7  yes

                """)
    }

    @Test func vfTableShowsSettingsTheDriverDidNotReportAsDashes() throws {
        let settings = VFSettings(
            mac: try MACAddress.parse("52:54:00:00:00:01", field: "mac"), vlan: try VLANID(100), qos: try VLANQoS(3),
            vlanProto: .dot1AD, spoofCheck: true, trust: false, linkState: .auto, maxTxRate: 1000)
        let vfs = [
            VirtualFunction(
                index: 1, pciAddress: Fixture.address("0000:01:10.2"), pf: Fixture.address("0000:01:00.0")),
            VirtualFunction(
                index: 0, pciAddress: Fixture.address("0000:01:10.0"), pf: Fixture.address("0000:01:00.0"),
                driver: "igbvf", netdev: "enp1s0v0", iommuGroup: 12, settings: settings),
        ]
        #expect(
            InventoryText.virtualFunctions(vfs) == """
                PF            VF  PCI           DRIVER  NETDEV    MAC                VLAN           QOS  SPOOFCHK  TRUST  LINK  TX RATE  IOMMU
                0000:01:00.0  0   0000:01:10.0  igbvf   enp1s0v0  52:54:00:00:00:01  100 (802.1ad)  3    on        off    auto  -/1000   12
                0000:01:00.0  1   0000:01:10.2  -       -         -                  -              -    -         -      -     -        -

                """)
    }

    @Test func pfDetailListsFieldsThenVFs() {
        let text = InventoryText.physicalFunctionDetail(PhysicalFunctionDetail(pf: Fixture.pf, vfs: []))
        #expect(
            text.hasPrefix(
                "PCI address  0000:01:00.0\nDevice       8086:10c9 Intel Corporation 82576 Gigabit Network Connection\n"
            ))
        #expect(text.contains("\nNetdev       enp1s0 (ifindex 2)\n"))
        #expect(text.contains("\nVFs          2 of 7\n"))
        #expect(text.hasSuffix("\n\nNo VFs are enabled.\n"))
    }

    @Test func prettyJSONSortsKeysAndKeepsEveryMember() throws {
        let body = #"{"z":1,"a":{"future":null,"list":[true,2.5,"x/y \"q\"\n\u0001"],"none":[],"empty":{}},"m":-7}"#
        let text = try SRIOVClient.Response(status: 200, body: Array(body.utf8)).prettyPrintedJSON()
        #expect(
            text == #"""
                {
                  "a": {
                    "empty": {},
                    "future": null,
                    "list": [
                      true,
                      2.5,
                      "x/y \"q\"\n\u0001"
                    ],
                    "none": []
                  },
                  "m": -7,
                  "z": 1
                }
                """#)
    }

    @Test func prettyJSONOfANonJSONBodyIsAMalformedResponse() {
        #expect(throws: ClientError.malformedResponse("the body is not valid JSON")) {
            try SRIOVClient.Response(status: 200, body: Array("<html>".utf8)).prettyPrintedJSON()
        }
    }
}
