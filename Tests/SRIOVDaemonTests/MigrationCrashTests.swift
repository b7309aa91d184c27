import Foundation
import Logging
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import SRIOVHypervisor
import Synchronization
import Testing
@testable import SRIOVDaemon

/// Every crash point of every migration operation, for each kind of
/// adapter: the operation is stopped for good at the point (as a killed
/// daemon would leave it: `CrashPoints.halting`), a fresh daemon on the same
/// state folder and host runs recovery, and the migration must be settled
/// with the guest, the store and the VFs agreeing.
@Suite("Migration recovery at every crash point (fake guest with and without a lever, and a real hook executable)")
struct MigrationCrashTests {
    static let pfA = MigrationServiceTests.pfA
    static let pfB = MigrationServiceTests.pfB
    static let mac = try! MACAddress.parse("52:54:00:77:00:0c", field: "mac")

    /// The guest's side, as each adapter lets a test see it.
    enum Kind: String, CaseIterable, Sendable {
        /// A guest with a steering lever (as netns).
        case lever
        /// A guest without one (as QMP without a guest agent).
        case qmp
        /// A real executable, as an operator's libvirt hook.
        case hook
    }

    /// One world: a fake host with two PFs, a guest, two state folders.
    struct World {
        let kind: Kind
        let host = MigrationServiceTests.twoPFs()
        let guest: FakeGuest
        let folder = NSTemporaryDirectory() + "sriovd-mig-crash-\(UUID().uuidString)"
        var dirA: String { folder + "/a" }
        var dirB: String { folder + "/b" }
        var hookPath: String { folder + "/hook" }

        init(_ kind: Kind) throws {
            self.kind = kind
            guest = FakeGuest(leverless: kind == .qmp)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            if kind == .hook {
                // Keeps the guest's state in files: which VF it holds, which is active.
                let script = """
                    #!/bin/sh
                    dir='\(folder)'
                    req=$(cat)
                    printf '%s\\n' "$req" >> "$dir/requests.log"
                    action=$(printf '%s' "$req" | sed -n 's/.*"action":"\\([^"]*\\)".*/\\1/p')
                    target=$(printf '%s' "$req" | sed -n 's/.*"steerTo":"\\([^"]*\\)".*/\\1/p')
                    pci=$(printf '%s' "$req" | sed -n 's/.*"pci":"\\([^"]*\\)".*/\\1/p')
                    if [ -e "$dir/fail-$action" ]; then echo "the guest refused $action" >&2; exit 3; fi
                    touch "$dir/attached"
                    case "$action" in
                      attach) grep -qx "$pci" "$dir/attached" || echo "$pci" >> "$dir/attached" ;;
                      detach)
                        grep -vx "$pci" "$dir/attached" > "$dir/attached.new"; mv "$dir/attached.new" "$dir/attached"
                        if [ "$(cat "$dir/active" 2>/dev/null)" = "$pci" ]; then echo standby > "$dir/active"; fi ;;
                      steer)
                        if [ "$target" = standby ]; then echo standby > "$dir/active"
                        elif grep -qx "$pci" "$dir/attached"; then echo "$pci" > "$dir/active"
                        else echo "$pci is not attached" >&2; exit 3; fi ;;
                    esac
                    echo '{"result":"done"}'
                    """
                try script.write(toFile: hookPath, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hookPath)
            }
        }

        /// The fake guest stands behind a netns spec whatever it plays (the
        /// spec only picks the adapter).
        var failover: FailoverSpec {
            kind == .hook ? .hook(command: hookPath) : .netns(namespace: "guest", bond: "bond0", standby: "veth-g")
        }

        func nic(_ pf: PCIAddress) throws -> MigrationNIC {
            MigrationNIC(
                nic: "net0", pf: pf, driver: kind == .hook ? .vfio : .host,
                config: VFConfig(mac: MigrationCrashTests.mac, vlan: try VLANID(100)), failover: failover)
        }

        func service(_ dir: String, _ crashPoints: CrashPoints = .none) throws -> MigrationService {
            let guest = self.guest
            let adapters: @Sendable (FailoverSpec) -> any FailoverAdapter
            if kind == .hook {
                adapters = { spec in FailoverAdapters.make(spec, hookDeadline: .seconds(20)) }
            } else {
                adapters = { _ in guest }
            }
            return try MigrationServiceTests.service(host: host, dir: dir, adapters: adapters, crashPoints: crashPoints)
        }

