import Foundation
import SRIOVCore
import Synchronization

@testable import SRIOVHost

/// A temporary folder laid out like sysfs, and a small kernel that reacts to
/// writes the way Linux does: `sriov_numvfs` refuses counts above the total
/// (ERANGE) and nonzero-to-nonzero changes (EBUSY), VFs appear a few at a
/// time as sysfs is listed, `driver/unbind` unbinds, and `drivers_probe`
/// binds the driver `driver_override` names (or, without one, the device's
/// own driver unless it is a VF whose PF has autoprobe off).
///
/// Reads go to the real files through `SysfsTree`, so the control code's
/// paths are checked; every write is recorded, root-relative, in order.
final class FakeSysfsKernel: SysfsFileAccess, Sendable {
    struct Write: Equatable, CustomStringConvertible {
        var path: String
        var value: String
        var description: String { "\(path) <- \(value.debugDescription)" }
    }

    struct PF {
        var total: Int
        var numVFs = 0
        /// VF links still to appear after a count was written.
        var pending = 0
        /// How many VFs appear per listing of the PF's folder.
        var appearPerListing = 1
        /// VFs stop appearing once this many exist (a driver that hangs).
        var stallAt: Int?
        /// Every nonzero count is refused with this errno.
        var refuseWith: Int32?
        var autoprobe = true
        var vfDriver: String?
        var nextIOMMUGroup: Int
    }

    private struct State {
        var writes: [Write] = []
        /// The name of the thread each write ran on, in order.
        var writerThreads: [String] = []
        var pfs: [PCIAddress: PF] = [:]
        /// The driver the kernel's id match gives each device.
        var ownDriver: [PCIAddress: String] = [:]
        /// Drivers whose probe fails: they never bind.
        var failingDrivers: Set<String> = []
    }

    let root: String
    private let tree: SysfsTree
    private let state = Mutex(State())

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sriov-fake-sysfs-\(UUID().uuidString)")
        root = base.path
        tree = SysfsTree(root: root)
        for folder in ["bus/pci/devices", "bus/pci/drivers", "kernel/iommu_groups"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        }
        try Self.put("", at: "\(root)/bus/pci/drivers_probe")
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    var control: SRIOVDeviceControl {
        SRIOVDeviceControl(sysfs: self, pollInterval: .milliseconds(1), bindTimeout: .milliseconds(300))
    }

    var writes: [Write] { state.withLock { $0.writes } }
    var writerThreads: [String] { state.withLock { $0.writerThreads } }

    // MARK: Building the tree

    func loadDriver(_ name: String) throws {
        let folder = "\(root)/bus/pci/drivers/\(name)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Self.put("", at: "\(folder)/bind")
        try Self.put("", at: "\(folder)/unbind")
    }

    func failProbes(of driver: String) {
        state.withLock { _ = $0.failingDrivers.insert(driver) }
    }

    /// A PCI function, bound to `driver` (which is also what the id match
    /// picks for it, unless `ownDriver` says otherwise).
    func addDevice(
        _ address: PCIAddress, driver: String?, ownDriver: String? = nil, iommuGroup: Int?, hasReset: Bool = true
    ) throws {
        let folder = devicePath(address)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Self.put("(null)\n", at: "\(folder)/driver_override")
        if hasReset { try Self.put("", at: "\(folder)/reset") }
        if let driver { try link(address, toDriver: driver) }
        if let own = ownDriver ?? driver { state.withLock { $0.ownDriver[address] = own } }
        if let iommuGroup {
            let group = "\(root)/kernel/iommu_groups/\(iommuGroup)"
            try FileManager.default.createDirectory(atPath: "\(group)/devices", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: "\(folder)/iommu_group", withDestinationPath: group)
            try FileManager.default.createSymbolicLink(
                atPath: "\(group)/devices/\(address)", withDestinationPath: "../../../../bus/pci/devices/\(address)")
        }
    }

