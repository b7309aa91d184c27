import SRIOVCore

/// libpci refused: each case carries libpci's own message, unedited.
public enum PCIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `pci_init` found no working access method (no sysfs, no procfs, no
    /// port access).
    case accessFailed(libpci: String)
    /// `pci_scan_bus` could not list the devices.
    case scanFailed(libpci: String)
    /// `pci_fill_info` could not read one device; a device that disappears
    /// mid-scan (VFs being removed) ends up here, and a retry succeeds.
    /// `device` is nil when its domain does not fit a `PCIAddress`.
    case readFailed(device: PCIAddress?, libpci: String)
    /// pci.ids could not be read or parsed.
    case namesFailed(libpci: String)
    case outOfMemory(libpci: String)

    public var description: String {
        switch self {
        case .accessFailed(let message): "libpci found no way to access the PCI bus: \(message)"
        case .scanFailed(let message): "libpci could not scan the PCI bus: \(message)"
        case .readFailed(let device?, let message): "libpci could not read PCI device \(device): \(message)"
        case .readFailed(nil, let message): "libpci could not read a PCI device: \(message)"
        case .namesFailed(let message): "libpci could not look up PCI names: \(message)"
        case .outOfMemory(let message): "libpci ran out of memory: \(message)"
        }
    }
}
