import SRIOVCore
import Testing

@testable import SRIOVClient

@Suite("Assignment requests against a fake daemon")
struct AssignmentExchangeTests {
    func request(vm: String = "vm1", nic: String = "net0") throws -> SRIOVClient.AssignmentRequest {
        try SRIOVClient.AssignmentRequest(
            parsing: .init(vm: vm, nic: nic, pool: "fast", settings: .init(mac: "52:54:00:aa:00:01", vlan: "100")))
    }

    @Test func createdIs201AndReadsTheAssignmentWithItsDates() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.vfioJSON, status: "201 Created"))
        defer { daemon.stop() }
        let outcome = try await SRIOVClient(socketPath: daemon.socketPath).assign(try request())

        #expect(outcome == .created(AssignmentFixture.vfio))
        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "POST /v1/assignments HTTP/1.1")
        #expect(body == #"{"driver":"vfio-pci","mac":"52:54:00:aa:00:01","nic":"net0","pool":"fast","vlan":100,"vm":"vm1"}"#)
    }

    @Test func sameRequestAgainIs200AndTheExistingAssignment() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.vfioJSON, status: "200 OK"))
        defer { daemon.stop() }
        let outcome = try await SRIOVClient(socketPath: daemon.socketPath).assign(try request())
        #expect(outcome == .existing(AssignmentFixture.vfio))
    }

    @Test func conflictIsThrownWithTheDaemonsReason() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.conflict(AssignmentFixture.differentRequestDetail))
        defer { daemon.stop() }
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: daemon.socketPath).assign(try request())
        }
        #expect(error == .api(.init(title: "Conflict", status: 409, detail: AssignmentFixture.differentRequestDetail)))
        #expect(error?.exitStatus == 1)
    }

    @Test func listSendsTheFiltersAndReadsEveryAssignment() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.listJSON))
        defer { daemon.stop() }
        let list = try await SRIOVClient(socketPath: daemon.socketPath)
            .assignments(vm: "vm1", pool: "fast")
        #expect(daemon.requests.first?.hasPrefix("GET /v1/assignments?vm=vm1&pool=fast HTTP/1.1\r\n") == true)
        #expect(list.map { "\($0.vm)/\($0.nic)" } == ["vm2/eth1", "vm1/net1", "vm1/net0"])
        #expect(list[0].driver == .host)
        #expect(list[0].device == "enp2s0v3")
        #expect(list[1].state == .releasing)
        #expect(list[1].config.vlanProto == .dot1AD)
        #expect(list[2] == AssignmentFixture.vfio)
    }

    @Test func showGetsOneByVMAndNIC() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.vfioJSON))
        defer { daemon.stop() }
        let assignment = try await SRIOVClient(socketPath: daemon.socketPath)
            .assignment(AssignmentFixture.key("vm1", "net0"))
        #expect(assignment.device == "/dev/vfio/12")
        #expect(daemon.requests.first?.hasPrefix("GET /v1/assignments/vm1/net0 HTTP/1.1\r\n") == true)
    }

    @Test func changePatchesTheLiveSettingsAndReadsTheResults() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.changedJSON))
        defer { daemon.stop() }
        let change = try SRIOVClient.AssignmentChange(parsing: .init(vlan: "300", linkState: "enable"))
        let report = try await SRIOVClient(socketPath: daemon.socketPath)
            .changeAssignment(AssignmentFixture.key("vm1", "net0"), change)

        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "PATCH /v1/assignments/vm1/net0 HTTP/1.1")
        #expect(body == #"{"linkState":"enable","vlan":300}"#)
        #expect(report.assignment.config.vlan == (try VLANID(300)))
        #expect(report.results.map(\.outcome) == [.applied, .unsupported])
    }

    @Test func releaseDeletesAndReadsTheReleasedAssignment() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.releasedJSON))
        defer { daemon.stop() }
        let released = try await SRIOVClient(socketPath: daemon.socketPath)
            .release(AssignmentFixture.key("vm1", "net0"))
        #expect(released.state == .released)
        #expect(released.previousDriver == "igbvf")
        #expect(daemon.requests.first?.hasPrefix("DELETE /v1/assignments/vm1/net0 HTTP/1.1\r\n") == true)
        #expect(daemon.requests.first?.contains("Content-Length") == false)
    }

    @Test func unknownNICIsA404NamingIt() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.notFound)
        defer { daemon.stop() }
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: daemon.socketPath).release(AssignmentFixture.key("vm1", "net9"))
        }
        #expect(error?.description == "Not found: no assignment for vm1/net9")
    }

    @Test func unknownDriverAndStateFromANewerDaemonAreKept() throws {
        let json = AssignmentFixture.vfioJSON
            .replacing(#""driver":"vfio-pci""#, with: #""driver":"vdpa""#)
            .replacing(#""state":"assigned""#, with: #""state":"migrating""#)
        let assignment = try SRIOVClient.Response(status: 200, reason: "OK", body: Array(json.utf8))
            .decode(SRIOVClient.Assignment.self)
        #expect(assignment.driver.rawValue == "vdpa")
        #expect(assignment.state.rawValue == "migrating")
    }
}
