import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import MetricsTestKit
import NIOCore
import SRIOVAPI
import SRIOVCore
import SRIOVHostTesting
import SRIOVRouterTesting
import Testing
@testable import SRIOVDaemon

@Suite("Operation timers")
struct OperationTimersTests {
    let host = FakeHost.threeVFs()
    let metrics = TestMetrics()
    let store = try! StateStore(directory: NSTemporaryDirectory() + "sriovd-timers-\(UUID().uuidString)")

    func controller() -> VFController {
        withMetricsFactory(metrics) {
            VFController(host: host, store: store, logger: Logger(label: "t"), verifyAttempts: 3, verifyInterval: .milliseconds(1))
        }
    }

    func operation(_ name: String, _ result: String) throws -> TestTimer {
        try metrics.expectTimer(OperationTimers.operationDuration, [("operation", name), ("result", result)])
    }

    /// Host calls timed for `operation`: `netlink.read` or `netlink.write`.
    func hostCalls(_ operation: String, _ call: String) -> [Int64] {
        metrics.timers(label: OperationTimers.hostDuration, dimensions: [("operation", operation), ("call", call)])
            .flatMap(\.values)
    }

    func nanoseconds(_ d: Duration) -> Int64 { d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000 }

    @Test("a VF change is one vf.configure timing, its netlink reads and writes are host timings, and the report carries both")
    func configureTimed() async throws {
        let report = try await controller().configure(vf: host.address(1), VFConfig(vlan: try VLANID(10), trust: true))
        #expect(!report.failed)
        #expect(try operation("vf.configure", "success").values == [nanoseconds(report.duration)])
        let reads = hostCalls("vf.configure", "netlink.read")
        let writes = hostCalls("vf.configure", "netlink.write")
        #expect(writes.count == 1, "one write of the changed settings")
        #expect(reads.count >= 2, "the settings before, and at least one readback")
        let inHost = reads.reduce(0, +) + writes.reduce(0, +)
        // Each value is truncated to whole nanoseconds on its own.
        #expect(abs(inHost - nanoseconds(report.hostTime)) <= Int64(reads.count + writes.count))
        #expect(report.hostTime > .zero && report.hostTime <= report.duration)
        #expect(metrics.timers.allSatisfy { $0.label.hasPrefix("sriovd_") && $0.label.hasSuffix("_seconds") })
    }

    @Test("a request refused before anything is touched is timed as rejected, with no host call")
    func rejectedTimed() async throws {
        let controller = controller()
        await #expect(throws: ControllerError.self) {
            try await controller.configure(vf: host.address(1), VFConfig(qos: try VLANQoS(3)))
        }
        await #expect(throws: ControllerError.self) {
            try await controller.configure(vf: host.address(6), VFConfig(trust: true))  // no such VF
        }
        #expect(try operation("vf.configure", "rejected").values.count == 2)
        #expect(metrics.timers(label: OperationTimers.hostDuration).isEmpty)
        #expect(metrics.timers(label: OperationTimers.operationDuration).count == 1)
    }

    @Test("a setting the host fails makes the operation a failure; the rollback write is host time too")
    func failureTimed() async throws {
        host.state.withLock { $0.failing = [.trust] }
        let report = try await controller().configure(
            vf: host.address(0), VFConfig(mac: try .parse("52:54:00:00:00:07", field: "mac"), trust: true))
        #expect(report.failed)
        #expect(try operation("vf.configure", "failure").values == [nanoseconds(report.duration)])
        #expect(hostCalls("vf.configure", "netlink.write").count == 2, "the request's write, then the MAC's rollback")
    }

    @Test("restore, scrub, driver binding and VF counts are each timed under their own name")
    func otherOperationsTimed() async throws {
        let controller = controller()
        _ = try await controller.configure(vf: host.address(2), VFConfig(trust: true))
        _ = try await controller.restore(vf: host.address(2))
        _ = try await controller.scrub(vf: host.address(2))
        _ = try await controller.bind(vf: host.address(2), to: .vfio)
        try await controller.setNumVFs(pf: host.pf, count: nil, driversAutoprobe: false, force: false)
        for name in ["vf.configure", "vf.restore", "vf.scrub", "vf.bind", "pf.numvfs"] {
            #expect(try operation(name, "success").values.count == 1, "\(name)")
        }
        #expect(!hostCalls("vf.restore", "netlink.write").isEmpty && !hostCalls("vf.scrub", "netlink.write").isEmpty)
    }

    @Test("an assignment is timed whole, with the VF changes made for it timed inside it")
    func assignmentTimed() async throws {
        let service = withMetricsFactory(metrics) { AssignmentServiceTests.makeService(host: host, store: store) }
        let request = AssignmentRequest(
            vm: "vm1", nic: "net0", pool: nil, pf: host.pf, driver: .vfio, config: VFConfig(vlan: try VLANID(100)))
        let created = try await service.assign(request)
        guard case .created(let assignment) = created else { Issue.record("\(created)"); return }
        _ = try await service.release(assignment.key)

        let assign = try operation("assignment.create", "success")
        let configure = try operation("vf.configure", "success")
        #expect(assign.values.count == 1 && configure.values.count == 1)
        #expect(configure.values[0] < assign.values[0], "the VF change is part of the assignment")
        #expect(try operation("vf.bind", "success").values.count == 2, "bound at assign, unbound at release")
        #expect(try operation("assignment.release", "success").values.count == 1)
        #expect(try operation("vf.restore", "success").values.count == 1)
        // Host calls are named by the innermost operation.
        #expect(!hostCalls("vf.configure", "netlink.write").isEmpty)
        #expect(hostCalls("assignment.create", "netlink.write").isEmpty)

        await #expect(throws: ControllerError.self) { try await service.release(assignment.key) }
        #expect(try operation("assignment.release", "rejected").values.count == 1)
    }

    @Test("PATCH's Server-Timing shows the durations the timers recorded")
    func serverTimingFromTimers() async throws {
        let controller = controller()
        let app = Application(router: makeRouter(inventory: try FakeHost.twoPFs(), controller: controller))
        let header = try await app.test(.router) { client in
            try await client.execute(
                uri: "/v1/vfs/\(host.address(1))", method: .patch, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"trust":true}"#)
            ) { response in
                #expect(response.status == .ok)
                return response.headers[HTTPField.Name("Server-Timing")!] ?? ""
            }
        }
        // controller;dur=1.234, netlink;dur=0.567 (milliseconds)
        let values = header.split(separator: ",").compactMap { part in
            part.split(separator: "=").last.flatMap { Double($0) }
        }
        try #require(values.count == 2, "\(header)")
        let recorded = try #require(try operation("vf.configure", "success").lastValue)
        let inHost = hostCalls("vf.configure", "netlink.read").reduce(0, +) + hostCalls("vf.configure", "netlink.write").reduce(0, +)
        #expect(abs(values[0] - Double(recorded) / 1e6) <= 0.001, "\(header) vs \(recorded) ns")
        #expect(abs(values[1] - Double(inHost) / 1e6) <= 0.001, "\(header) vs \(inHost) ns")
    }
}