    /// A PF on `pf_driver` with `numVFs` VFs already there (bound to
    /// `vfDriver` when autoprobe is on), each in its own IOMMU group.
    func addPF(
        _ address: PCIAddress, total: Int, numVFs: Int = 0, autoprobe: Bool = true, vfDriver: String? = "igbvf"
    ) throws {
        try addDevice(address, driver: "igb", iommuGroup: 1)
        let folder = devicePath(address)
        try Self.put("\(total)\n", at: "\(folder)/sriov_totalvfs")
        try Self.put("\(numVFs)\n", at: "\(folder)/sriov_numvfs")
        try Self.put(autoprobe ? "1\n" : "0\n", at: "\(folder)/sriov_drivers_autoprobe")
        state.withLock {
            $0.pfs[address] = PF(
                total: total, numVFs: numVFs, autoprobe: autoprobe, vfDriver: vfDriver, nextIOMMUGroup: 100)
        }
        for index in 0..<numVFs { try createVF(of: address, index: index) }
    }

    func configurePF(_ address: PCIAddress, _ change: (inout PF) -> Void) {
        state.withLock { change(&$0.pfs[address]!) }
    }

    /// The address of VF `index` as the 82576 lays them out: 01:10.0, 10.2,
    /// 10.4, 10.6, 11.0...
    static func vfAddress(of pf: PCIAddress, index: Int) -> PCIAddress {
        PCIAddress(
            domain: pf.domain, bus: pf.bus, device: UInt8(0x10 + index * 2 / 8), function: UInt8(index * 2 % 8))
    }

    func override(of address: PCIAddress) -> String? {
        tree.readTrimmed(devicePath(address) + "/driver_override")
    }

    func driver(of address: PCIAddress) -> String? {
        tree.driver(address)
    }

    // MARK: SysfsFileAccess

    func fileExists(_ path: String) -> Bool { tree.fileExists(path) }
    func readTrimmed(_ path: String) -> String? { tree.readTrimmed(path) }
    func linkBasename(_ path: String) -> String? { tree.linkBasename(path) }

    func listDirectory(_ path: String) throws(SysfsError) -> [String] {
        if let pf = pfAddress(ofFolder: path) { appearVFs(of: pf) }
        return try tree.listDirectory(path)
    }

    func writeFile(_ path: String, _ value: String) throws(SysfsError) {
        let relative = String(path.dropFirst(root.count + 1))
        let thread = Self.currentThreadName()
        state.withLock {
            $0.writes.append(Write(path: relative, value: value))
            $0.writerThreads.append(thread)
        }
        func refuse(_ errno: Int32) -> SysfsError { SysfsError(path: path, operation: "write \"\(value)\" to", errno: errno) }

        let parts = relative.split(separator: "/").map(String.init)
        if relative == "bus/pci/drivers_probe" {
            guard let address = try? PCIAddress.parse(value, field: "probe"), tree.exists(address) else {
                throw refuse(ENODEV)
            }
            probe(address)
            return
        }
        guard parts.count >= 5, parts[0...2] == ["bus", "pci", "devices"],
            let address = try? PCIAddress.parse(parts[3], field: "path")
        else { throw refuse(EACCES) }
        let attribute = parts[4...].joined(separator: "/")
        switch attribute {
        case "sriov_numvfs":
            guard let count = Int(value) else { throw refuse(EINVAL) }
            try setNumVFs(address, count, refuse)
        case "sriov_drivers_autoprobe":
            state.withLock { $0.pfs[address]?.autoprobe = value == "1" }
            Self.overwrite(value + "\n", at: path)
        case "driver_override":
            let trimmed = value.hasSuffix("\n") ? String(value.dropLast()) : value
            Self.overwrite(trimmed.isEmpty ? "(null)\n" : trimmed + "\n", at: path)
        case "driver/unbind":
            guard value == address.description, tree.driver(address) != nil else { throw refuse(ENODEV) }
            unlink(devicePath(address) + "/driver")
        case "reset":
            guard value == "1" else { throw refuse(EINVAL) }
        default:
            throw refuse(EACCES)
        }
    }

    // MARK: The simulated kernel

