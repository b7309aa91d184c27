import Foundation
import Logging
import SRIOVCore
import Synchronization
import Testing

@testable import SRIOVHost

/// Collects log records, so tests can check what a component reported.
private final class PCILogRecorder: Sendable {
    private let records = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])

    var logger: Logger {
        Logger(label: "test.pci") { _ in PCIRecordingHandler(recorder: self) }
    }

    func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
        records.withLock { $0.append((level, message, metadata)) }
    }

    var warnings: [(message: String, metadata: Logger.Metadata)] {
        records.withLock { $0.filter { $0.level == .warning }.map { ($0.message, $0.metadata) } }
    }
}

private struct PCIRecordingHandler: LogHandler {
    let recorder: PCILogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        recorder.append(event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })
    }
}

/// A folder shaped like /sys/bus/pci, removed when the test ends.
private struct FakePCISysfs: ~Copyable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("sriovd-pci-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path + "/devices", withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A device folder with the files libpci's sysfs back end reads; `config`
    /// is the 64-byte header carrying the ids and class (prog-if included).
    func addDevice(
        _ name: String, vendor: UInt16, device: UInt16, classCode: UInt32, numaNode: Int?,
        omitting omitted: Set<String> = []
    ) throws {
        let dir = path + "/devices/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func write(_ file: String, _ text: String) throws {
            guard !omitted.contains(file) else { return }
            try text.write(toFile: dir + "/" + file, atomically: false, encoding: .utf8)
        }
        try write("vendor", "0x" + String(vendor, radix: 16) + "\n")
        try write("device", "0x" + String(device, radix: 16) + "\n")
        try write("class", "0x" + String(classCode, radix: 16) + "\n")
        if let numaNode { try write("numa_node", "\(numaNode)\n") }
        var config = [UInt8](repeating: 0, count: 64)
        config[0] = UInt8(vendor & 0xff)
        config[1] = UInt8(vendor >> 8)
        config[2] = UInt8(device & 0xff)
        config[3] = UInt8(device >> 8)
        config[9] = UInt8(classCode & 0xff)
        config[10] = UInt8((classCode >> 8) & 0xff)
        config[11] = UInt8(classCode >> 16)
        if !omitted.contains("config") {
            try Data(config).write(to: URL(fileURLWithPath: dir + "/config"))
        }
    }
}

/// A file in the temporary folder, removed when the test ends.
private struct PCITemporaryFile: ~Copyable {
    let path: String

