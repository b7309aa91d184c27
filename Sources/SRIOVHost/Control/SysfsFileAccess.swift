import SRIOVCore

/// The file operations `SRIOVDeviceControl` makes on sysfs: the seam between
/// it and the kernel. `SysfsTree` is the real one; a test puts a simulated
/// kernel here that reacts to writes the way the kernel does (refuses a VF
/// count, makes `virtfnN` links appear, binds a driver on `drivers_probe`).
///
/// Every path is absolute and starts with `root`.
public protocol SysfsFileAccess: Sendable {
    /// The sysfs mount point: "/sys" on a host, a folder in tests.
    var root: String { get }
    func fileExists(_ path: String) -> Bool
    /// The file's content without trailing white space, or nil when it cannot be read.
    func readTrimmed(_ path: String) -> String?
    /// One write(2) of `value`; the kernel's refusal comes back as the errno.
    func writeFile(_ path: String, _ value: String) throws(SysfsError)
    /// The last path component of a symlink's target, or nil when `path` is no link.
    func linkBasename(_ path: String) -> String?
    func listDirectory(_ path: String) throws(SysfsError) -> [String]
}

extension SysfsTree: SysfsFileAccess {}

/// Where things are in sysfs, from its root.
struct SysfsPaths: Sendable {
    let root: String

    func device(_ address: PCIAddress) -> String { "\(root)/bus/pci/devices/\(address)" }
    func device(_ address: PCIAddress, _ attribute: String) -> String { "\(device(address))/\(attribute)" }
    func driver(_ name: String) -> String { "\(root)/bus/pci/drivers/\(name)" }
    var driversProbe: String { "\(root)/bus/pci/drivers_probe" }
    func iommuGroupDevices(_ group: Int) -> String { "\(root)/kernel/iommu_groups/\(group)/devices" }
}
