import CSRIOVShim
import SRIOVCore
import Synchronization

/// The parts shared by every libpci caller in this module.
enum LibPCI {
    /// libpci is not thread-safe; every call into it in this process holds
    /// this lock (one lock for all callers: scans and name look-ups alike).
    static let lock = Mutex(())

    /// Reads a NUL-terminated C string out of a fixed-size C array (a Swift tuple).
    static func string<T>(fromFixedArray array: T) -> String {
        withUnsafeBytes(of: array) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// A `PCIAddress`, or nil when the domain does not fit in 16 bits (VMD
    /// domains, for example, start at 0x10000).
    static func address(domain: Int32, bus: UInt8, device: UInt8, function: UInt8) -> PCIAddress? {
        guard let domain = UInt16(exactly: domain), device < 32, function < 8 else { return nil }
        return PCIAddress(domain: domain, bus: bus, device: device, function: function)
    }

    static func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let text else { return body(nil) }
        return text.withCString { body($0) }
    }

    static func nonEmpty(_ text: String) -> String? { text.isEmpty ? nil : text }
}
