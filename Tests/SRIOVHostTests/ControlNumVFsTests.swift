import Foundation
import SRIOVCore
import Testing

@testable import SRIOVHost

private let pf = PCIAddress(bus: 1, device: 0, function: 0)
private let numVFsPath = "bus/pci/devices/0000:01:00.0/sriov_numvfs"

private func kernel(total: Int = 7, numVFs: Int = 0) throws -> FakeSysfsKernel {
    let kernel = try FakeSysfsKernel()
    try kernel.loadDriver("igb")
    try kernel.loadDriver("igbvf")
    try kernel.addPF(pf, total: total, numVFs: numVFs)
    return kernel
}

@Suite("Control: sriov_numvfs")
struct ControlNumVFsTests {
    @Test("a count above sriov_totalvfs is refused before anything is written")
    func countAboveTotalIsRefusedWithoutWriting() async throws {
        let kernel = try kernel(total: 7)
        do {
            try await kernel.control.setNumVFs(pf: pf, to: 8, timeout: .seconds(1))
            Issue.record("8 VFs on a PF with 7 were accepted")
        } catch {
            #expect(error == .vfCountOutOfRange(pf: pf, requested: 8, total: 7))
            #expect(error.description.contains("0000:01:00.0"))
            #expect(error.description.contains("at most 7"))
        }
        #expect(kernel.writes.isEmpty)
    }

