#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SRIOVCore

/// A failed sysfs access, naming the file and the errno.
public struct SysfsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var errno: Int32

    public init(path: String, operation: String, errno: Int32) {
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The PCI and network parts of sysfs, rooted at `root` ("/sys" on a host; a
/// folder a test builds otherwise). Everything is addressed by PCI address;
/// interface names are read from the device's `net/` folder when needed.
public struct SysfsTree: Sendable {
    public let root: String

    public init(root: String = "/sys") {
        self.root = root
    }

    public var pciDevicesPath: String { root + "/bus/pci/devices" }

    public func devicePath(_ address: PCIAddress) -> String {
        "\(pciDevicesPath)/\(address)"
    }

    // MARK: Discovery

    /// Every PCI function that has `sriov_totalvfs`: the SR-IOV PFs.
    public func physicalFunctionAddresses() throws(SysfsError) -> [PCIAddress] {
        let names = try listDirectory(pciDevicesPath)
        var result: [PCIAddress] = []
        for name in names {
            guard let address = try? PCIAddress.parse(name, field: "sysfs") else { continue }
            if fileExists(devicePath(address) + "/sriov_totalvfs") {
                result.append(address)
            }
        }
        return result.sorted()
    }

    public func exists(_ address: PCIAddress) -> Bool {
        fileExists(devicePath(address))
    }

    // MARK: Per-device attributes

    /// A hex id file such as `vendor` (`0x8086`).
    public func hexAttribute(_ address: PCIAddress, _ name: String) -> UInt32? {
        guard let text = readTrimmed(devicePath(address) + "/" + name) else { return nil }
        let digits = text.hasPrefix("0x") ? text.dropFirst(2) : Substring(text)
        return UInt32(digits, radix: 16)
    }

    public func intAttribute(_ address: PCIAddress, _ name: String) -> Int? {
        readTrimmed(devicePath(address) + "/" + name).flatMap { Int($0) }
    }

    /// `numa_node`, with -1 (no NUMA information) as nil.
    public func numaNode(_ address: PCIAddress) -> Int? {
        guard let node = intAttribute(address, "numa_node"), node >= 0 else { return nil }
        return node
    }

    /// The name of the bound driver, or nil when none is bound.
    public func driver(_ address: PCIAddress) -> String? {
        linkBasename(devicePath(address) + "/driver")
    }

    public func iommuGroup(_ address: PCIAddress) -> Int? {
        linkBasename(devicePath(address) + "/iommu_group").flatMap { Int($0) }
    }

    /// The network interfaces the device's driver created, sorted by name.
    public func netdevs(_ address: PCIAddress) -> [String] {
        ((try? listDirectory(devicePath(address) + "/net")) ?? []).sorted()
    }

    /// The ifindex of one of the device's interfaces, read under the device
    /// (so a rename between the two reads cannot mix two interfaces up).
    public func ifindex(_ address: PCIAddress, netdev: String) -> Int32? {
        readTrimmed(devicePath(address) + "/net/\(netdev)/ifindex").flatMap { Int32($0) }
    }

    /// The VFs a PF currently has: index → VF PCI address, from its `virtfnN` links.
    public func virtualFunctions(of pf: PCIAddress) -> [(index: Int, address: PCIAddress)] {
        let names = (try? listDirectory(devicePath(pf))) ?? []
        var result: [(Int, PCIAddress)] = []
        for name in names where name.hasPrefix("virtfn") {
            guard let index = Int(name.dropFirst("virtfn".count)),
                let target = linkBasename(devicePath(pf) + "/" + name),
                let address = try? PCIAddress.parse(target, field: "sysfs")
            else { continue }
            result.append((index, address))
        }
        return result.sorted { $0.0 < $1.0 }.map { (index: $0.0, address: $0.1) }
    }

    /// The PF of a VF (its `physfn` link), or nil when `address` is not a VF.
    public func physicalFunction(ofVF address: PCIAddress) -> PCIAddress? {
        linkBasename(devicePath(address) + "/physfn").flatMap { try? PCIAddress.parse($0, field: "sysfs") }
    }

    // MARK: File primitives

    public func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// The file's content without trailing white space, or nil when it cannot be read.
    public func readTrimmed(_ path: String) -> String? {
        guard let text = try? readFile(path) else { return nil }
        var s = Substring(text)
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return String(s)
    }

    /// Reads a whole (small) file.
    public func readFile(_ path: String) throws(SysfsError) -> String {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw SysfsError(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in
                retryingEINTR { read(fd, raw.baseAddress, raw.count) }
            }
            if n < 0 { throw SysfsError(path: path, operation: "read", errno: errno) }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `value` to a sysfs attribute in one write(2), as sysfs requires.
    public func writeFile(_ path: String, _ value: String) throws(SysfsError) {
        let fd = retryingEINTR { open(path, O_WRONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw SysfsError(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = bytes.withUnsafeBytes { raw in
            retryingEINTR { write(fd, raw.baseAddress, raw.count) }
        }
        if n < 0 { throw SysfsError(path: path, operation: "write \"\(value)\" to", errno: errno) }
        if n != bytes.count { throw SysfsError(path: path, operation: "short write to", errno: EIO) }
    }

    /// The last path component of a symlink's target, or nil when `path` is no link.
    public func linkBasename(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buffer.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, $0.count - 1) }
        guard n > 0 else { return nil }
        let target = buffer[0..<n].map { UInt8(bitPattern: $0) }
        let text = String(decoding: target, as: UTF8.self)
        return text.split(separator: "/").last.map(String.init)
    }

    public func listDirectory(_ path: String) throws(SysfsError) -> [String] {
        guard let dir = opendir(path) else { throw SysfsError(path: path, operation: "opendir", errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Runs a syscall, retrying while it fails with EINTR.
@inline(__always)
private func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
    while true {
        let r = call()
        if r == -1 && errno == EINTR { continue }
        return r
    }
}