        func refuseDetach(_ refuse: Bool) {
            guest.state.withLock { $0.failing = refuse ? ["detach"] : [] }
            let flag = folder + "/fail-detach"
            if refuse {
                FileManager.default.createFile(atPath: flag, contents: nil)
            } else {
                try? FileManager.default.removeItem(atPath: flag)
            }
        }

        /// The VF the guest's traffic goes through (nil: its standby).
        func active() -> PCIAddress? {
            guard kind == .hook else { return guest.state.withLock { $0.active } }
            let text = (try? String(contentsOfFile: folder + "/active", encoding: .utf8)) ?? "standby"
            return try? PCIAddress.parse(text.trimmingCharacters(in: .whitespacesAndNewlines), field: "vf")
        }

        func macOn(_ vf: PCIAddress) -> MACAddress? {
            host.state.withLock { s in
                for (pf, p) in s.pfs { for (i, v) in p.vfs where FakeHost.vfAddress(i, of: pf) == vf { return v.settings.mac } }
                return nil
            }
        }

        /// VFs (of both PFs) that carry the guest's MAC.
        func vfsWithMAC() -> [PCIAddress] {
            host.state.withLock { s in
                s.pfs.flatMap { (pf, p) in
                    p.vfs.filter { $0.value.settings.mac == MigrationCrashTests.mac }.map { FakeHost.vfAddress($0.key, of: pf) }
                }
            }
        }
    }

    /// An operation and what it needs done before.
    enum Operation: String, CaseIterable, Sendable {
        case incoming, prepare, complete, abortSource, abortDestination, prepareRollback
    }

