/// A PCI function's address, `domain:bus:device.function` (`0000:01:10.0`).
/// This, never an interface name, is how sriovd names PFs and VFs.
public struct PCIAddress: Hashable, Comparable, Sendable, TextParsable, CustomStringConvertible {
    public let domain: UInt16
    public let bus: UInt8
    public let device: UInt8
    public let function: UInt8

    public init(domain: UInt16 = 0, bus: UInt8, device: UInt8, function: UInt8) {
        precondition(device < 32 && function < 8, "PCI device must be < 32 and function < 8")
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Accepts `DDDD:BB:dd.f` and the short form `BB:dd.f` (domain 0), any hex case.
    public static func parse(_ text: String, field: String) throws(ValidationError) -> PCIAddress {
        func fail(_ why: String) -> ValidationError {
            ValidationError(field: field, value: text, reason: why)
        }
        let expected = "is not a PCI address; expected DDDD:BB:DD.F such as 0000:01:10.0"
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { throw fail(expected) }
        var domain: UInt32 = 0
        if parts.count == 3 {
            guard let d = parseHex(parts[0], maxDigits: 4) else { throw fail(expected) }
            domain = d
        }
        guard let bus = parseHex(parts[parts.count - 2], maxDigits: 2) else { throw fail(expected) }
        let devfn = parts[parts.count - 1].split(separator: ".", omittingEmptySubsequences: false)
        guard devfn.count == 2, let dev = parseHex(devfn[0], maxDigits: 2),
            let fn = parseHex(devfn[1], maxDigits: 1)
        else { throw fail(expected) }
        guard dev < 32 else { throw fail("has device number 0x\(hexString(dev, width: 2)); it must be 00-1f") }
        guard fn < 8 else { throw fail("has function number \(fn); it must be 0-7") }
        return PCIAddress(domain: UInt16(domain), bus: UInt8(bus), device: UInt8(dev), function: UInt8(fn))
    }

    public var description: String {
        "\(hexString(domain, width: 4)):\(hexString(bus, width: 2)):\(hexString(device, width: 2)).\(function)"
    }

    public static func < (a: PCIAddress, b: PCIAddress) -> Bool {
        (a.domain, a.bus, a.device, a.function) < (b.domain, b.bus, b.device, b.function)
    }
}

extension PCIAddress: Codable {
    public init(from decoder: any Decoder) throws { self = try Self.decodeString(from: decoder) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
