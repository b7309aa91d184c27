import Foundation
import Logging
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import SRIOVHypervisor
import Testing
@testable import SRIOVDaemon

/// The migration engine driving a guest through a real hook executable (a
/// shell script written here, as an operator's libvirt hook would be): the
/// requests it receives, in order and with their fields, and what a failing
/// hook does to an operation.
@Suite("Migration through the hook adapter (a real executable, two daemons on one fake host)")
struct MigrationHookTests {
    static let pfA = MigrationServiceTests.pfA
    static let pfB = MigrationServiceTests.pfB
    let host = MigrationServiceTests.twoPFs()
    let folder: String
    let hookPath: String
    let source: MigrationService
    let destination: MigrationService
    let mac = try! MACAddress.parse("52:54:00:77:00:09", field: "mac")

    /// The hook logs each request as one line, fails an action when a file
    /// `fail-ACTION[-TARGET]` exists (exit 3, a virsh-like complaint on
    /// stderr), answers `unsupported` for a steer when `no-lever` exists.
    init() throws {
        folder = NSTemporaryDirectory() + "sriovd-mig-hook-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        hookPath = folder + "/libvirt-hook"
        let script = """
            #!/bin/sh
            dir='\(folder)'
            req=$(cat)
            printf '%s\\n' "$req" >> "$dir/requests.log"
            action=$(printf '%s' "$req" | sed -n 's/.*"action":"\\([^"]*\\)".*/\\1/p')
            target=$(printf '%s' "$req" | sed -n 's/.*"steerTo":"\\([^"]*\\)".*/\\1/p')
            if [ -e "$dir/fail-$action" ] || [ -e "$dir/fail-$action-$target" ]; then
              echo "error: failed to get domain 'vm1'" >&2
              exit 3
            fi
            if [ "$action" = steer ] && [ -e "$dir/no-lever" ]; then
              echo '{"result":"unsupported","message":"this guest has no bond to switch"}'
              exit 0
            fi
            echo '{"result":"done","message":"'"$action"' done by the hook"}'
            """
        try script.write(toFile: hookPath, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hookPath)
        source = try Self.service(host: host, dir: folder + "/a")
        destination = try Self.service(host: host, dir: folder + "/b")
    }

    static func service(host: FakeHost, dir: String) throws -> MigrationService {
        try MigrationServiceTests.service(host: host, dir: dir, adapters: { FailoverAdapters.make($0, hookDeadline: .seconds(20)) })
    }

    func nic(_ pf: PCIAddress) throws -> MigrationNIC {
        MigrationNIC(
            nic: "net0", pf: pf, driver: .vfio, config: VFConfig(mac: mac, vlan: try VLANID(100)),
            failover: .hook(command: hookPath))
    }

    /// Each request the hook received: action, steerTo, and the VF's fields.
    func requests() throws -> [HookRequest] {
        guard let text = try? String(contentsOfFile: folder + "/requests.log", encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(HookRequest.self, from: Data($0.utf8)) }
    }

    func summary() throws -> [String] {
        try requests().map { r in r.action.rawValue + (r.steerTo.map { " \($0)" } ?? "") }
    }

    func touch(_ name: String) {
        FileManager.default.createFile(atPath: folder + "/" + name, contents: nil)
    }