    private func setNumVFs(_ pf: PCIAddress, _ count: Int, _ refuse: (Int32) -> SysfsError) throws(SysfsError) {
        guard let current = state.withLock({ $0.pfs[pf] }) else { throw refuse(ENOENT) }
        if count > current.total { throw refuse(ERANGE) }
        if count == current.numVFs { return }
        if count != 0 && current.numVFs != 0 { throw refuse(EBUSY) }
        if count != 0, let errno = current.refuseWith { throw refuse(errno) }
        if count == 0 {
            for index in 0..<current.numVFs {
                let vf = Self.vfAddress(of: pf, index: index)
                try? FileManager.default.removeItem(atPath: devicePath(pf) + "/virtfn\(index)")
                try? FileManager.default.removeItem(atPath: devicePath(vf))
            }
            state.withLock {
                $0.pfs[pf]?.numVFs = 0
                $0.pfs[pf]?.pending = 0
            }
        } else {
            state.withLock {
                $0.pfs[pf]?.numVFs = count
                $0.pfs[pf]?.pending = count
            }
        }
        Self.overwrite("\(count)\n", at: devicePath(pf) + "/sriov_numvfs")
    }

    private func appearVFs(of pf: PCIAddress) {
        let (present, toCreate) = state.withLock { state -> (Int, Int) in
            guard var entry = state.pfs[pf], entry.pending > 0 else { return (0, 0) }
            let present = entry.numVFs - entry.pending
            var count = min(entry.appearPerListing, entry.pending)
            if let stall = entry.stallAt { count = max(0, min(count, stall - present)) }
            entry.pending -= count
            state.pfs[pf] = entry
            return (present, count)
        }
        for index in present..<present + toCreate { try? createVF(of: pf, index: index) }
    }

    private func createVF(of pf: PCIAddress, index: Int) throws {
        let vf = Self.vfAddress(of: pf, index: index)
        let entry = state.withLock { state -> PF in
            defer { state.pfs[pf]?.nextIOMMUGroup += 1 }
            return state.pfs[pf]!
        }
        try addDevice(
            vf, driver: entry.autoprobe ? entry.vfDriver : nil, ownDriver: entry.vfDriver,
            iommuGroup: entry.nextIOMMUGroup)
        try FileManager.default.createSymbolicLink(atPath: devicePath(vf) + "/physfn", withDestinationPath: "../\(pf)")
        try FileManager.default.createSymbolicLink(
            atPath: devicePath(pf) + "/virtfn\(index)", withDestinationPath: "../\(vf)")
    }

    /// drivers_probe: pci_device_can_probe, then the override or the id match.
    private func probe(_ address: PCIAddress) {
        guard tree.driver(address) == nil else { return }
        let override = overrideValue(tree.readTrimmed(devicePath(address) + "/driver_override"))
        let (own, failing, autoprobe) = state.withLock { state -> (String?, Set<String>, Bool) in
            let pf = tree.physicalFunction(ofVF: address)
            return (state.ownDriver[address], state.failingDrivers, pf.flatMap { state.pfs[$0]?.autoprobe } ?? true)
        }
        let candidate: String?
        if let override {
            candidate = override
        } else {
            candidate = autoprobe ? own : nil
        }
        guard let candidate, tree.fileExists("\(root)/bus/pci/drivers/\(candidate)"), !failing.contains(candidate)
        else { return }
        try? link(address, toDriver: candidate)
    }

    private func link(_ address: PCIAddress, toDriver driver: String) throws {
        try FileManager.default.createSymbolicLink(
            atPath: devicePath(address) + "/driver", withDestinationPath: "\(root)/bus/pci/drivers/\(driver)")
    }

    private func devicePath(_ address: PCIAddress) -> String { "\(root)/bus/pci/devices/\(address)" }

    private func pfAddress(ofFolder path: String) -> PCIAddress? {
        let prefix = "\(root)/bus/pci/devices/"
        guard path.hasPrefix(prefix), let address = try? PCIAddress.parse(String(path.dropFirst(prefix.count)), field: "")
        else { return nil }
        return state.withLock { $0.pfs[address] != nil } ? address : nil
    }

    private static func put(_ text: String, at path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    private static func overwrite(_ text: String, at path: String) {
        try? text.write(toFile: path, atomically: false, encoding: .utf8)
    }
}

/// `driver_override` as the kernel keeps it: nil when unset.
private func overrideValue(_ text: String?) -> String? {
    guard let text, !text.isEmpty, text != "(null)" else { return nil }
    return text
}

extension FakeSysfsKernel {
    /// The calling thread's name as the kernel knows it.
    static func currentThreadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
