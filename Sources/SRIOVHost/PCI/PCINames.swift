import CSRIOVShim
import Logging
import Synchronization

/// Vendor and device names for PCI ids, from pci.ids through libpci, cached:
/// an id's name never changes while the daemon runs.
public final class PCINames: PCINameResolving {
    private let idsPath: String?
    private let logger: Logger
    private let cache = Mutex<[UInt32: (vendor: String?, device: String?)]>([:])

    /// `idsPath` nil: libpci's default pci.ids (then udev's hwdb).
    public init(idsPath: String? = nil, logger: Logger = Logger(label: "sriovd.pci")) {
        self.idsPath = idsPath
        self.logger = logger
    }

    /// Names for the pair, nil where pci.ids does not know them. A pci.ids
    /// that cannot be read gives nil names and logs a warning (once per pair).
    public func names(vendorID: UInt16, deviceID: UInt16) -> (vendor: String?, device: String?) {
        let key = UInt32(vendorID) << 16 | UInt32(deviceID)
        if let cached = cache.withLock({ $0[key] }) { return cached }
        let found: (vendor: String?, device: String?)
        do {
            found = try lookup(vendorID: vendorID, deviceID: deviceID)
        } catch {
            logger.warning(
                "cannot look up PCI names",
                metadata: ["vendor": "\(hex4(vendorID))", "device": "\(hex4(deviceID))", "error": "\(error)"])
            found = (nil, nil)
        }
        cache.withLock { $0[key] = found }
        return found
    }

    /// Asks libpci directly, uncached; throws what libpci reported.
    public func lookup(vendorID: UInt16, deviceID: UInt16) throws(PCIError) -> (vendor: String?, device: String?) {
        var vendor = [CChar](repeating: 0, count: 128)
        var device = [CChar](repeating: 0, count: 256)
        var message = [CChar](repeating: 0, count: 256)
        let status = LibPCI.withOptionalCString(idsPath) { idsPath in
            LibPCI.lock.withLock { _ in
                sriov_shim_pci_lookup_names(
                    idsPath, vendorID, deviceID, &vendor, vendor.count, &device, device.count,
                    &message, message.count)
            }
        }
        guard status == Int32(SRIOV_SHIM_PCI_OK.rawValue) else {
            let text = Self.string(message)
            throw status == Int32(SRIOV_SHIM_PCI_NAMES_FAILED.rawValue)
                ? PCIError.namesFailed(libpci: text) : PCIError.outOfMemory(libpci: text)
        }
        return (LibPCI.nonEmpty(Self.string(vendor)), LibPCI.nonEmpty(Self.string(device)))
    }

    private static func string(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBytes { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private func hex4(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
