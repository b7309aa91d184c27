import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SRIOVCore
import SRIOVHostTesting
import SRIOVRouterTesting
import Testing

@testable import SRIOVHypervisor

/// The `qmp` failover object's guest agent members: `agent` (the agent's
/// socket) and `bond` (the guest's bond it steers), both or neither, each
/// checked like the other members; stored specs without them still decode.
@Suite struct QMPAgentSpecTests {
    let base = ["adapter": "qmp", "socket": "/run/vm1.qmp", "device": "hostdev0", "bus": "rp1", "standby": "net0"]

    func parse(_ extra: [String: String]) throws(ValidationError) -> FailoverSpec {
        try FailoverSpec.parse(base.merging(extra) { _, new in new }, field: "failover")
    }

    @Test("agent and bond are kept, written back as given, and reach the adapter")
    func agentAndBond() throws {
        let spec = try parse(["agent": "/run/vm1.qga", "bond": "bond0"])
        #expect(spec == .qmp(socket: "/run/vm1.qmp", device: "hostdev0", bus: "rp1", standby: "net0", agent: "/run/vm1.qga", bond: "bond0"))
        #expect(spec.object["agent"] == "/run/vm1.qga" && spec.object["bond"] == "bond0")
        let decoded = try JSONDecoder().decode(FailoverSpec.self, from: try JSONEncoder().encode(spec))
        #expect(decoded == spec)
        let adapter = try #require(FailoverAdapters.make(spec) as? QMPFailover)
        #expect(adapter.agent?.socket == "/run/vm1.qga" && adapter.agent?.bond == "bond0")
    }

    @Test("a stored spec from before the agent members decodes, with no agent and no lever")
    func oldSpecDecodes() async throws {
        let json = #"{"adapter":"qmp","bus":"rp1","device":"hostdev0","socket":"/run/vm1.qmp","standby":"net0"}"#
        let spec = try JSONDecoder().decode(FailoverSpec.self, from: Data(json.utf8))
        #expect(spec == .qmp(socket: "/run/vm1.qmp", device: "hostdev0", bus: "rp1", standby: "net0"))
        #expect(spec.object["agent"] == nil && spec.object.count == 5)
        let adapter = try #require(FailoverAdapters.make(spec) as? QMPFailover)
        #expect(adapter.agent == nil)
        let vf = FailoverVF(
            vm: "vm1", nic: "net0", pci: try PCIAddress.parse("0000:01:10.0", field: "vf"),
            pf: try PCIAddress.parse("0000:01:00.0", field: "pf"), index: 0, mac: nil)
        #expect(try await adapter.steer(to: .standby, vf: vf).lever == nil)
    }

    @Test(
        "refusals name the member and say why",
        arguments: [
            (["agent": "/run/vm1.qga"], "failover.bond", "is required with agent"),
            (["bond": "bond0"], "failover.agent", "is required with bond"),
            (["agent": "run/vm1.qga", "bond": "bond0"], "failover.agent", "absolute path"),
            (["agent": "/run/vm1.qga", "bond": "bond 0"], "failover.bond", "interface name"),
            (["agent": "/run/vm1.qga", "bond": "a-name-too-long-for-linux"], "failover.bond", "interface name"),
            (["agent": "/run/vm1.qmp", "bond": "bond0"], "failover.agent", "is the QMP socket"),
        ])
    func refusals(members: [String: String], field: String, reason: String) {
        #expect {
            _ = try parse(members)
        } throws: { error in
            guard let error = error as? ValidationError else { return false }
            return error.field == field && error.reason.contains(reason)
        }
    }

    @Test("query-pci: the guest's PCI address of each device id, under root ports too")
    func guestAddresses() throws {
        let json = """
            [{"bus":0,"devices":[
              {"bus":0,"slot":2,"function":0,"qdev_id":"standby","class_info":{"class":512}},
              {"bus":0,"slot":3,"function":0,"qdev_id":"rp1","pci_bridge":{"bus":{"number":1,"secondary":1,"subordinate":1},
                "devices":[{"bus":1,"slot":0,"function":0,"qdev_id":"vf0"}]}},
              {"bus":0,"slot":31,"function":3,"qdev_id":""}]}]
            """
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        #expect(QMPGuest.addresses(inQueryPCI: value) == ["standby": "0000:00:02.0", "rp1": "0000:00:03.0", "vf0": "0000:01:00.0"])
        #expect(QMPGuest.deviceIDs(inQueryPCI: value) == ["standby", "rp1", "vf0"])
    }

    @Test("the API refuses an agent without a bond with 400 naming failover.bond, and assigns nothing")
    func apiRefusal() async throws {
        let host = FakeHost([FakeHost.PF(address: MigrationQEMUTests.pfA, autoprobe: false, vfs: 2)])
        let router = try MigrationQEMUTests.router(host: host, dir: NSTemporaryDirectory() + "sriovd-qmp-spec-\(UUID().uuidString)")
        let body = #"{"vm":"vm1","nic":"net0","pf":"0000:01:00.0","driver":"vfio-pci","mac":"52:54:00:5a:01:01","failover":{"adapter":"qmp","socket":"/run/vm1.qmp","device":"hostdev0","bus":"rp1","standby":"net0","agent":"/run/vm1.qga"}}"#
        try await Application(router: router).test(.router) { client in
            try await client.execute(
                uri: "/v1/assignments", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body)
            ) { response in
                #expect(response.status == .badRequest)
                let problem = try JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body))
                #expect(problem["field"]?.stringValue == "failover.bond", "\(problem)")
            }
            try await client.execute(uri: "/v1/assignments", method: .get) { response in
                #expect(String(buffer: response.body).contains("vm1") == false, "nothing assigned")
            }
        }
    }
}
