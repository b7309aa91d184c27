import SRIOVCore
import Testing

@testable import SRIOVClient

@Suite("Write requests built from sriovctl's options")
struct ChangeParsingTests {
    typealias Options = SRIOVClient.VFChange.Options

    func body(_ request: SRIOVClient.Request) -> String { String(decoding: request.body ?? [], as: UTF8.self) }

    @Test func vfChangeSendsOnlyTheGivenSettingsWithTheirTypes() throws {
        let change = try SRIOVClient.VFChange(
            parsing: Options(
                mac: "52-54-00-AB-CD-EF", vlan: "100", qos: "5", vlanProto: "802.1ad", spoofCheck: "off",
                trust: "on", linkState: "Disable", minTxRate: "10", maxTxRate: "0", rssQuery: "on"))
        let request = try SRIOVClient.Request.changeVF(ControlFixture.vfAddress, change)
        #expect(request.method == .patch)
        #expect(request.path == "/v1/vfs/0000:01:10.0")
        #expect(
            body(request) == #"{"linkState":"disable","mac":"52:54:00:ab:cd:ef","maxTxRate":0,"minTxRate":10,"#
                + #""qos":5,"rssQuery":true,"spoofCheck":false,"trust":true,"vlan":100,"vlanProto":"802.1ad"}"#)
    }

    @Test func vfChangeOfOneSettingSendsOnlyThatField() throws {
        let change = try SRIOVClient.VFChange(parsing: Options(trust: "off"))
        #expect(body(try .changeVF(ControlFixture.vfAddress, change)) == #"{"trust":false}"#)
        #expect(change.config == VFConfig(trust: false))
    }

    @Test(arguments: [
        (Options(mac: "52:54:00:12:34"), #"--mac: "52:54:00:12:34" is not a MAC address"#),
        (Options(mac: "ff:ff:ff:ff:ff:ff"), #"--mac: "ff:ff:ff:ff:ff:ff" is a multicast or broadcast address"#),
        (Options(vlan: "5000"), #"--vlan: "5000" is outside the VLAN range 0-4094"#),
        (Options(vlan: "ten"), #"--vlan: "ten" is not a VLAN id 0-4094"#),
        (Options(vlan: "10", qos: "8"), #"--qos: "8" is outside the 802.1p priority range 0-7"#),
        (Options(vlanProto: "802.1x"), #"--vlan-proto: "802.1x" is not a VLAN protocol"#),
        (Options(spoofCheck: "maybe"), #"--spoof-check: "maybe" is not a switch; use "on" or "off""#),
        (Options(trust: ""), #"--trust: empty value is not a switch"#),
        (Options(linkState: "up"), #"--link-state: "up" is not a link state"#),
        (Options(minTxRate: "-1"), #"--min-tx-rate: "-1" is not a rate in Mbit/s"#),
        (Options(maxTxRate: "1e3"), #"--max-tx-rate: "1e3" is not a rate in Mbit/s"#),
        (Options(rssQuery: "sometimes"), #"--rss-query: "sometimes" is not a switch; use "on" or "off""#),
    ])
    func badValueIsRefusedNamingItsOption(options: Options, message: String) {
        #expect {
            try SRIOVClient.VFChange(parsing: options)
        } throws: { error in
            (error as? SRIOVClient.UsageError)?.description.hasPrefix(message) == true
        }
    }

    /// VFConfig.validate() names API fields; the refusal names the options, in its reason too.
    @Test(arguments: [
        (
            Options(qos: "3"),
            #"--qos: "3" needs a VLAN: a priority is carried in the VLAN tag, so set --vlan to 1-4094 too"#
        ),
        (Options(vlan: "0", vlanProto: "802.1ad"), #"--vlan-proto: "802.1ad" needs a VLAN: set --vlan to 1-4094 too"#),
        (Options(minTxRate: "100", maxTxRate: "10"), #"--min-tx-rate: "100" is above --max-tx-rate (10 Mbit/s)"#),
    ])
    func settingsThatNeedEachOtherAreRefusedNamingTheOptions(options: Options, message: String) {
        #expect(throws: SRIOVClient.UsageError(message)) { try SRIOVClient.VFChange(parsing: options) }
    }

    @Test func vfChangeThatSetsNothingIsRefused() {
        #expect(
            throws: SRIOVClient.UsageError(
                "nothing to change: give at least one of --mac, --vlan, --qos, --vlan-proto, --spoof-check, "
                    + "--trust, --link-state, --min-tx-rate, --max-tx-rate, --rss-query")
        ) { try SRIOVClient.VFChange(parsing: Options()) }
    }

    @Test func pfChangeSendsTheCountAndAutoprobeAndForceOnlyWhenGiven() throws {
        let lower = try SRIOVClient.PFChange(numVFs: "0", autoprobe: nil, force: true)
        let request = try SRIOVClient.Request.changePF(ControlFixture.pfAddress, lower)
        #expect(request.method == .put)
        #expect(request.path == "/v1/pfs/0000:01:00.0")
        #expect(body(request) == #"{"force":true,"numVFs":0}"#)
        let autoprobe = try SRIOVClient.PFChange(numVFs: nil, autoprobe: "off", force: false)
        #expect(body(try .changePF(ControlFixture.pfAddress, autoprobe)) == #"{"driversAutoprobe":false}"#)
    }

    @Test(arguments: [
        ("-1", nil, false, #"--num-vfs: "-1" is not a VF count, 0 or more"#),
        ("four", nil, false, #"--num-vfs: "four" is not a VF count, 0 or more"#),
        (nil, "sometimes", false, #"--autoprobe: "sometimes" is not a switch; use "on" or "off""#),
        (nil, nil, false, "nothing to change: give --num-vfs and/or --autoprobe"),
        (nil, "on", true, "--force only matters with --num-vfs: it lets a lower count remove VFs in use"),
    ] as [(String?, String?, Bool, String)])
    func badPFChangeIsRefused(numVFs: String?, autoprobe: String?, force: Bool, message: String) {
        #expect(throws: SRIOVClient.UsageError(message)) {
            try SRIOVClient.PFChange(numVFs: numVFs, autoprobe: autoprobe, force: force)
        }
    }

    @Test func driverRequestNamesTheChoiceAsTheAPIDoes() throws {
        let request = try SRIOVClient.Request.bindVF(ControlFixture.vfAddress, to: .parse("VFIO-PCI", field: "driver"))
        #expect(request.method == .post)
        #expect(request.path == "/v1/vfs/0000:01:10.0/driver")
        #expect(body(request) == #"{"driver":"vfio-pci"}"#)
        #expect(throws: ValidationError.self) { try VFDriverChoice.parse("igbvf", field: "driver") }
    }

    @Test func restoreRequestHasNoBody() {
        let request = SRIOVClient.Request.restoreVF(ControlFixture.vfAddress)
        #expect(request.method == .post)
        #expect(request.path == "/v1/vfs/0000:01:10.0/restore")
        #expect(request.body == nil)
    }
}
