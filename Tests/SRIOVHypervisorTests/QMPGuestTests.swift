import Foundation
import SRIOVCore
import Testing

@testable import SRIOVHypervisor

/// One booted guest for the whole suite (a boot costs ten seconds or more).
/// One per role.
actor SharedGuest {
    static let shared = SharedGuest(role: .plain)
    static let failover = SharedGuest(role: .failover)
    nonisolated(unsafe) static var running: [Int32] = []
    let role: QEMUGuestProcess.Role
    private var guest: Result<QEMUGuestProcess, any Error>?

    init(role: QEMUGuestProcess.Role) { self.role = role }

    func get() throws -> QEMUGuestProcess {
        if let guest { return try guest.get() }
        let result = Result { try QEMUGuestProcess(role: role) }
        guest = result
        if case .success(let process) = result {
            // The test process may end without deinitialising a shared
            // value: QEMU must not outlive it.
            if Self.running.isEmpty { atexit { for pid in SharedGuest.running { kill(pid, SIGKILL) } } }
            Self.running.append(process.pid)
        }
        return try result.get()
    }
}

/// The QMP adapter against a real QEMU running a real Linux guest: the
/// guest's own hotplug driver answers plugs and unplugs.
@Suite(.serialized, .enabled(if: QEMUGuestProcess.shouldRun, "needs QEMU, a kernel in /boot and busybox (scripts/install-deps.sh)"))
struct QMPGuestTests {
    func target(_ guest: QEMUGuestProcess, device: String, bus: String = "rp1") -> QMPTarget {
        QMPTarget(socket: guest.qmpSocket, device: device, bus: bus, standby: "standby")
    }

    @Test func greetingAndDevicesOfTheRunningGuest() async throws {
        let guest = try await SharedGuest.shared.get()
        let (version, ids) = try await QMPConnection.with(socket: guest.qmpSocket) { qmp in
            (qmp.qemuVersion, QMPGuest.deviceIDs(inQueryPCI: try await qmp.execute("query-pci")))
        }
        #expect(version.split(separator: ".").count == 3)
        #expect(!version.hasPrefix("?"))
        #expect(ids.isSuperset(of: ["standby", "rp1", "rp2", "rp3"]))
    }

    @Test func hotPlugAndUnplugAnsweredByTheGuest() async throws {
        let guest = try await SharedGuest.shared.get()
        let before = try #require(guest.guestPCIFunctions)
        let nic = QMPGuest(target: target(guest, device: "vf0"), unplugDeadline: .seconds(30))

        #expect(try await nic.plug(driver: "e1000e", properties: ["netdev": "plug1"]) == .attached)
        try guest.waitForGuestPCIFunctions(before + 1, timeout: 30)
        #expect(try await nic.isPresent())
        // Attaching is "make it present": a second attach leaves it as it is.
        #expect(try await nic.plug(driver: "e1000e", properties: ["netdev": "plug1"]) == .alreadyPresent)

        let outcome = try await nic.detach()
        guard case .detached(let after) = outcome else {
            Issue.record("expected the guest to release the device, got \(outcome)")
            return
        }
        #expect(after < .seconds(30))
        try guest.waitForGuestPCIFunctions(before, timeout: 30)
        #expect(try await !nic.isPresent())
        #expect(try await nic.detach() == .alreadyAbsent)
    }

