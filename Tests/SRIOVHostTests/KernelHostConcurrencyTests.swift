import Foundation
import Logging
import SRIOVCore
import Synchronization
import Testing

@testable import SRIOVHost

#if canImport(Glibc)
import Glibc
#endif

/// `KernelHost` under contention, on its real code paths (sysfs files in a
/// folder, libnl and the own reader over a byte pipe instead of the kernel's
/// socket): a PF whose driver holds a request leaves the other PFs free, and
/// calls that block in the kernel never sit on the cooperative pool.
@Suite("KernelHost concurrency", .serialized)
struct KernelHostConcurrencyTests {
    let slowPF = try! PCIAddress.parse("0000:01:00.0", field: "test")
    let fastPF = try! PCIAddress.parse("0000:02:00.0", field: "test")

    struct NoNames: PCINameResolving {
        func names(vendorID: UInt16, deviceID: UInt16) -> (vendor: String?, device: String?) { (nil, nil) }
    }

    /// Requests held in the "kernel" until released, as a driver busy with
    /// its firmware holds them (the caller's thread blocks in the meantime).
    final class KernelHold: @unchecked Sendable {
        // @unchecked: every field is used under `condition`.
        private let condition = NSCondition()
        private var released = false
        private var arrivedCount = 0

        var arrived: Int { condition.withLock { arrivedCount } }

        func hold() {
            condition.withLock {
                arrivedCount += 1
                while !released { condition.wait() }
            }
        }

        func release() {
            condition.withLock {
                released = true
                condition.broadcast()
            }
        }

        func waitUntilArrived(_ count: Int, timeout: Duration = .seconds(10)) async -> Bool {
            let deadline = ContinuousClock.now + timeout
            while arrived < count {
                if ContinuousClock.now >= deadline { return false }
                try? await Task.sleep(for: .milliseconds(2))
            }
            return true
        }
    }

    /// Two PFs with two VFs each, each PF with a netdev (ifindex 11 and 12).
    func sysfs() throws -> FakeSysfsKernel {
        let kernel = try FakeSysfsKernel()
        for (pf, ifindex) in [(slowPF, 11), (fastPF, 12)] {
            try kernel.addPF(pf, total: 7, numVFs: 2)
            let folder = "\(kernel.root)/bus/pci/devices/\(pf)/net/eth\(ifindex)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try "\(ifindex)\n".write(toFile: folder + "/ifindex", atomically: false, encoding: .utf8)
        }
        return kernel
    }

    /// A value shared between threads and tasks.
    final class Shared<Value: Sendable>: Sendable {
        private let mutex: Mutex<Value>
        init(_ value: Value) { mutex = Mutex(value) }
        var value: Value { mutex.withLock { $0 } }
        func update(_ change: @Sendable (inout Value) -> Void) { mutex.withLock { change(&$0) } }
    }

    /// Waits until `done` is set, at most `timeout`; whether it was.
    func finishes(within timeout: Duration, done: Shared<Bool>) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !done.value {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return true
    }

