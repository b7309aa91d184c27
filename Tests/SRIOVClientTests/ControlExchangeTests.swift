import SRIOVCore
import Testing

@testable import SRIOVClient

@Suite("Write requests against a fake daemon")
struct ControlExchangeTests {
    @Test func changeVFSendsAPatchAndReadsTheVFAndEveryResult() async throws {
        let daemon = try FakeDaemon(ControlFixture.changed())
        defer { daemon.stop() }
        let change = try SRIOVClient.VFChange(parsing: .init(vlan: "100", trust: "on", linkState: "enable"))
        let report = try await SRIOVClient(socketPath: daemon.socketPath).changeVF(ControlFixture.vfAddress, change)

        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "PATCH /v1/vfs/0000:01:10.0 HTTP/1.1")
        #expect(body == #"{"linkState":"enable","trust":true,"vlan":100}"#)
        #expect(report.vf == ControlFixture.vf)
        #expect(report.failure == nil)
        #expect(
            report.results == [
                .init(setting: .vlan, outcome: .applied), .init(setting: .trust, outcome: .unchanged),
                .init(setting: .linkState, outcome: .unsupported, detail: ControlFixture.unsupportedLinkState),
            ])
    }

    @Test func failedSettingIsAReportWithTheProblemAndTheRolledBackResults() async throws {
        let daemon = try FakeDaemon(.text(Fixture.problem("500 Internal Server Error", ControlFixture.failedProblem)))
        defer { daemon.stop() }
        let change = try SRIOVClient.VFChange(parsing: .init(mac: "52:54:00:00:00:02", spoofCheck: "off"))
        let report = try await SRIOVClient(socketPath: daemon.socketPath).changeVF(ControlFixture.vfAddress, change)

        #expect(report.vf == nil)
        #expect(report.failure?.status == 500)
        #expect(report.failure?.title == "VF settings not applied")
        #expect(report.results(.rolledBack).map(\.setting.group) == [.mac])
        #expect(
            report.results(.failed) == [
                .init(setting: .spoofCheck, outcome: .failed, detail: ControlFixture.spoofCheckFailure)
            ])
    }

    @Test func errorStatusWithoutResultsIsThrownAsUsual() async throws {
        let daemon = try FakeDaemon(
            .text(Fixture.problem("500 Internal Server Error", ControlFixture.hostFailureProblem)))
        defer { daemon.stop() }
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: daemon.socketPath).restoreVF(ControlFixture.vfAddress)
        }
        #expect(error?.description.hasPrefix("Host operation failed: reading the settings of VF 0") == true)
        #expect(error?.exitStatus == 1)
        #expect(daemon.requests.first?.hasPrefix("POST /v1/vfs/0000:01:10.0/restore HTTP/1.1\r\n") == true)
        #expect(daemon.requests.first?.contains("\r\nContent-Length: 0\r\n") == true)
    }

    @Test func lowerCountRefusedWith409SaysWhichVFsAreInUse() async throws {
        let daemon = try FakeDaemon(.text(Fixture.problem("409 Conflict", ControlFixture.conflictProblem)))
        defer { daemon.stop() }
        let error = await #expect(throws: ClientError.self) {
            try await SRIOVClient(socketPath: daemon.socketPath)
                .changePF(ControlFixture.pfAddress, .init(numVFs: 0))
        }
        #expect(error == .api(.init(title: "Conflict", status: 409, detail: ControlFixture.conflictDetail)))
        #expect(error?.description == "Conflict: \(ControlFixture.conflictDetail)")
        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "PUT /v1/pfs/0000:01:00.0 HTTP/1.1")
        #expect(body == #"{"numVFs":0}"#)
    }

    @Test func changePFAnswersWithThePFAndItsVFs() async throws {
        let daemon = try FakeDaemon(.text(Fixture.response(body: ControlFixture.pfDetailJSON)))
        defer { daemon.stop() }
        let detail = try await SRIOVClient(socketPath: daemon.socketPath)
            .changePF(ControlFixture.pfAddress, .init(numVFs: 1, driversAutoprobe: false))
        #expect(detail.pf.numVFs == 1)
        #expect(detail.pf.driversAutoprobe == false)
        #expect(detail.vfs == [ControlFixture.vf])
        #expect(ControlFixture.split(daemon.requests[0]).body == #"{"driversAutoprobe":false,"numVFs":1}"#)
    }

    @Test func bindVFPostsTheDriverAndReadsTheVF() async throws {
        let daemon = try FakeDaemon(.text(Fixture.response(body: ControlFixture.vfJSON)))
        defer { daemon.stop() }
        let vf = try await SRIOVClient(socketPath: daemon.socketPath).bindVF(ControlFixture.vfAddress, to: .host)
        #expect(vf == ControlFixture.vf)
        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "POST /v1/vfs/0000:01:10.0/driver HTTP/1.1")
        #expect(body == #"{"driver":"host"}"#)
    }
}
