import SRIOVCore
import Testing

@testable import SRIOVClient

@Suite("Assignment requests built from sriovctl's arguments")
struct AssignmentParsingTests {
    typealias Options = SRIOVClient.AssignmentRequest.Options
    typealias Settings = SRIOVClient.VFChange.Options

    func body(_ request: SRIOVClient.Request) -> String { String(decoding: request.body ?? [], as: UTF8.self) }

    @Test func assignFromAPoolSendsOneFlatBodyWithTheDefaultDriver() throws {
        let request = try SRIOVClient.AssignmentRequest(parsing: Options(vm: "vm1", nic: "net0", pool: "fast"))
        let sent = try SRIOVClient.Request.assign(request)
        #expect(sent.method == .post)
        #expect(sent.path == "/v1/assignments")
        #expect(body(sent) == #"{"driver":"vfio-pci","nic":"net0","pool":"fast","vm":"vm1"}"#)
    }

    @Test func assignFromAPFSendsTheSettingsBesideTheNICWithTheirTypes() throws {
        let request = try SRIOVClient.AssignmentRequest(
            parsing: Options(
                vm: "k8s:pod-1.a_b", nic: "eth1", pf: "01:00.0", numaNode: "1", driver: "HOST",
                settings: Settings(mac: "52-54-00-AA-00-01", vlan: "100", qos: "3", spoofCheck: "off", maxTxRate: "500")))
        #expect(request.source == .pf(Fixture.address("0000:01:00.0")))
        #expect(request.driver == .host)
        #expect(
            body(try .assign(request))
                == #"{"driver":"host","mac":"52:54:00:aa:00:01","maxTxRate":500,"nic":"eth1","numaNode":1,"#
                + #""pf":"0000:01:00.0","qos":3,"spoofCheck":false,"vlan":100,"vm":"k8s:pod-1.a_b"}"#)
    }

    @Test(arguments: [
        (Options(vm: "vm1", nic: "net0"), #"--pool: empty value or --pf is required: say where the VF comes from"#),
        (
            Options(vm: "vm1", nic: "net0", pool: "fast", pf: "0000:01:00.0"),
            #"--pf: "0000:01:00.0" cannot be given with --pool; give one of them"#
        ),
        (
            Options(vm: "vm/1", nic: "net0", pool: "fast"),
            #"vm: "vm/1" may only contain letters, digits, '.', '_', ':' and '-'"#
        ),
        (Options(vm: "vm 1", nic: "net0", pool: "fast"), #"vm: "vm 1" may only contain letters"#),
        (Options(vm: "vm1", nic: "nét0", pool: "fast"), #"nic: "nét0" may only contain letters"#),
        (Options(vm: "", nic: "net0", pool: "fast"), #"vm: empty value must be 1-128 characters"#),
        (
            Options(vm: String(repeating: "v", count: 129), nic: "net0", pool: "fast"),
            #"vm: ""# + String(repeating: "v", count: 129) + #"" must be 1-128 characters"#
        ),
        (Options(vm: "vm1", nic: "net0", pool: "fast/1"), #"--pool: "fast/1" is not a pool name"#),
        (Options(vm: "vm1", nic: "net0", pf: "01:00"), #"--pf: "01:00""#),
        (Options(vm: "vm1", nic: "net0", pool: "fast", numaNode: "-1"), #"--numa-node: "-1" is not a NUMA node number"#),
        (Options(vm: "vm1", nic: "net0", pool: "fast", driver: "none"), #"--driver: "none" is not a driver choice"#),
        (
            Options(vm: "vm1", nic: "net0", pool: "fast", settings: Settings(vlan: "5000")),
            #"--vlan: "5000" is outside the VLAN range"#
        ),
        (
            Options(vm: "vm1", nic: "net0", pool: "fast", settings: Settings(qos: "3")),
            #"--qos: "3" needs a VLAN: a priority is carried in the VLAN tag, so set --vlan to 1-4094 too"#
        ),
        (
            Options(vm: "vm1", nic: "net0", pool: "fast", settings: Settings(mac: "01:00:5e:00:00:01")),
            #"--mac: "01:00:5e:00:00:01" is a multicast or broadcast address"#
        ),
    ])
    func badAssignArgumentIsRefusedNamingIt(options: Options, message: String) {
        #expect {
            try SRIOVClient.AssignmentRequest(parsing: options)
        } throws: { error in
            (error as? SRIOVClient.UsageError)?.description.hasPrefix(message) == true
        }
    }

    @Test func longestNamesAndEveryAllowedCharacterAreAccepted() throws {
        let name = String(repeating: "a", count: 120) + "Z9._:-"
        let key = try SRIOVClient.NICKey(vm: name + "xx", nic: "n")
        #expect(key.vm.utf8.count == 128)
    }

    @Test func assignmentChangeSendsOnlyTheGivenLiveSettings() throws {
        let change = try SRIOVClient.AssignmentChange(parsing: Settings(vlan: "300", linkState: "enable"))
        let sent = try SRIOVClient.Request.changeAssignment(AssignmentFixture.key("vm1", "net0"), change)
        #expect(sent.method == .patch)
        #expect(sent.path == "/v1/assignments/vm1/net0")
        #expect(body(sent) == #"{"linkState":"enable","vlan":300}"#)
    }

    @Test func qosAloneIsLeftForTheDaemonToCheckAgainstTheAssignmentsVLAN() throws {
        let change = try SRIOVClient.AssignmentChange(parsing: Settings(qos: "5"))
        #expect(change.config == VFConfig(qos: try VLANQoS(5)))
    }

    @Test(arguments: [
        (Settings(), "nothing to change: give at least one of --vlan, --qos, --vlan-proto, --spoof-check,"),
        (Settings(mac: "52:54:00:aa:00:02"), "--mac cannot be changed on an assigned VF"),
        (Settings(vlan: "0", qos: "3"), #"--qos: "3" needs a VLAN"#),
        (Settings(minTxRate: "200", maxTxRate: "100"), #"--min-tx-rate: "200" is above --max-tx-rate"#),
        (Settings(trust: "sometimes"), #"--trust: "sometimes" is not a switch"#),
    ])
    func badAssignmentChangeIsRefusedNamingTheOption(settings: Settings, message: String) {
        #expect {
            try SRIOVClient.AssignmentChange(parsing: settings)
        } throws: { error in
            (error as? SRIOVClient.UsageError)?.description.hasPrefix(message) == true
        }
    }

    @Test func releaseIsADeleteWithoutABody() {
        let sent = SRIOVClient.Request.release(AssignmentFixture.key("vm1", "net0"))
        #expect(sent.method == .delete)
        #expect(sent.path == "/v1/assignments/vm1/net0")
        #expect(sent.body == nil)
    }

    @Test func listQueryHasOnlyTheFiltersGiven() {
        #expect(SRIOVClient.Endpoint.assignments().path == "/v1/assignments")
        #expect(
            SRIOVClient.Endpoint.assignments(vm: "vm1", pf: Fixture.address("0000:01:00.0"), pool: "fast").path
                == "/v1/assignments?vm=vm1&pf=0000:01:00.0&pool=fast")
        #expect(SRIOVClient.Endpoint.assignments(pool: "fast").path == "/v1/assignments?pool=fast")
    }
}