    init(contents: String) throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("sriovd-pci-\(UUID().uuidString).ids").path
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

private let testIDs = """
    # A pci.ids of our own, so names do not depend on the host's copy.
    8086  Test Vendor
    \t10ca  Test Virtual Function
    \t1521  Test Physical Function
    1af4  Other Vendor

    """

private let corruptIDs = "zzzz this is not pci.ids\n\tbad\n"

private let hostPCIDevices = "/sys/bus/pci/devices"

private func sysfsValue(_ device: String, _ file: String) throws -> String {
    try String(contentsOfFile: "\(hostPCIDevices)/\(device)/\(file)", encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

private func sysfsHex(_ device: String, _ file: String) throws -> UInt32 {
    let text = try sysfsValue(device, file)
    return try #require(UInt32(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text, radix: 16))
}

@Suite("libpci scan")
struct PCIScannerTests {
    @Test("the scan lists every device sysfs lists, with sysfs's ids, class and NUMA node")
    func scanMatchesSysfs() throws {
        let sysfsNames = try FileManager.default.contentsOfDirectory(atPath: hostPCIDevices).sorted()
        try #require(!sysfsNames.isEmpty, "this test needs a machine with PCI devices")

        let devices = try PCIScanner(logger: PCILogRecorder().logger).scan()

        #expect(devices.map(\.address.description) == sysfsNames)
        for device in devices {
            let name = device.address.description
            #expect(UInt32(device.vendorID) == (try sysfsHex(name, "vendor")), "\(name)")
            #expect(UInt32(device.deviceID) == (try sysfsHex(name, "device")), "\(name)")
            #expect(device.classCode == (try sysfsHex(name, "class")), "\(name)")
            let node = Int(try sysfsValue(name, "numa_node")) ?? -1
            #expect(device.numaNode == (node >= 0 ? node : nil), "\(name)")
        }
    }

    @Test("names are those the host's pci.ids gives the vendor and device ids")
    func namesComeFromPCIIDs() throws {
        let ids = try String(contentsOfFile: "/usr/share/misc/pci.ids", encoding: .utf8)
        let devices = try PCIScanner(logger: PCILogRecorder().logger).scan()
        var checked = 0
        for device in devices {
            guard let (vendor, model) = Self.names(in: ids, vendor: device.vendorID, device: device.deviceID)
            else { continue }
            #expect(device.vendorName == vendor, "\(device.address)")
            if let model { #expect(device.deviceName == model, "\(device.address)") }
            checked += 1
        }
        #expect(checked > 0, "no device on this machine has a vendor in pci.ids")
    }

    @Test("every field is read from the sysfs folder it is given, names from the pci.ids it is given")
    func readsAGivenSysfsAndPCIIDs() throws {
        let sysfs = try FakePCISysfs()
        try sysfs.addDevice("0001:05:10.3", vendor: 0x8086, device: 0x10ca, classCode: 0x020000, numaNode: 1)
        try sysfs.addDevice("0000:00:1f.6", vendor: 0x1af4, device: 0xbeef, classCode: 0x0c0330, numaNode: -1)
        let ids = try PCITemporaryFile(contents: testIDs)
        let scanner = PCIScanner(options: .init(sysfsPath: sysfs.path, idsPath: ids.path), logger: PCILogRecorder().logger)

        let devices = try scanner.scan()

        #expect(
            devices == [
                PCIDeviceInfo(
                    address: PCIAddress(domain: 0, bus: 0, device: 0x1f, function: 6), vendorID: 0x1af4,
                    deviceID: 0xbeef, classCode: 0x0c0330, numaNode: nil, vendorName: "Other Vendor",
                    deviceName: nil),
                PCIDeviceInfo(
                    address: PCIAddress(domain: 1, bus: 5, device: 0x10, function: 3), vendorID: 0x8086,
                    deviceID: 0x10ca, classCode: 0x020000, numaNode: 1, vendorName: "Test Vendor",
                    deviceName: "Test Virtual Function"),
            ])
        #expect(devices.last?.baseClass == 0x02)
    }

    @Test("without name look-up, names are nil")
    func namesCanBeSkipped() throws {
        let sysfs = try FakePCISysfs()
        try sysfs.addDevice("0000:03:00.0", vendor: 0x8086, device: 0x1521, classCode: 0x020000, numaNode: 0)
        let devices = try PCIScanner(
            options: .init(sysfsPath: sysfs.path, lookupNames: false), logger: PCILogRecorder().logger
        ).scan()
        #expect(devices.count == 1)
        #expect(devices.first?.vendorName == nil && devices.first?.deviceName == nil)
        #expect(devices.first?.numaNode == 0)
    }

    @Test("a sysfs path that does not exist is a thrown error with libpci's words, not exit(1)")
    func missingSysfsThrows() {
        let path = "/nonexistent-sriovd-\(UUID().uuidString)"
        let scanner = PCIScanner(options: .init(sysfsPath: path), logger: PCILogRecorder().logger)
        #expect(throws: PCIError.scanFailed(libpci: "Cannot open \(path)/devices")) {
            try scanner.scan()
        }
        // Reaching this line is the point: libpci's default handler would have exited.
        #expect(throws: PCIError.self) { try scanner.scan() }
    }

    @Test("a device libpci cannot read fails the scan, naming the device")
    func unreadableDeviceThrows() throws {
        let sysfs = try FakePCISysfs()
        try sysfs.addDevice(
            "0000:00:01.0", vendor: 0x8086, device: 0x10ca, classCode: 0x020000, numaNode: nil,
            omitting: ["vendor"])
        let scanner = PCIScanner(options: .init(sysfsPath: sysfs.path), logger: PCILogRecorder().logger)
        #expect {
            try scanner.scan()
        } throws: { error in
            guard case .readFailed(let device, let message) = error as? PCIError else { return false }
            return device == PCIAddress(bus: 0, device: 1, function: 0) && message.contains("vendor")
                && "\(error)".contains("0000:00:01.0")
        }
    }

    @Test("a sysfs entry that is not a PCI address is a thrown error")
    func malformedSysfsEntryThrows() throws {
        let sysfs = try FakePCISysfs()
        try FileManager.default.createDirectory(atPath: sysfs.path + "/devices/garbage", withIntermediateDirectories: true)
        let scanner = PCIScanner(options: .init(sysfsPath: sysfs.path), logger: PCILogRecorder().logger)
        #expect {
            try scanner.scan()
        } throws: { error in
            guard case .scanFailed(let message) = error as? PCIError else { return false }
            return message.contains("garbage")
        }
    }

