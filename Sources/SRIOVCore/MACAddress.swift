/// An Ethernet MAC address. Written lower-case with colons.
public struct MACAddress: Hashable, Sendable, TextParsable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// `bytes` must have 6 elements.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    public static let zero = MACAddress(bytes: [0, 0, 0, 0, 0, 0])!

    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, any case.
    public static func parse(_ text: String, field: String) throws(ValidationError) -> MACAddress {
        let sep: Character = text.contains("-") ? "-" : ":"
        let parts = text.split(separator: sep, omittingEmptySubsequences: false)
        guard parts.count == 6 else {
            throw ValidationError(
                field: field, value: text,
                reason: "is not a MAC address; expected six hex octets such as 52:54:00:12:34:56")
        }
        var bytes: [UInt8] = []
        for p in parts {
            guard p.count == 2, let v = parseHex(p, maxDigits: 2) else {
                throw ValidationError(
                    field: field, value: text,
                    reason: "is not a MAC address: octet \"\(p)\" is not two hex digits")
            }
            bytes.append(UInt8(v))
        }
        return MACAddress(bytes: bytes)!
    }

    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
    /// Group bit set (includes broadcast).
    public var isMulticast: Bool { bytes[0] & 0x01 != 0 }
    public var isLocallyAdministered: Bool { bytes[0] & 0x02 != 0 }

    /// A unicast, non-zero address: what a VF may be given as its admin MAC.
    public func validatedAsUnicast(field: String) throws(ValidationError) -> MACAddress {
        if isZero {
            throw ValidationError(field: field, value: description, reason: "is the all-zero address; give a unicast MAC")
        }
        if isMulticast {
            throw ValidationError(
                field: field, value: description,
                reason: "is a multicast or broadcast address (low bit of the first octet set); a VF needs a unicast MAC")
        }
        return self
    }

    public var description: String {
        bytes.map { hexString($0, width: 2) }.joined(separator: ":")
    }
}

extension MACAddress: Codable {
    public init(from decoder: any Decoder) throws { self = try Self.decodeString(from: decoder) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