    /// Brings `world` to just before `operation` (with daemons that do not crash).
    static func setUp(_ world: World, for operation: Operation) async throws {
        let source = try world.service(world.dirA)
        let destination = try world.service(world.dirB)
        _ = try await source.assignments.assign(try world.nic(pfA).request(vm: "vm1"))
        if operation == .incoming { return }
        _ = try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [try world.nic(pfB)]))
        if operation == .abortDestination || operation == .prepare { return }
        if operation == .prepareRollback { return }
        _ = try await source.prepare(vm: "vm1")
    }

    /// Runs `operation` on the daemon that does it, with `crashPoints`.
    static func run(_ world: World, _ operation: Operation, _ crashPoints: CrashPoints) async throws {
        let source = try world.service(world.dirA, crashPoints)
        let destination = try world.service(world.dirB, crashPoints)
        switch operation {
        case .incoming: _ = try await destination.incoming(vm: "vm1", MigrationIncomingBody(nics: [try world.nic(pfB)]))
        case .prepare: _ = try await source.prepare(vm: "vm1")
        case .complete: _ = try await destination.complete(vm: "vm1")
        case .abortSource: _ = try await source.abort(vm: "vm1")
        case .abortDestination: _ = try await destination.abort(vm: "vm1")
        case .prepareRollback:
            // The guest refuses the unplug: prepare rolls back.
            world.refuseDetach(true)
            _ = try? await source.prepare(vm: "vm1")
        }
    }

    /// The points `operation` passes, in order.
    static func points(_ kind: Kind, _ operation: Operation) async throws -> [String] {
        let world = try World(kind)
        try await setUp(world, for: operation)
        let passed = Passed()
        try await run(world, operation, CrashPoints { point in passed.points.withLock { $0.append(point) } })
        return passed.points.withLock { $0 }
    }

    /// Stops `operation` at `point`, then recovers with fresh daemons;
    /// returns them.
    static func crash(_ world: World, _ operation: Operation, at point: String) async throws -> (MigrationService, MigrationService) {
        let reached = Passed()
        let ended = Passed()
        let halting = CrashPoints.halting(at: point) { reached.points.withLock { $0.append(point) } }
        Task {
            defer { ended.points.withLock { $0.append("ended") } }
            try? await run(world, operation, halting)
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while reached.isEmpty, ended.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        try #require(!reached.isEmpty, "\(operation) never reached \(point)")
        world.refuseDetach(false)
        // The restart: new daemons on the same folders and host.
        let source = try world.service(world.dirA)
        let destination = try world.service(world.dirB)
        for daemon in [source, destination] {
            await daemon.assignments.recover()
            await daemon.recover()
        }
        return (source, destination)
    }

    static let key = NICKey(unchecked: "vm1", nic: "net0")

    /// What must hold after the restart, by operation.
    static func check(_ world: World, _ operation: Operation, point: String, _ source: MigrationService, _ destination: MigrationService) throws {
        let at = "\(world.kind) \(operation) at \(point)"
        // Whatever happened, one VF at most carries the guest's MAC.
        #expect(world.vfsWithMAC().count <= 1, "\(at): the MAC is on \(world.vfsWithMAC())")
        let onSource = try source.store.assignment(key)
        let onDestination = try destination.store.assignment(key)
        #expect(try source.store.interruptedMigrations().isEmpty && destination.store.interruptedMigrations().isEmpty, "\(at)")
        switch operation {
        case .incoming:
            #expect(try destination.show(vm: "vm1").state == .failed, "\(at)")
            #expect(onDestination == nil, "\(at): the reservation is released")
            #expect(world.active() == onSource?.vf && onSource != nil, "\(at): the guest is on its source VF")
        case .prepare, .prepareRollback, .abortSource:
            let state = try source.show(vm: "vm1").state
            #expect(state == (operation == .abortSource ? .aborted : .failed), "\(at): \(state)")
            let a = try #require(onSource, "\(at): the source NIC has a VF again")
            #expect(a.state == .assigned, "\(at)")
            #expect(world.active() == a.vf, "\(at): the guest's traffic is on its VF")
            #expect(world.macOn(a.vf) == mac, "\(at)")
            if let reserved = onDestination {
                #expect(world.macOn(reserved.vf) == .zero, "\(at): the reservation carries no MAC")
            }
        case .complete:
            #expect(try destination.show(vm: "vm1").state == .completed, "\(at)")
            let a = try #require(onDestination, "\(at)")
            #expect(world.active() == a.vf, "\(at): the guest's traffic is on the new VF")
            #expect(world.macOn(a.vf) == mac, "\(at): with its MAC")
            #expect(try destination.show(vm: "vm1").timeline.contains { $0.step == "mac" && $0.result == "ok" }, "\(at)")
            if world.kind != .hook {
                // The host driver took the MAC: re-probed after it was last written.
                let operations = world.host.state.withLock { $0.operations }
                let written = operations.lastIndex(of: "write \(a.vf) mac")
                let bound = operations.lastIndex(of: "bind \(a.vf) host")
                #expect(written != nil && bound != nil && bound! > written!, "\(at): \(operations.filter { $0.contains(a.vf.description) })")
            }
        case .abortDestination:
            #expect(try destination.show(vm: "vm1").state == .aborted, "\(at)")
            #expect(onDestination == nil, "\(at): the reservation is released")
            #expect(world.active() == onSource?.vf && onSource != nil, "\(at)")
        }
    }

    @Test(
        "a crash at any point of incoming, prepare (and its rollback), complete and abort is repaired at the restart",
        arguments: Kind.allCases)
    func everyPoint(kind: Kind) async throws {
        for operation in Operation.allCases {
            let points = try await Self.points(kind, operation)
            let expected = Self.expectedPoints(kind, operation)
            #expect(expected.isSubset(of: Set(points)), "\(kind) \(operation): \(points)")
            for point in points {
                let world = try World(kind)
                try await Self.setUp(world, for: operation)
                let (source, destination) = try await Self.crash(world, operation, at: point)
                try Self.check(world, operation, point: point, source, destination)
            }
        }
    }

    /// The journaled steps each operation must offer as crash points.
    static func expectedPoints(_ kind: Kind, _ operation: Operation) -> Set<String> {
        switch operation {
        case .incoming: ["assign.reserved", "assign.programmed", "assign.bound", "migration.incoming.reserve"]
        case .prepare:
            [
                "migration.prepare.standby-up", "migration.prepare.steer", "migration.prepare.link-state",
                "migration.prepare.clear-mac", "migration.prepare.detach", "migration.prepare.release", "release.unbound",
            ]
        case .complete:
            Set(["migration.complete.mac", "migration.complete.attach", "migration.complete.wait", "migration.complete.steer"])
                .union(kind == .hook ? [] : ["migration.complete.mac.set"])
        case .abortSource: ["migration.abort.reassign", "migration.abort.attach", "migration.abort.wait", "migration.abort.steer"]
        case .abortDestination: ["release.begun", "release.unbound", "release.restored", "migration.abort.release"]
        case .prepareRollback: ["migration.rollback.reassign", "migration.rollback.attach", "migration.rollback.steer"]
        }
    }

}

/// Points passed, shared with a crash hook.
final class Passed: Sendable {
    let points = Mutex<[String]>([])
    var isEmpty: Bool { points.withLock { $0.isEmpty } }
}
