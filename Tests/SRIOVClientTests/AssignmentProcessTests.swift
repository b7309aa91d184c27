import SRIOVCore
import Testing

@testable import SRIOVClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// sriovctl's assignment commands, run as an orchestrator runs them, against
/// the fake daemon: what they send, print and exit with.
@Suite("sriovctl's assignment commands, run as a process")
struct AssignmentProcessTests {
    @Test func assignSendsTheRequestAndSaysANewAssignmentWasMade() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.vfioJSON, status: "201 Created"))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--socket", daemon.socketPath, "assign", "vm1", "net0", "--pool", "fast", "--numa-node", "0",
             "--mac", "52:54:00:AA:00:01", "--vlan", "100", "--qos", "3", "--spoof-check", "on"])
        #expect(run.status == 0)
        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "POST /v1/assignments HTTP/1.1")
        #expect(
            body == #"{"driver":"vfio-pci","mac":"52:54:00:aa:00:01","nic":"net0","numaNode":0,"pool":"fast","#
                + #""qos":3,"spoofCheck":true,"vlan":100,"vm":"vm1"}"#)
        #expect(
            run.output.hasPrefix(
                "Assigned VF 0000:01:10.0 (VF 0 of 0000:01:00.0) to vm1/net0: vfio-pci, /dev/vfio/12\n\n"
                    + "VM           vm1\n"))
        #expect(run.output.contains("\nVFIO device  /dev/vfio/12\n"))
        #expect(run.errors.isEmpty)
    }

    @Test func assignAgainWithTheSameRequestSaysItAlreadyExistedAndExits0() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.hostJSON, status: "200 OK"))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--socket", daemon.socketPath, "assign", "vm2", "eth1", "--pf", "0000:02:00.0", "--driver", "host"])
        #expect(run.status == 0)
        #expect(
            ControlFixture.split(daemon.requests[0]).body
                == #"{"driver":"host","nic":"eth1","pf":"0000:02:00.0","vm":"vm2"}"#)
        #expect(
            run.output.hasPrefix(
                "vm2/eth1 already has VF 0000:02:02.1 (VF 3 of 0000:02:00.0) from this same request; "
                    + "nothing was changed: host driver, netdev enp2s0v3\n"))
    }

    @Test func jsonPrintsTheDaemonsAssignmentAndNotesAnExistingOneOnStderr() async throws {
        let daemon = try FakeDaemon(
            AssignmentFixture.reply(AssignmentFixture.vfioJSON, status: "201 Created"),
            AssignmentFixture.reply(AssignmentFixture.vfioJSON, status: "200 OK"))
        defer { daemon.stop() }
        let arguments = ["--json", "--socket", daemon.socketPath, "assign", "vm1", "net0", "--pool", "fast"]
        let created = try await runSRIOVCtl(arguments)
        #expect(created.status == 0)
        #expect(created.output.hasPrefix("{\n  \"config\": {\n    \"mac\": \"52:54:00:aa:00:01\",\n"))
        #expect(created.output.contains("\n  \"vfioDevice\": \"/dev/vfio/12\",\n"))
        #expect(created.errors.isEmpty)

        let existing = try await runSRIOVCtl(arguments)
        #expect(existing.status == 0)
        #expect(existing.output == created.output)
        #expect(existing.errors == "note: vm1/net0 already had this assignment; nothing was changed\n")
    }

    @Test func differentRequestForTheNICExits1WithTheDaemonsReasonAndAHint() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.conflict(AssignmentFixture.differentRequestDetail))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--socket", daemon.socketPath, "assign", "vm1", "net0", "--pool", "fast", "--vlan", "200"])
        #expect(run.status == 1)
        #expect(run.output.isEmpty)
        #expect(
            run.errors == "error: Conflict: \(AssignmentFixture.differentRequestDetail)\n"
                + "hint: release it first with: sriovctl release vm1 net0\n")
    }

    @Test func noFreeVFExits1SayingWhereToLook() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.conflict(AssignmentFixture.noFreeVFDetail))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "assign", "vm3", "net0", "--pool", "fast"])
        #expect(run.status == 1)
        #expect(
            run.errors == "error: Conflict: \(AssignmentFixture.noFreeVFDetail)\n"
                + "hint: sriovctl assignments --pool fast shows which NICs hold them\n")
    }

    @Test(arguments: [
        (["vm1", "net0", "--pool", "fast", "--pf", "0000:01:00.0"], #"Error: --pf: "0000:01:00.0" cannot be given with --pool"#),
        (["vm1", "net0"], "Error: --pool: empty value or --pf is required"),
        (["vm/1", "net0", "--pool", "fast"], #"Error: vm: "vm/1" may only contain letters, digits, '.', '_', ':' and '-'"#),
        (["vm1", "net 0", "--pool", "fast"], #"Error: nic: "net 0" may only contain letters"#),
        (["vm1", "net0", "--pool", "fast", "--driver", "vfio"], #"Error: --driver: "vfio" is not a driver choice"#),
        (["vm1", "net0", "--pool", "fast", "--numa-node", "-1"], #"Error: --numa-node: "-1" is not a NUMA node number"#),
        (["vm1", "net0", "--pool", "fast", "--qos", "3"], #"Error: --qos: "3" needs a VLAN"#),
    ])
    func badAssignArgumentsExit64BeforeAnyRequest(arguments: [String], message: String) async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.vfioJSON, status: "201 Created"))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "assign"] + arguments)
        #expect(run.status == 64)
        #expect(run.errors.hasPrefix(message))
        #expect(run.output.isEmpty)
        #expect(daemon.requests.isEmpty)
    }

    @Test func assignmentsListsATableAndSendsTheFilters() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.listJSON))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--socket", daemon.socketPath, "assignments", "--pf", "01:00.0", "--pool", "fast"])
        #expect(run.status == 0)
        #expect(daemon.requests.first?.hasPrefix("GET /v1/assignments?pf=0000:01:00.0&pool=fast HTTP/1.1\r\n") == true)
        #expect(run.output.hasPrefix("VM   NIC   VF            PF            POOL  DRIVER    DEVICE        STATE"))
        #expect(run.output.contains("\nvm2  eth1  0000:02:02.1  0000:02:00.0  -     host      enp2s0v3      assigned"))
    }

    @Test func noAssignmentsMatchingIsSaidNotAnEmptyTable() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(#"{"assignments":[]}"#))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "assignments", "--vm", "vm9"])
        #expect(run.status == 0)
        #expect(run.output == "No assignments match --vm vm9.\n")
    }

    @Test func assignmentsWithABadFilterExits64() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.listJSON))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "assignments", "--vm", "vm 1"])
        #expect(run.status == 64)
        #expect(run.errors.hasPrefix(#"Error: --vm: "vm 1" may only contain letters"#))
        #expect(daemon.requests.isEmpty)
    }

    @Test func assignmentWithOnlyTheNamesShowsIt() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.vfioJSON))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "assignment", "vm1", "net0"])
        #expect(run.status == 0)
        #expect(daemon.requests.first?.hasPrefix("GET /v1/assignments/vm1/net0 HTTP/1.1\r\n") == true)
        #expect(run.output == AssignmentText.detail(AssignmentFixture.vfio))
    }

    @Test func unknownAssignmentExits1WithAHint() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.notFound)
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "assignment", "show", "vm1", "net9"])
        #expect(run.status == 1)
        #expect(
            run.errors == "error: Not found: no assignment for vm1/net9\n"
                + "hint: sriovctl assignments --vm vm1 lists that VM's assigned NICs\n")
    }

    @Test func assignmentSetPatchesAndShowsTheResultsThenTheAssignment() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.changedJSON))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(
            ["--socket", daemon.socketPath, "assignment", "set", "vm1", "net0", "--vlan", "300", "--link-state",
             "enable"])
        #expect(run.status == 0)
        let (line, body) = ControlFixture.split(try #require(daemon.requests.first))
        #expect(line == "PATCH /v1/assignments/vm1/net0 HTTP/1.1")
        #expect(body == #"{"linkState":"enable","vlan":300}"#)
        #expect(run.output.hasPrefix("SETTING    OUTCOME      DETAIL\nvlan       applied      -\n"))
        #expect(run.output.contains("\nVLAN         300\n"))
        #expect(
            run.errors
                == "note: 0000:01:10.0: linkState was left as it was: the VF's driver does not support it (not an error)\n")
    }

    @Test(arguments: [
        (["--mac", "52:54:00:aa:00:02"], "Error: --mac cannot be changed on an assigned VF"),
        ([], "Error: nothing to change: give at least one of --vlan, --qos,"),
        (["--max-tx-rate", "fast"], #"Error: --max-tx-rate: "fast" is not a rate in Mbit/s"#),
    ])
    func badAssignmentSetExits64BeforeAnyRequest(arguments: [String], message: String) async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.changedJSON))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "assignment", "set", "vm1", "net0"] + arguments)
        #expect(run.status == 64)
        #expect(run.errors.hasPrefix(message))
        #expect(daemon.requests.isEmpty)
    }

    @Test func releaseDeletesAndSaysWhichDriverTheVFIsBackOn() async throws {
        let daemon = try FakeDaemon(AssignmentFixture.reply(AssignmentFixture.releasedJSON))
        defer { daemon.stop() }
        let run = try await runSRIOVCtl(["--socket", daemon.socketPath, "release", "vm1", "net0"])
        #expect(run.status == 0)
        #expect(daemon.requests.first?.hasPrefix("DELETE /v1/assignments/vm1/net0 HTTP/1.1\r\n") == true)
        #expect(
            run.output
                == "Released VF 0000:01:10.0 (VF 0 of 0000:01:00.0) from vm1/net0: "
                + "its settings are restored and it is back on igbvf.\n")
    }

    @Test func releaseWhenTheDaemonIsNotRunningExits69() async throws {
        let directory = try makeTemporaryDirectory()
        defer { rmdir(directory) }
        let run = try await runSRIOVCtl(["--socket", directory + "/sriovd.sock", "release", "vm1", "net0"])
        #expect(run.status == 69)
        #expect(run.errors.hasPrefix("error: sriovd is not running (no socket at \(directory)/sriovd.sock)"))
    }
}