    @Test("a corrupt pci.ids leaves names nil, logs libpci's parse error, and the scan succeeds")
    func corruptPCIIDsDoesNotFailTheScan() throws {
        let sysfs = try FakePCISysfs()
        try sysfs.addDevice("0000:03:00.0", vendor: 0x8086, device: 0x1521, classCode: 0x020000, numaNode: nil)
        try sysfs.addDevice("0000:03:00.1", vendor: 0x8086, device: 0x1521, classCode: 0x020000, numaNode: nil)
        let ids = try PCITemporaryFile(contents: corruptIDs)
        let recorder = PCILogRecorder()
        let scanner = PCIScanner(options: .init(sysfsPath: sysfs.path, idsPath: ids.path), logger: recorder.logger)

        let devices = try scanner.scan()

        #expect(devices.map(\.address.description) == ["0000:03:00.0", "0000:03:00.1"])
        #expect(devices.allSatisfy { $0.vendorName == nil && $0.deviceName == nil })
        let warning = try #require(recorder.warnings.first)
        #expect(warning.metadata["libpci"]?.description == "Parse error at \(ids.path), line 1")
    }

    @Test("a device whose PCI domain does not fit 16 bits is skipped with a warning")
    func wideDomainIsSkipped() throws {
        let sysfs = try FakePCISysfs()
        try sysfs.addDevice("10000:00:01.0", vendor: 0x8086, device: 0x1521, classCode: 0x020000, numaNode: nil)
        try sysfs.addDevice("0000:00:02.0", vendor: 0x8086, device: 0x1521, classCode: 0x020000, numaNode: nil)
        let recorder = PCILogRecorder()
        let devices = try PCIScanner(
            options: .init(sysfsPath: sysfs.path, lookupNames: false), logger: recorder.logger
        ).scan()
        #expect(devices.map(\.address.description) == ["0000:00:02.0"])
        #expect(recorder.warnings.first?.metadata["domain"]?.description == "10000")
    }

    @Test("concurrent scans are serialized and agree")
    func concurrentScansAgree() async throws {
        let scanner = PCIScanner(logger: PCILogRecorder().logger)
        let expected = try scanner.scan()
        try await withThrowingTaskGroup(of: [PCIDeviceInfo].self) { group in
            for _ in 0..<8 {
                group.addTask { try scanner.scan() }
            }
            for try await devices in group {
                #expect(devices == expected)
            }
        }
    }

    /// The vendor's name and, when listed, the device's, from pci.ids text.
    private static func names(in ids: String, vendor: UInt16, device: UInt16) -> (String, String?)? {
        let vendorHex = hex4(vendor)
        let deviceHex = hex4(device)
        var vendorName: String?
        for line in ids.split(separator: "\n", omittingEmptySubsequences: false) {
            if let name = vendorName {
                if !line.hasPrefix("\t") && !line.hasPrefix("#") && !line.isEmpty { return (name, nil) }
                if line.hasPrefix("\t" + deviceHex + "  ") { return (name, String(line.dropFirst(7))) }
            } else if line.hasPrefix(vendorHex + "  ") {
                vendorName = String(line.dropFirst(6))
            }
        }
        return vendorName.map { ($0, nil) }
    }
}

private func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 4 - digits.count) + digits
}

@Suite("PCI names")
struct PCINamesTests {
    @Test("known ids get the names the given pci.ids holds; unknown ones nil")
    func looksUpNames() throws {
        let ids = try PCITemporaryFile(contents: testIDs)
        let names = PCINames(idsPath: ids.path, logger: PCILogRecorder().logger)
        let known = try names.lookup(vendorID: 0x8086, deviceID: 0x1521)
        #expect(known.vendor == "Test Vendor" && known.device == "Test Physical Function")
        let unknownDevice = names.names(vendorID: 0x1af4, deviceID: 0x7777)
        #expect(unknownDevice.vendor == "Other Vendor" && unknownDevice.device == nil)
    }

    @Test("the host's pci.ids names an Intel 82576 VF")
    func hostPCIIDs() {
        let names = PCINames(logger: PCILogRecorder().logger).names(vendorID: 0x8086, deviceID: 0x10ca)
        #expect(names.vendor == "Intel Corporation")
        #expect(names.device == "82576 Virtual Function")
    }

    @Test("a corrupt pci.ids throws libpci's parse error from lookup and gives nil names from names()")
    func corruptPCIIDs() throws {
        let ids = try PCITemporaryFile(contents: corruptIDs)
        let recorder = PCILogRecorder()
        let names = PCINames(idsPath: ids.path, logger: recorder.logger)
        #expect(throws: PCIError.namesFailed(libpci: "Parse error at \(ids.path), line 1")) {
            try names.lookup(vendorID: 0x8086, deviceID: 0x1521)
        }
        let resolved = names.names(vendorID: 0x8086, deviceID: 0x1521)
        #expect(resolved.vendor == nil && resolved.device == nil)
        _ = names.names(vendorID: 0x8086, deviceID: 0x1521)
        #expect(recorder.warnings.count == 1, "a failed pair is cached and reported once")
    }
}