    @Test("assign, incoming, prepare, complete: the hook is asked attach, steer vf; standby-up, steer standby, detach; attach, steer vf, with the VF, its PCI address, PF, MAC, the VM and NIC")
    func fullCycle() async throws {
        let assigned = try await source.assignments.assign(try nic(Self.pfA).request(vm: "vm1"))
        guard case .created(let a) = assigned else { throw CancellationError() }
        let log = try summary()
        #expect(log == ["attach", "steer vf"], "assigning attaches and makes the VF the guest's path: \(log)")
        let first = try #require(try requests().first)
        #expect(first.vm == "vm1" && first.nic == "net0")
        #expect(first.vf.pci == a.vf.description && first.vf.pf == Self.pfA.description && first.vf.index == a.vfIndex)
        #expect(first.vf.mac == mac.description)

        _ = try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [try nic(Self.pfB)]))
        #expect(try summary() == ["attach", "steer vf"], "a reservation is not attached")
        let reserved = try #require(try destination.store.assignment(NICKey(vm: "vm1", nic: "net0")))

        let prepared = try await source.prepare(vm: "vm1")
        #expect(prepared.state == .prepared)
        let prepared_ = try summary()
        #expect(prepared_ == ["attach", "steer vf", "standby-up", "steer standby", "detach"], "\(prepared_)")
        #expect(try requests().dropFirst(2).allSatisfy { $0.vf.pci == a.vf.description && $0.vf.mac == mac.description })
        #expect(prepared.timeline.first { $0.step == "standby-up" }?.lever == "hook standby-up")
        #expect(prepared.timeline.map(\.step) == ["standby-up", "steer", "link-state", "clear-mac", "detach", "release"])
        let steer = try #require(prepared.timeline.first { $0.step == "steer" })
        #expect(steer.lever == "hook steer" && steer.detail == "steer done by the hook" && steer.result == "ok")
        #expect(try source.store.assignment(a.key) == nil, "the source VF is free")

        let completed = try await destination.complete(vm: "vm1")
        #expect(completed.state == .completed)
        #expect(try summary() == ["attach", "steer vf", "standby-up", "steer standby", "detach", "attach", "steer vf"])
        let back = try requests().suffix(2)
        #expect(back.allSatisfy { $0.vf.pci == reserved.vf.description && $0.vf.pf == Self.pfB.description })
        #expect(back.allSatisfy { $0.vf.mac == mac.description && $0.vm == "vm1" && $0.nic == "net0" })
        #expect(completed.timeline.first { $0.step == "standby-restore" }?.detail?.contains("left as it is") == true)
    }

    @Test("a hook that fails to steer to the standby: prepare rolled back, the step and what the hook said named, the guest asked to take its VF back")
    func failingHookRollsBack() async throws {
        let assigned = try await source.assignments.assign(try nic(Self.pfA).request(vm: "vm1"))
        guard case .created(let a) = assigned else { throw CancellationError() }
        touch("fail-steer-standby")
        let error = await #expect(throws: ControllerError.self) { try await source.prepare(vm: "vm1") }
        #expect(error?.description.contains("steer") == true)
        let m = try source.show(vm: "vm1")
        #expect(m.state == .failed)
        #expect(m.error?.step == "steer" && m.error?.nic == "net0")
        #expect(m.error?.reason.contains("exited with status 3") == true)
        #expect(m.error?.reason.contains("failed to get domain 'vm1'") == true, "the hook's stderr: \(m.error?.reason ?? "")")
        #expect(try source.store.assignment(a.key)?.state == .assigned)
        #expect(try source.store.assignment(a.key)?.vf == a.vf)
        // The hook was asked to put the VF back and steer to it.
        let after = try summary().drop(while: { $0 != "steer standby" }).dropFirst()
        #expect(after.contains("attach") && after.last == "steer vf", "\(after)")
    }

    @Test("a hook without a steering lever: the step is skipped with the hook's reason; the VF is unplugged before its MAC is cleared")
    func noLever() async throws {
        _ = try await source.assignments.assign(try nic(Self.pfA).request(vm: "vm1"))
        touch("no-lever")
        let prepared = try await source.prepare(vm: "vm1")
        #expect(prepared.state == .prepared)
        let steer = try #require(prepared.timeline.first { $0.step == "steer" })
        #expect(steer.result == "skipped" && steer.lever == nil)
        #expect(steer.detail == "this guest has no bond to switch")
        // Nothing moved the traffic (igb has no VF link state either): the
        // VF is unplugged while it still carries it, and its MAC cleared after.
        #expect(prepared.timeline.map(\.step) == ["standby-up", "steer", "link-state", "detach", "clear-mac", "release"])
        #expect(prepared.timeline.first { $0.step == "detach" }?.detail?.contains("no lever moved the traffic") == true)
    }

    @Test("a hook path that is not executable is refused naming the field, before anything changes")
    func badHookPath() async throws {
        try "#!/bin/sh\n".write(toFile: folder + "/not-exec", atomically: true, encoding: .utf8)
        var body = try nic(Self.pfB)
        body.failover = .hook(command: folder + "/not-exec")
        do {
            _ = try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [body]))
            Issue.record("accepted a hook that cannot run")
        } catch {
            guard case .invalid(let v) = error else { Issue.record("\(error)"); return }
            #expect(v.field == "nics[0].failover.command" && v.reason == "is not executable")
        }
        #expect(try destination.store.assignments().isEmpty)
        #expect(try requests().isEmpty)
    }
}
