import Foundation
import SRIOVCore
import Testing

@testable import SRIOVHost

private let pf = PCIAddress(bus: 1, device: 0, function: 0)
private let vf0 = FakeSysfsKernel.vfAddress(of: pf, index: 0)  // 0000:01:10.0
private let vf1 = FakeSysfsKernel.vfAddress(of: pf, index: 1)  // 0000:01:10.2

/// A PF with two VFs bound to igbvf, each in its own IOMMU group, and
/// vfio-pci loaded unless `vfio` is false.
private func kernel(vfio: Bool = true, autoprobe: Bool = true) throws -> FakeSysfsKernel {
    let kernel = try FakeSysfsKernel()
    for driver in ["igb", "igbvf", "pcieport"] { try kernel.loadDriver(driver) }
    if vfio { try kernel.loadDriver("vfio-pci") }
    try kernel.addPF(pf, total: 7, numVFs: 2, autoprobe: autoprobe)
    return kernel
}

private func index(of path: String, in writes: [FakeSysfsKernel.Write]) -> Int? {
    writes.firstIndex { $0.path == path }
}

@Suite("Control: driver binding and IOMMU groups")
struct ControlDriverBindingTests {
    @Test("binding to vfio writes driver_override before drivers_probe, and unbinds the host driver")
    func vfioBindingOrder() async throws {
        let kernel = try kernel()
        #expect(kernel.driver(of: vf0) == "igbvf")
        let driver = try await kernel.control.bind(vf0, to: .vfio)
        #expect(driver == "vfio-pci")
        #expect(kernel.driver(of: vf0) == "vfio-pci")
        #expect(
            kernel.writes == [
                .init(path: "bus/pci/devices/0000:01:10.0/driver_override", value: "vfio-pci"),
                .init(path: "bus/pci/devices/0000:01:10.0/driver/unbind", value: "0000:01:10.0"),
                .init(path: "bus/pci/drivers_probe", value: "0000:01:10.0"),
            ])
    }

    @Test("with autoprobe off, the override is what makes drivers_probe bind")
    func overrideBeforeProbeWithAutoprobeOff() async throws {
        let kernel = try kernel(autoprobe: false)
        #expect(kernel.driver(of: vf0) == nil)
        // A probe without an override binds nothing: the fake behaves like the kernel.
        try kernel.writeFile(kernel.root + "/bus/pci/drivers_probe", vf0.description)
        #expect(kernel.driver(of: vf0) == nil)

        try await kernel.control.bind(vf0, to: .named("igbvf"))
        #expect(kernel.driver(of: vf0) == "igbvf")
        let writes = kernel.writes
        let override = try #require(index(of: "bus/pci/devices/0000:01:10.0/driver_override", in: writes))
        let probe = try #require(writes.lastIndex { $0.path == "bus/pci/drivers_probe" })
        #expect(override < probe)
    }

    @Test("back to the host driver: driver_override is cleared with a newline and igbvf binds again")
    func backToHost() async throws {
        let kernel = try kernel()
        try await kernel.control.bind(vf0, to: .vfio)
        let before = kernel.writes.count
        let driver = try await kernel.control.bind(vf0, to: .host)
        #expect(driver == "igbvf")
        #expect(kernel.override(of: vf0) == "(null)")
        #expect(
            Array(kernel.writes[before...]) == [
                .init(path: "bus/pci/devices/0000:01:10.0/driver_override", value: "\n"),
                .init(path: "bus/pci/devices/0000:01:10.0/driver/unbind", value: "0000:01:10.0"),
                .init(path: "bus/pci/drivers_probe", value: "0000:01:10.0"),
            ])
    }

    @Test("the host driver cannot be picked by the kernel for a VF whose PF has autoprobe off")
    func hostNeedsAutoprobe() async throws {
        let kernel = try kernel(autoprobe: false)
        try await kernel.control.bind(vf0, to: .vfio)
        let before = kernel.writes.count
        await #expect(throws: ControlError.autoprobeDisabled(device: vf0, pf: pf)) {
            try await kernel.control.bind(vf0, to: .host)
        }
        #expect(kernel.writes.count == before)
        #expect(kernel.driver(of: vf0) == "vfio-pci")
    }

    @Test("unbound means unbound for good: override \"none\" keeps a later probe from binding")
    func unboundStaysUnbound() async throws {
        let kernel = try kernel()
        let driver = try await kernel.control.bind(vf0, to: .unbound)
        #expect(driver == nil)
        #expect(kernel.override(of: vf0) == "none")
        #expect(!kernel.writes.contains { $0.path == "bus/pci/drivers_probe" })
        try kernel.writeFile(kernel.root + "/bus/pci/drivers_probe", vf0.description)
        #expect(kernel.driver(of: vf0) == nil)
    }

    @Test("a device already on the wanted driver with the wanted override is left alone")
    func alreadyBoundWritesNothing() async throws {
        let kernel = try kernel()
        try await kernel.control.bind(vf0, to: .vfio)
        let before = kernel.writes.count
        #expect(try await kernel.control.bind(vf0, to: .vfio) == "vfio-pci")
        #expect(kernel.writes.count == before)
    }

    @Test("vfio-pci not loaded fails at once, saying how to load it")
    func vfioNotLoaded() async throws {
        let kernel = try kernel(vfio: false)
        do {
            try await kernel.control.bind(vf0, to: .vfio)
            Issue.record("bound to a driver that is not loaded")
        } catch {
            #expect(error == .driverNotLoaded("vfio-pci"))
            #expect(error.description == "vfio-pci is not loaded; modprobe vfio-pci")
        }
        #expect(kernel.writes.isEmpty)
        #expect(kernel.driver(of: vf0) == "igbvf")
    }

    @Test("a driver name that is empty or a path is refused before anything is written")
    func invalidDriverName() async throws {
        let kernel = try kernel()
        for name in ["", "../../devices", "igb vf", "igbvf\n"] {
            await #expect(throws: ControlError.invalidDriverName(name)) {
                try await kernel.control.bind(vf0, to: .named(name))
            }
        }
        #expect(kernel.writes.isEmpty)
    }

    @Test("a driver that never binds times out, naming the driver the device has")
    func bindTimeout() async throws {
        let kernel = try kernel()
        kernel.failProbes(of: "vfio-pci")
        do {
            try await kernel.control.bind(vf0, to: .vfio)
            Issue.record("a failed probe was reported as bound")
        } catch {
            guard case .bindTimedOut(let device, let wanted, let current, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(device == vf0 && wanted == .vfio && current == nil)
            #expect(error.description.contains("not bound to vfio-pci"))
        }
    }

    @Test("a group with a member on a host driver is not viable, and the member is named")
    func groupWithHostDriverIsRefused() async throws {
        let kernel = try kernel()
        // Both VFs and a bridge in group 7: the bridge on pcieport is allowed,
        // the other VF on igbvf is not.
        let bridge = PCIAddress(bus: 0, device: 0x1c, function: 0)
        let a = PCIAddress(bus: 5, device: 0, function: 0)
        let b = PCIAddress(bus: 5, device: 0, function: 1)
        try kernel.addDevice(bridge, driver: "pcieport", iommuGroup: 7)
        try kernel.addDevice(a, driver: "igbvf", iommuGroup: 7)
        try kernel.addDevice(b, driver: "igbvf", iommuGroup: 7)

        let viability = kernel.control.iommuGroupViability(of: a)
        #expect(!viability.isViable)
        #expect(viability.group == 7)
        guard case .blocked(_, _, let members, let blockers) = viability else {
            Issue.record("\(viability)")
            return
        }
        #expect(members.map(\.address) == [bridge, a, b])
        #expect(blockers == [IOMMUGroupMember(address: b, driver: "igbvf")])

        do {
            try await kernel.control.bind(a, to: .vfio)
            Issue.record("bound into a non-viable group")
        } catch {
            #expect(error == .groupNotViable(device: a, group: 7, blockers: blockers))
            #expect(error.description.contains("0000:05:00.1 is bound to igbvf"))
        }
        #expect(kernel.writes.isEmpty)
    }

    @Test("unbound members, vfio-pci members and PCIe bridges on pcieport keep a group viable")
    func viableGroup() throws {
        let kernel = try kernel()
        let bridge = PCIAddress(bus: 0, device: 0x1c, function: 0)
        let a = PCIAddress(bus: 5, device: 0, function: 0)
        let b = PCIAddress(bus: 5, device: 0, function: 1)
        let c = PCIAddress(bus: 5, device: 0, function: 2)
        try kernel.addDevice(bridge, driver: "pcieport", iommuGroup: 7)
        try kernel.addDevice(a, driver: "igbvf", iommuGroup: 7)
        try kernel.addDevice(b, driver: nil, iommuGroup: 7)
        try kernel.addDevice(c, driver: "vfio-pci", iommuGroup: 7)
        let viability = kernel.control.iommuGroupViability(of: a)
        #expect(viability.isViable)
        #expect(viability.refusal == nil)
        if case .viable(_, let members) = viability {
            #expect(members.count == 4)
        }
    }

    @Test("a device without an IOMMU group is not viable, and the message says to enable the IOMMU")
    func noIOMMUGroup() async throws {
        let kernel = try kernel()
        let loner = PCIAddress(bus: 6, device: 0, function: 0)
        try kernel.addDevice(loner, driver: "igbvf", iommuGroup: nil)
        #expect(kernel.control.iommuGroupViability(of: loner) == .noGroup(loner))
        do {
            try await kernel.control.bind(loner, to: .vfio)
            Issue.record("bound a device without IOMMU group to vfio")
        } catch {
            #expect(error == .noIOMMUGroup(loner))
            #expect(error.description.contains("intel_iommu=on"))
        }
        #expect(kernel.writes.isEmpty)
    }

    @Test("each VF of the fake PF sits in its own group, so VF 1 on igbvf does not block VF 0")
    func ownGroupsAreViable() throws {
        let kernel = try kernel()
        #expect(kernel.control.iommuGroupViability(of: vf0).isViable)
        #expect(kernel.driver(of: vf1) == "igbvf")
    }
}
