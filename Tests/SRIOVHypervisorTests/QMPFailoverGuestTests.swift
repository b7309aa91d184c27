import Foundation
import SRIOVCore
import Testing

@testable import SRIOVHypervisor

/// The probes of one phase: the ping sequence numbers the guest sent in it
/// (known from the replies on either side) and which of them got no reply.
struct ProbeWindow: CustomStringConvertible {
    var first: Int
    var last: Int
    var lost: [Int]

    var sent: Int { max(0, last - first + 1) }
    /// The longest run of consecutive probes without a reply.
    var longestRun: Int {
        var longest = 0, run = 0, previous = Int.min
        for n in lost.sorted() {
            run = n == previous + 1 ? run + 1 : 1
            longest = max(longest, run)
            previous = n
        }
        return longest
    }

    var description: String { "\(sent) sent, \(lost.count) lost, longest run lost \(longestRun)" }
}

/// A whole prepare and complete driven through QMP against a real QEMU
/// running a real Linux guest that bonds a hot-plugged PCIe NIC (primary)
/// with its virtio-net standby, while the guest pings every 10 ms. A VF
/// cannot be passed through on this machine (no SR-IOV, and a guest nested
/// in the SR-IOV test VM does not boot), so the plugged NIC is an emulated
/// e1000e with the guest's MAC on the same network; the QMP calls, the
/// guest's hotplug driver and its bond are real. The figures are printed.
@Suite(.serialized, .enabled(if: QEMUGuestProcess.shouldRun, "needs QEMU, a kernel in /boot and busybox (scripts/install-deps.sh)"))
struct QMPFailoverGuestTests {
    /// Probes while `body` runs and until the replies have come back for
    /// `settle` (a window ends with traffic flowing, so the last probe sent
    /// in it is known).
    func window(
        _ guest: QEMUGuestProcess, settle: Duration = .seconds(2), _ body: () async throws -> Void
    ) async throws -> ProbeWindow {
        let first = (guest.pingReplies.max() ?? 0) + 1
        try await body()
        let afterBody = guest.pingReplies.max() ?? 0
        try await Task.sleep(for: settle)
        let last = guest.pingReplies.max() ?? 0
        #expect(last > afterBody, "replies came back after the phase")
        let replies = guest.pingReplies
        return ProbeWindow(first: first, last: last, lost: (first...max(first, last)).filter { !replies.contains($0) })
    }

    func waitForReplies(_ guest: QEMUGuestProcess, count: Int, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while guest.pingReplies.count < count {
            if Date() > deadline {
                throw QEMUGuestProcess.Failure(description: "the guest's pings get no replies; console:\n\(guest.consoleText.suffix(2000))")
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    @Test("prepare (standby link up, no steering lever, device_del awaited) moves the guest's traffic to its virtio-net standby; complete (device_add) brings it back to the plugged NIC; probes every 10 ms measured")
    func prepareAndCompleteThroughQMP() async throws {
        let guest = try QEMUGuestProcess(role: .failover)
        defer { guest.stop() }
        try guest.waitForActiveSlave(driver: "virtio_net", timeout: 60)
        try waitForReplies(guest, count: 20, timeout: 60)

        let mac = try MACAddress.parse(QEMUGuestProcess.guestMAC, field: "mac")
        let qmp = QMPGuest(
            target: QMPTarget(socket: guest.qmpSocket, device: "vf0", bus: "rp1", standby: "standby"),
            unplugDeadline: .seconds(30))
        let adapter = QMPFailover(guest: qmp)
        let vf = FailoverVF(
            vm: "vm1", nic: "net0", pci: try PCIAddress.parse("0000:7f:00.1", field: "vf"),
            pf: try PCIAddress.parse("0000:7f:00.0", field: "pf"), index: 0, mac: mac)
        let plugged: [String: JSONValue] = ["netdev": .string("plug1"), "mac": .string(mac.description)]

        // The guest gets its "VF": plugged, enslaved and made primary by the guest.
        #expect(try await qmp.plug(driver: "e1000e", properties: plugged) == .attached)
        try guest.waitForActiveSlave(driver: "e1000e", timeout: 60)
        let onNIC = try await window(guest, settle: .seconds(3)) {}

        // prepare, as the migration engine runs it through this adapter.
        var detachTook = Duration.zero
        var steer = LeverOutcome(lever: nil)
        let prepare = try await window(guest) {
            _ = try await adapter.setStandby(up: true, vf: vf)
            steer = try await adapter.steer(to: .standby, vf: vf)
            let start = ContinuousClock.now
            #expect(try await adapter.detach(vf), "the guest released the device")
            detachTook = ContinuousClock.now - start
        }
        #expect(steer.lever == nil && steer.note?.contains("no switch inside the guest") == true)
        #expect(try await qmp.isPresent() == false)
        try guest.waitForActiveSlave(driver: "virtio_net", timeout: 10)
        let onStandby = try await window(guest, settle: .seconds(3)) {}
        #expect(onStandby.lost.isEmpty && onStandby.sent > 50, "traffic continues on the standby: \(onStandby)")

        // complete: plugged again; the guest makes it primary.
        let complete = try await window(guest) {
            #expect(try await qmp.plug(driver: "e1000e", properties: plugged) == .attached)
            try guest.waitForActiveSlave(driver: "e1000e", timeout: 60)
        }
        let back = try await window(guest, settle: .seconds(3)) {}
        #expect(back.lost.isEmpty && back.sent > 50, "traffic runs on the plugged NIC again: \(back)")
        #expect(onNIC.lost.isEmpty && onNIC.sent > 50, "no-switch baseline on the plugged NIC: \(onNIC)")

        print("""
            QMP failover in a real guest (TCG, probes every 10 ms):
              no switch, on the plugged NIC: \(onNIC)
              prepare (set_link standby on, no steering lever, device_del + DEVICE_DELETED in \(detachTook.milliseconds) ms): \(prepare)
              no switch, on the standby: \(onStandby)
              complete (device_add, the guest's bond takes it as primary): \(complete)
              no switch, back on the plugged NIC: \(back)
            """)
    }
}

extension Duration {
    fileprivate var milliseconds: Int {
        let (s, a) = components
        return Int(s) * 1000 + Int(a / 1_000_000_000_000_000)
    }
}
