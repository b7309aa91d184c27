import CSRIOVShim
import Logging
import SRIOVCore

/// Lists the host's PCI functions through libpci (sysfs underneath) and names
/// them from pci.ids.
///
/// libpci's default error handler exits the process; here every libpci error
/// becomes a thrown `PCIError` instead. `scan()` does blocking file I/O (and,
/// with names, parses pci.ids: tens of milliseconds): call it off the
/// cooperative thread pool when that matters.
public struct PCIScanner: Sendable {
    public struct Options: Sendable, Hashable {
        /// What libpci reads instead of `/sys/bus/pci` (a folder holding
        /// `devices/`); setting it pins libpci to its sysfs access method.
        /// nil: libpci's default and its access-method autodetection.
        public var sysfsPath: String?
        /// The pci.ids file to take names from; nil: libpci's default
        /// (`/usr/share/misc/pci.ids`, then udev's hwdb).
        public var idsPath: String?
        /// false: leave names nil and do not parse pci.ids at all.
        public var lookupNames: Bool

        public init(sysfsPath: String? = nil, idsPath: String? = nil, lookupNames: Bool = true) {
            self.sysfsPath = sysfsPath
            self.idsPath = idsPath
            self.lookupNames = lookupNames
        }
    }

    public let options: Options
    private let logger: Logger

    public init(options: Options = Options(), logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Every PCI function, sorted by address. A pci.ids that cannot be read
    /// does not fail the scan: names stay nil and a warning is logged.
    public func scan() throws(PCIError) -> [PCIDeviceInfo] {
        var result = sriov_shim_pci_scan_result()
        let status = LibPCI.withOptionalCString(options.sysfsPath) { sysfsPath in
            LibPCI.withOptionalCString(options.idsPath) { idsPath in
                var cOptions = sriov_shim_pci_options(
                    sysfs_path: sysfsPath, ids_path: idsPath, lookup_names: options.lookupNames ? 1 : 0)
                return LibPCI.lock.withLock { _ in sriov_shim_pci_scan(&cOptions, &result) }
            }
        }
        defer { sriov_shim_pci_scan_free(&result) }

        let libpciWarnings = LibPCI.string(fromFixedArray: result.warnings)
        for warning in libpciWarnings.split(separator: "\n") {
            logger.warning("libpci warning", metadata: ["libpci": "\(warning)"])
        }
        guard status == Int32(SRIOV_SHIM_PCI_OK.rawValue) else {
            throw Self.error(status: status, result: result)
        }
        let namesError = LibPCI.string(fromFixedArray: result.names_error)
        if !namesError.isEmpty {
            logger.warning(
                "cannot read PCI names; devices are listed without them",
                metadata: ["libpci": "\(namesError)", "ids": "\(options.idsPath ?? "default")"])
        }

        var devices: [PCIDeviceInfo] = []
        devices.reserveCapacity(result.count)
        for index in 0..<result.count {
            let device = result.devices[index]
            guard
                let address = LibPCI.address(
                    domain: device.domain, bus: device.bus, device: device.dev, function: device.func)
            else {
                logger.warning(
                    "skipping PCI device whose domain does not fit a 16-bit PCI address",
                    metadata: ["domain": "\(String(device.domain, radix: 16))"])
                continue
            }
            devices.append(
                PCIDeviceInfo(
                    address: address, vendorID: device.vendor_id, deviceID: device.device_id,
                    classCode: device.class_code,
                    numaNode: device.numa_node >= 0 ? Int(device.numa_node) : nil,
                    vendorName: LibPCI.nonEmpty(LibPCI.string(fromFixedArray: device.vendor_name)),
                    deviceName: LibPCI.nonEmpty(LibPCI.string(fromFixedArray: device.device_name))))
        }
        return devices.sorted { $0.address < $1.address }
    }

    private static func error(status: Int32, result: sriov_shim_pci_scan_result) -> PCIError {
        let message = LibPCI.string(fromFixedArray: result.error)
        switch UInt32(bitPattern: status) {
        case SRIOV_SHIM_PCI_INIT_FAILED.rawValue:
            return .accessFailed(libpci: message)
        case SRIOV_SHIM_PCI_SCAN_FAILED.rawValue:
            return .scanFailed(libpci: message)
        case SRIOV_SHIM_PCI_READ_FAILED.rawValue:
            let device = LibPCI.address(
                domain: result.error_domain, bus: result.error_bus, device: result.error_dev,
                function: result.error_func)
            return .readFailed(device: device, libpci: message)
        case SRIOV_SHIM_PCI_NAMES_FAILED.rawValue:
            return .namesFailed(libpci: message)
        default:
            return .outOfMemory(libpci: message)
        }
    }
}
