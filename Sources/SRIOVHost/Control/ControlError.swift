#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SRIOVCore

/// A sysfs change to a PF or VF that was refused or did not complete. Each
/// case names the device and the value, so the message stands on its own in
/// a log line or an API error.
public enum ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No PCI function has this address.
    case noSuchDevice(PCIAddress)
    /// The device has no `sriov_totalvfs`: it is not an SR-IOV PF.
    case notAPhysicalFunction(PCIAddress)
    /// Refused before anything was written: the count is negative or above
    /// `sriov_totalvfs` (the kernel would answer ERANGE).
    case vfCountOutOfRange(pf: PCIAddress, requested: Int, total: Int)
    /// The kernel refused the write to `sriov_numvfs`; `errno` is its answer.
    case vfCountRefused(pf: PCIAddress, value: Int, errno: Int32)
    /// The write was accepted but the `virtfnN` links did not come to
    /// `expected` within `timeout`; `present` is how many there were.
    case vfCountTimedOut(pf: PCIAddress, expected: Int, present: Int, timeout: Duration)
    /// No `/sys/bus/pci/drivers/<name>`: the module is not loaded, and
    /// `drivers_probe` does not load modules.
    case driverNotLoaded(String)
    /// A driver name that cannot be one (empty, a path, white space).
    case invalidDriverName(String)
    /// A VF whose PF has `sriov_drivers_autoprobe` = 0 gets no driver from the
    /// kernel's id match: it needs a named driver.
    case autoprobeDisabled(device: PCIAddress, pf: PCIAddress)
    /// The device has no `iommu_group` link, so vfio cannot use it.
    case noIOMMUGroup(PCIAddress)
    /// Another member of the device's IOMMU group is bound to a host driver.
    case groupNotViable(device: PCIAddress, group: Int, blockers: [IOMMUGroupMember])
    /// The device's `driver` link did not show what was asked for in time.
    case bindTimedOut(device: PCIAddress, wanted: DriverChoice, current: String?, timeout: Duration)
    /// A sysfs file could not be written; `step` says what it was for.
    case sysfs(SysfsError, device: PCIAddress, step: String)
    /// The task was cancelled while waiting for the kernel; `step` says for what.
    case cancelled(device: PCIAddress, step: String)

    public var description: String {
        switch self {
        case .noSuchDevice(let address):
            return "no PCI device \(address)"
        case .notAPhysicalFunction(let address):
            return "\(address) is not an SR-IOV physical function (it has no sriov_totalvfs)"
        case .vfCountOutOfRange(let pf, let requested, let total) where requested < 0:
            return "cannot set \(requested) VFs on PF \(pf): a VF count is 0-\(total)"
        case .vfCountOutOfRange(let pf, let requested, let total):
            return "cannot set \(requested) VFs on PF \(pf): it supports at most \(total) (sriov_totalvfs)"
        case .vfCountRefused(let pf, let value, let errno):
            return "the kernel refused \(value) VFs on PF \(pf): \(Self.numVFsReason(errno)) (\(Self.errnoText(errno)))"
        case .vfCountTimedOut(let pf, let expected, let present, let timeout) where present < expected:
            return "PF \(pf): only \(present) of \(expected) VFs appeared within \(timeout)"
        case .vfCountTimedOut(let pf, let expected, let present, let timeout):
            return "PF \(pf): \(present) VFs were still present after \(timeout); expected \(expected)"
        case .driverNotLoaded(let name):
            return "\(name) is not loaded; modprobe \(name)"
        case .invalidDriverName(let name):
            return "\(name.debugDescription) is not a driver name"
        case .autoprobeDisabled(let device, let pf):
            return "\(device) is a VF of \(pf), whose sriov_drivers_autoprobe is 0, so the kernel picks no "
                + "host driver for it: bind it to a named driver (such as igbvf) instead"
        case .noIOMMUGroup(let device):
            return "\(device) has no IOMMU group: is the IOMMU enabled (intel_iommu=on or amd_iommu=on)?"
        case .groupNotViable(let device, let group, let blockers):
            let list = blockers.map { "\($0.address) is bound to \($0.driver ?? "no driver")" }
            return "IOMMU group \(group) of \(device) is not viable for vfio: "
                + list.joined(separator: ", ") + " (unbind it or bind it to vfio-pci)"
        case .bindTimedOut(let device, let wanted, let current, let timeout):
            return "\(device) was not \(wanted.goal) within \(timeout); its driver is now \(current ?? "none")"
        case .sysfs(let error, let device, let step):
            return "\(step) for \(device): \(error)"
        case .cancelled(let device, let step):
            return "cancelled while waiting to \(step) for \(device)"
        }
    }

    /// What each errno from a `sriov_numvfs` write means
    /// (drivers/pci/iov.c sriov_numvfs_store and the PF drivers).
    static func numVFsReason(_ errno: Int32) -> String {
        switch errno {
        case EBUSY: "VFs are already enabled (write 0 first) or still in use"
        case ERANGE: "the count is above sriov_totalvfs"
        case EINVAL: "the value is not a VF count this PF or its driver accepts"
        case ENOMEM: "the kernel could not allocate what that many VFs need (memory, bus numbers or MMIO space)"
        case ENOENT: "no driver is bound to the PF, or its driver cannot configure SR-IOV"
        case EPERM: "the PF driver refused; VFs may be assigned to a guest"
        case EACCES: "permission denied; changing VFs needs root"
        case EIO: "the device or its driver failed to enable SR-IOV"
        default: "the write failed"
        }
    }

    static func errnoText(_ errno: Int32) -> String {
        "\(String(cString: strerror(errno))), errno \(errno)"
    }
}
