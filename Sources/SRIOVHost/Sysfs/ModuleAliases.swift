#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SRIOVCore

/// Which kernel modules claim a device, from its `modalias` and the
/// running kernel's `modules.alias`, as modprobe would resolve it. Used to
/// find a VF's own host driver (igbvf, iavf, ...) when autoprobe is off and
/// the kernel would therefore bind nothing by itself.
public struct ModuleAliases: Sendable {
    public let aliasFile: String
    let sysfs: SysfsTree

    public init(sysfs: SysfsTree = SysfsTree(), aliasFile: String? = nil) {
        self.sysfs = sysfs
        if let aliasFile {
            self.aliasFile = aliasFile
        } else {
            var name = utsname()
            uname(&name)
            let release = withUnsafeBytes(of: name.release) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            self.aliasFile = "/lib/modules/\(release)/modules.alias"
        }
    }

    /// Modules whose alias pattern matches the device's modalias, in file order.
    public func modules(for device: PCIAddress) -> [String] {
        guard let modalias = sysfs.readTrimmed(sysfs.devicePath(device) + "/modalias"),
            let text = try? sysfs.readFile(aliasFile)
        else { return [] }
        return Self.modules(matching: modalias, in: text)
    }

    static func modules(matching modalias: String, in aliasText: String) -> [String] {
        var result: [String] = []
        for line in aliasText.split(separator: "\n") where line.hasPrefix("alias ") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 3 else { continue }
            let pattern = String(parts[1])
            guard fnmatch(pattern, modalias, 0) == 0 else { continue }
            let module = String(parts[2])
            if !result.contains(module) { result.append(module) }
        }
        return result
    }

    /// The device's host driver: the first matching module that is not a
    /// pass-through driver, as the driver name it registers (modules use
    /// `_` where drivers may use `-`; the caller checks which exists).
    public func hostDriver(for device: PCIAddress) -> String? {
        let passThrough: Set<String> = ["vfio_pci", "vfio-pci", "pci_stub", "pci-stub"]
        return modules(for: device).first { !passThrough.contains($0) }
    }
}