    @Test("a write held by one PF's driver does not hold another PF's write: each call has its own netlink session")
    func heldWriteLeavesOtherPFsFree() async throws {
        let kernel = try sysfs()
        let hold = KernelHold()
        let sent = Shared<[Int32]>([])
        // Every session is a fake kernel of its own that acknowledges each
        // RTM_SETLINK, holding those for ifindex 11 (the slow PF) first.
        let host = KernelHost(
            sysfs: SysfsTree(root: kernel.root), names: NoNames(), logger: Logger(label: "test"),
            threads: KernelThreads(threads: 4),
            openReader: { LinkReader(transport: FakeNetlinkKernel { _ in [] }) },
            openWriter: {
                try VFSettingsWriter(
                    transport: FakeNetlinkKernel { request in
                        sent.update { $0.append(request.ifindex) }
                        if request.ifindex == 11 { hold.hold() }
                        return [KernelMessageBuilder.datagram { $0.putError(0, answering: request.bytes, capped: true) }]
                    })
            })
        let slowVF = try #require(await host.locate(vf: FakeSysfsKernel.vfAddress(of: slowPF, index: 0)))
        let fastVF = try #require(await host.locate(vf: FakeSysfsKernel.vfAddress(of: fastPF, index: 1)))
        #expect(slowVF.pf == slowPF && fastVF.pf == fastPF && fastVF.index == 1)

        let slow = Task { await host.write(VFConfig(trust: true), to: slowVF) }
        #expect(await hold.waitUntilArrived(1), "the slow PF's request never reached the kernel")

        let fastDone = Shared(false)
        let fast = Task {
            defer { fastDone.update { $0 = true } }
            return await host.write(VFConfig(spoofCheck: false, trust: true), to: fastVF)
        }
        let fastFinished = await finishes(within: .seconds(5), done: fastDone)
        #expect(fastFinished, "the other PF's write waited for the held one")
        #expect(hold.arrived == 1)
        hold.release()

        #expect(await fast.value.map(\.outcome) == [.applied, .applied])
        #expect(await slow.value.map(\.outcome) == [.applied])
        #expect(sent.value == [11, 12, 12])
        // The two calls overlapped, so two writer sessions were opened; both are kept for reuse.
        #expect(host.writers.idleCount == 2)
    }

    @Test("sysfs reads that block in the kernel wait on the kernel threads: more of them than the cooperative pool has threads leave it free")
    func blockingReadsLeaveTheCooperativePool() async throws {
        let kernel = try sysfs()
        // sriov_numvfs of the slow PF as a FIFO: open(2) for reading blocks
        // until a writer comes, as a sysfs read blocks while a driver holds
        // the device.
        let fifo = "\(kernel.root)/bus/pci/devices/\(slowPF)/sriov_numvfs"
        try FileManager.default.removeItem(atPath: fifo)
        #expect(mkfifo(fifo, 0o600) == 0)

        let width = ProcessInfo.processInfo.activeProcessorCount
        let blocked = width + 2
        let host = KernelHost(
            sysfs: SysfsTree(root: kernel.root), names: NoNames(), logger: Logger(label: "test"),
            threads: KernelThreads(threads: blocked + 2),
            openReader: { LinkReader(transport: FakeNetlinkKernel { _ in [] }) },
            openWriter: { try VFSettingsWriter(transport: FakeNetlinkKernel { _ in [] }) })

        // Writes to the FIFO once asked to, or after 20 s regardless (so that
        // a cooperative pool blocked by the reads cannot hang the test), until
        // every read has returned.
        let progressed = DispatchSemaphore(value: 0)
        let releasedEarly = Shared(false)
        let returned = Shared(0)
        let releaser = Thread {
            if progressed.wait(timeout: .now() + 20) == .timedOut { releasedEarly.update { $0 = true } }
            while returned.value < blocked {
                let fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                if fd >= 0 {
                    _ = write(fd, "2\n", 2)
                    close(fd)
                }
                usleep(5_000)
            }
        }
        releaser.start()

        let reads = (0..<blocked).map { _ in
            Task {
                defer { returned.update { $0 += 1 } }
                return await host.numVFs(pf: slowPF)
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        // With every read parked in open(2), other work still runs: on the
        // cooperative pool, and through the host on the other PF.
        let total = await host.totalVFs(pf: fastPF)
        let vfs = await host.vfAddresses(pf: fastPF)
        let stillReleasedByHand = !releasedEarly.value
        let returnedBefore = returned.value
        progressed.signal()
        #expect(stillReleasedByHand, "nothing ran until the blocked reads were released: they held the cooperative pool")
        #expect(total == 7)
        #expect(vfs.map(\.index) == [0, 1])
        #expect(returnedBefore == 0, "a read returned before the FIFO was written")

        for read in reads { _ = await read.value }
        #expect(returned.value == blocked)
    }
}