    @Test func unplugOfAPausedGuestTimesOutAndSaysWhy() async throws {
        let guest = try await SharedGuest.shared.get()
        let before = try #require(guest.guestPCIFunctions)
        let nic = QMPGuest(target: target(guest, device: "vf1", bus: "rp2"), unplugDeadline: .seconds(3))
        #expect(try await nic.plug(driver: "e1000e", properties: ["netdev": "plug2"]) == .attached)
        try guest.waitForGuestPCIFunctions(before + 1, timeout: 30)

        try await QMPConnection.with(socket: guest.qmpSocket) { try await $0.execute("stop") }
        let error = await #expect(throws: QMPGuestError.self) { try await nic.detach() }
        #expect(error?.step == .detach)
        #expect(error?.description.contains("the VM is paused") == true)
        #expect(try await nic.isPresent())

        // Resumed, the guest answers the unplug still pending in QEMU.
        try await QMPConnection.with(socket: guest.qmpSocket) { try await $0.execute("cont") }
        try guest.waitForGuestPCIFunctions(before, timeout: 30)
        let deadline = ContinuousClock.now + .seconds(30)
        while try await nic.isPresent(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
        #expect(try await !nic.isPresent())
    }

    @Test func deviceAddErrorsSayWhatToDo() async throws {
        let guest = try await SharedGuest.shared.get()
        // A VF that is not there (no SR-IOV hardware on this machine).
        let missing = try PCIAddress.parse("0000:7f:1f.7", field: "vf")
        let vf = QMPGuest(target: target(guest, device: "vf9", bus: "rp3"))
        let noDevice = await #expect(throws: QMPGuestError.self) { try await vf.attach(vf: missing) }
        #expect(noDevice?.step == .attach)
        #expect(noDevice?.qemu?.isEmpty == false)
        #expect(noDevice?.description.contains("0000:7f:1f.7") == true)
        #expect(noDevice?.description.contains("vfio-pci") == true)
        #expect(try await !vf.isPresent())

        let noBus = QMPGuest(target: target(guest, device: "vf9", bus: "nosuchport"))
        let busError = await #expect(throws: QMPGuestError.self) {
            try await noBus.plug(driver: "e1000e", properties: ["netdev": "plug1"])
        }
        #expect(busError?.description.contains("has no bus nosuchport") == true)
    }

    @Test func standbyLinkIsSetThroughQMPAndSeenByTheGuest() async throws {
        let guest = try await SharedGuest.shared.get()
        let mac = "52:54:00:5a:01:01"  // the standby virtio-net device
        let nic = QMPGuest(target: target(guest, device: "vf0"))
        try guest.waitForGuestCarrier(mac: mac, up: true, timeout: 30)
        try await nic.setStandbyLink(up: false)
        try guest.waitForGuestCarrier(mac: mac, up: false, timeout: 30)
        try await nic.setStandbyLink(up: true)
        try guest.waitForGuestCarrier(mac: mac, up: true, timeout: 30)

        let wrong = QMPGuest(target: QMPTarget(socket: guest.qmpSocket, device: "vf0", bus: "rp1", standby: "nosuchnic"))
        let error = await #expect(throws: QMPGuestError.self) { try await wrong.setStandbyLink(up: true) }
        #expect(error?.step == .setLink)
        #expect(error?.description.contains("nosuchnic") == true)
    }

}

@Suite("QMP adapter without a running QEMU")
struct QMPGuestWithoutQEMUTests {
    let guest = QMPGuest(target: QMPTarget(
        socket: NSTemporaryDirectory() + "no-such-qemu-\(UUID().uuidString).sock", device: "hostdev0", bus: "rp1",
        standby: "net0"))

    @Test("detach with no monitor there: the VM is gone, so the guest holds nothing")
    func detachWhenGone() async throws {
        #expect(try await guest.detach() == .alreadyAbsent)
        #expect(try await QMPFailover(guest: guest).detach(
            FailoverVF(vm: "vm1", nic: "net0", pci: try .parse("0000:01:10.0", field: "vf"), pf: try .parse("0000:01:00.0", field: "pf"),
                       index: 0, mac: nil)) == false)
    }

    @Test("attach with no monitor there is an error that says what to check")
    func attachWhenGone() async throws {
        do {
            _ = try await guest.attach(vf: try .parse("0000:01:10.0", field: "vf"))
            Issue.record("attached to nothing")
        } catch {
            #expect("\(error)".contains("no such socket"))
        }
    }
}