    @Test("a negative count is refused before anything is written")
    func negativeCountIsRefused() async throws {
        let kernel = try kernel()
        await #expect(throws: ControlError.vfCountOutOfRange(pf: pf, requested: -1, total: 7)) {
            try await kernel.control.setNumVFs(pf: pf, to: -1, timeout: .seconds(1))
        }
        #expect(kernel.writes.isEmpty)
    }

    @Test("0 to 4 writes the count once and waits until 4 virtfn links exist")
    func zeroToFourWaitsForTheLinks() async throws {
        let kernel = try kernel()
        kernel.configurePF(pf) { $0.appearPerListing = 1 }
        try await kernel.control.setNumVFs(pf: pf, to: 4, timeout: .seconds(5))
        #expect(kernel.writes == [.init(path: numVFsPath, value: "4")])
        #expect(kernel.control.vfLinkCount(pf: pf) == 4)
    }

    @Test("sriov_numvfs and binding writes run on the kernel threads, not on the cooperative threads")
    func blockingWritesLeaveTheCooperativePool() async throws {
        let kernel = try kernel(numVFs: 0)
        try await kernel.control.setNumVFs(pf: pf, to: 2, timeout: .seconds(5))
        try kernel.loadDriver("vfio-pci")
        _ = try await kernel.control.bind(FakeSysfsKernel.vfAddress(of: pf, index: 0), to: .vfio)
        let threads = kernel.writerThreads
        #expect(threads.count >= 3, "numvfs, driver_override, unbind, drivers_probe: \(kernel.writes)")
        // NIOThreadPool names its threads "TP-#n" ("SGLTN-TP-#n" for the singleton).
        #expect(threads.allSatisfy { $0.contains("TP-#") }, "\(threads)")
    }

    @Test("3 to 5 goes through 0, because the kernel refuses nonzero to nonzero (EBUSY)")
    func nonzeroToNonzeroGoesThroughZero() async throws {
        let kernel = try kernel(numVFs: 3)
        #expect(kernel.control.vfLinkCount(pf: pf) == 3)
        try await kernel.control.setNumVFs(pf: pf, to: 5, timeout: .seconds(5))
        #expect(kernel.writes == [.init(path: numVFsPath, value: "0"), .init(path: numVFsPath, value: "5")])
        #expect(kernel.control.vfLinkCount(pf: pf) == 5)
    }

    @Test("the fake kernel itself refuses 3 to 5 with EBUSY, so the test above proves something")
    func fakeKernelRefusesNonzeroToNonzero() throws {
        let kernel = try kernel(numVFs: 3)
        #expect(throws: SysfsError.self) {
            try kernel.writeFile(kernel.root + "/" + numVFsPath, "5")
        }
    }

    @Test("the same count as now writes nothing")
    func sameCountIsANoOp() async throws {
        let kernel = try kernel(numVFs: 3)
        try await kernel.control.setNumVFs(pf: pf, to: 3, timeout: .seconds(1))
        #expect(kernel.writes.isEmpty)
    }

    @Test("3 to 0 writes 0 and waits for the links to go")
    func nonzeroToZero() async throws {
        let kernel = try kernel(numVFs: 3)
        try await kernel.control.setNumVFs(pf: pf, to: 0, timeout: .seconds(1))
        #expect(kernel.writes == [.init(path: numVFsPath, value: "0")])
        #expect(kernel.control.vfLinkCount(pf: pf) == 0)
    }

    @Test("a timeout says how many VFs appeared")
    func timeoutReportsHowManyAppeared() async throws {
        let kernel = try kernel()
        kernel.configurePF(pf) { $0.stallAt = 2 }
        let clock = ContinuousClock()
        let started = clock.now
        do {
            try await kernel.control.setNumVFs(pf: pf, to: 4, timeout: .milliseconds(100))
            Issue.record("a stalled driver was reported as done")
        } catch {
            #expect(error == .vfCountTimedOut(pf: pf, expected: 4, present: 2, timeout: .milliseconds(100)))
            #expect(error.description.contains("only 2 of 4 VFs appeared"))
        }
        #expect(clock.now - started < .seconds(2))
    }

    @Test("the kernel's refusal of a count names the PF, the value and what the errno means")
    func refusedWriteIsReadable() async throws {
        let kernel = try kernel()
        kernel.configurePF(pf) { $0.refuseWith = ENOMEM }
        do {
            try await kernel.control.setNumVFs(pf: pf, to: 5, timeout: .seconds(1))
            Issue.record("an ENOMEM refusal was not reported")
        } catch {
            #expect(error == .vfCountRefused(pf: pf, value: 5, errno: ENOMEM))
            #expect(error.description.contains("5 VFs on PF 0000:01:00.0"))
            #expect(error.description.contains("could not allocate"))
        }
    }

    @Test("EBUSY, EINVAL and ERANGE each get their own explanation")
    func errnoExplanations() {
        let texts = [EBUSY, EINVAL, ERANGE, ENOMEM].map { ControlError.vfCountRefused(pf: pf, value: 2, errno: $0).description }
        #expect(Set(texts).count == 4)
        #expect(texts[0].contains("write 0 first"))
        #expect(texts[2].contains("sriov_totalvfs"))
    }

    @Test("a device without sriov_totalvfs is not a PF")
    func notAPhysicalFunction() async throws {
        let kernel = try kernel()
        let other = PCIAddress(bus: 2, device: 0, function: 0)
        try kernel.addDevice(other, driver: nil, iommuGroup: nil)
        await #expect(throws: ControlError.notAPhysicalFunction(other)) {
            try await kernel.control.setNumVFs(pf: other, to: 1, timeout: .seconds(1))
        }
        await #expect(throws: ControlError.noSuchDevice(PCIAddress(bus: 9, device: 0, function: 0))) {
            try await kernel.control.setNumVFs(pf: PCIAddress(bus: 9, device: 0, function: 0), to: 1, timeout: .seconds(1))
        }
    }

    @Test("autoprobe is written as 0 or 1")
    func autoprobe() throws {
        let kernel = try kernel()
        try kernel.control.setDriversAutoprobe(pf: pf, enabled: false)
        try kernel.control.setDriversAutoprobe(pf: pf, enabled: true)
        let path = "bus/pci/devices/0000:01:00.0/sriov_drivers_autoprobe"
        #expect(kernel.writes == [.init(path: path, value: "0"), .init(path: path, value: "1")])
    }

    @Test("reset writes 1 when the device has a reset method, and reports none otherwise")
    func reset() throws {
        let kernel = try kernel()
        let withReset = PCIAddress(bus: 3, device: 0, function: 0)
        let withoutReset = PCIAddress(bus: 4, device: 0, function: 0)
        try kernel.addDevice(withReset, driver: nil, iommuGroup: nil)
        try kernel.addDevice(withoutReset, driver: nil, iommuGroup: nil, hasReset: false)
        #expect(try kernel.control.resetFunction(withReset) == .reset)
        #expect(try kernel.control.resetFunction(withoutReset) == .noResetMethod)
        #expect(kernel.writes == [.init(path: "bus/pci/devices/0000:03:00.0/reset", value: "1")])
    }
}
