import Foundation
import HTTPTypes
import Hummingbird
import SRIOVRouterTesting
import Logging
import NIOCore
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import Testing

@testable import SRIOVDaemon

/// A PF whose driver holds its writes (seconds, for a firmware call) must
/// not hold the other PFs': the per-PF lock is the only thing that orders
/// writes, and it is per PF.
@Suite("PF independence")
struct PFIndependenceTests {
    let slowPF = FakeHost.address("0000:01:00.0")
    let fastPF = FakeHost.address("0000:02:00.0")
    let host: FakeHost

    init() {
        host = FakeHost([
            FakeHost.PF(address: slowPF, autoprobe: false, vfs: 2),
            FakeHost.PF(address: fastPF, autoprobe: false, vfs: 3),
        ])
    }

    func mac(_ pf: Int, _ vf: Int) -> String { String(format: "52:54:00:00:%02x:%02x", pf, vf) }

    @Test("while one PF's write is held in its driver, the other PF's VFs are programmed through the API and answered")
    func slowPFLeavesTheOthersFree() async throws {
        let store = try StateStore(directory: NSTemporaryDirectory() + "sriovd-pfs-\(UUID().uuidString)")
        let controller = VFController(
            host: host, store: store, logger: Logger(label: "test"), verifyAttempts: 3, verifyInterval: .milliseconds(1))
        let app = Application(router: makeRouter(inventory: host, controller: controller, maxBodyBytes: 4096))
        let (host, slowPF, fastPF) = (self.host, self.slowPF, self.fastPF)
        let gate = host.holdWrites(pf: slowPF)
        let slowVF = FakeHost.vfAddress(0, of: slowPF)
        let slowMAC = mac(1, 0)

        try await app.test(.router) { client in
            @Sendable func patch(_ vf: PCIAddress, mac: String) async throws -> HTTPResponse.Status {
                try await client.execute(
                    uri: "/v1/vfs/\(vf)", method: .patch, headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: #"{"mac":"\#(mac)","trust":true}"#)
                ) { $0.status }
            }
            let slow = Task { try await patch(slowVF, mac: slowMAC) }
            #expect(await gate.waitUntilHeld(), "the slow PF's write never reached its driver")

            // The slow PF's write is held: the fast PF's VFs, several at once,
            // are programmed and answered meanwhile.
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<3 {
                    group.addTask { try await patch(FakeHost.vfAddress(index, of: fastPF), mac: self.mac(2, index)) }
                }
                for try await status in group { #expect(status == .ok) }
            }
            for index in 0..<3 {
                #expect(host.vf(index, of: "0000:02:00.0")?.settings.mac?.description == mac(2, index))
            }
            #expect(host.vf(0, of: "0000:01:00.0")?.settings.mac == .zero, "the held write took effect early")
            #expect(gate.held == 1)

            gate.open()
            #expect(try await slow.value == .ok)
        }
        #expect(host.vf(0, of: "0000:01:00.0")?.settings.mac?.description == slowMAC)
    }

    @Test("two VFs of the held PF wait in its driver together (the PF lock is shared); the other PF is served meanwhile")
    func samePFWorkCompletesAfterTheGate() async throws {
        let store = try StateStore(directory: NSTemporaryDirectory() + "sriovd-pfs-\(UUID().uuidString)")
        let controller = VFController(
            host: host, store: store, logger: Logger(label: "test"), verifyAttempts: 3, verifyInterval: .milliseconds(1))
        let gate = host.holdWrites(pf: slowPF)
        let (slowPF, fastPF) = (self.slowPF, self.fastPF)
        let first = Task { try await controller.configure(vf: FakeHost.vfAddress(0, of: slowPF), VFConfig(trust: true)) }
        let second = Task { try await controller.configure(vf: FakeHost.vfAddress(1, of: slowPF), VFConfig(trust: true)) }
        #expect(await gate.waitUntilHeld(2), "VFs of one PF are written concurrently under the shared PF lock")
        let fast = try await controller.configure(vf: FakeHost.vfAddress(0, of: fastPF), VFConfig(trust: true))
        #expect(!fast.failed)
        gate.open()
        #expect(try await !first.value.failed)
        #expect(try await !second.value.failed)
    }
}
