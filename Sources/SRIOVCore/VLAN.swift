/// An 802.1Q VLAN id as a VF may be given: 0 (no VLAN tag) through 4094.
public struct VLANID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let value: UInt16

    public static let none = VLANID(unchecked: 0)

    init(unchecked value: UInt16) { self.value = value }

    public init(_ value: Int, field: String = "vlan") throws(ValidationError) {
        guard (0...4094).contains(value) else {
            throw ValidationError(field: field, value: String(value), reason: "is outside the VLAN range 0-4094 (0 means untagged)")
        }
        self.value = UInt16(value)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let v = try c.decode(Int.self)
        do { try self.init(v, field: decoder.codingPath.last?.stringValue ?? "vlan") } catch {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(Int(value))
    }

    public var description: String { String(value) }
    public static func < (a: VLANID, b: VLANID) -> Bool { a.value < b.value }
}

/// The 802.1p priority of a VF's VLAN tag, 0 through 7.
public struct VLANQoS: Hashable, Sendable, Codable, CustomStringConvertible {
    public let value: UInt8

    public static let zero = VLANQoS(unchecked: 0)

    init(unchecked value: UInt8) { self.value = value }

    public init(_ value: Int, field: String = "qos") throws(ValidationError) {
        guard (0...7).contains(value) else {
            throw ValidationError(field: field, value: String(value), reason: "is outside the 802.1p priority range 0-7")
        }
        self.value = UInt8(value)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let v = try c.decode(Int.self)
        do { try self.init(v, field: decoder.codingPath.last?.stringValue ?? "qos") } catch {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(Int(value))
    }

    public var description: String { String(value) }
}

/// The VLAN tag protocol of a VF's port VLAN.
public enum VLANProtocol: String, Hashable, Sendable, CaseIterable, TextParsable, CustomStringConvertible {
    case dot1Q = "802.1Q"
    case dot1AD = "802.1ad"

    /// The EtherType as the kernel reports it (host byte order).
    public var etherType: UInt16 {
        switch self {
        case .dot1Q: 0x8100
        case .dot1AD: 0x88A8
        }
    }

    public init?(etherType: UInt16) {
        switch etherType {
        case 0x8100: self = .dot1Q
        case 0x88A8: self = .dot1AD
        default: return nil
        }
    }

    public static func parse(_ text: String, field: String) throws(ValidationError) -> VLANProtocol {
        switch text.lowercased() {
        case "802.1q", "8021q", "dot1q": return .dot1Q
        case "802.1ad", "8021ad", "dot1ad", "qinq": return .dot1AD
        default:
            throw ValidationError(field: field, value: text, reason: "is not a VLAN protocol; use \"802.1Q\" or \"802.1ad\"")
        }
    }

    public var description: String { rawValue }
}

extension VLANProtocol: Codable {
    public init(from decoder: any Decoder) throws { self = try Self.decodeString(from: decoder) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// A VF's administrative link state (IFLA_VF_LINK_STATE).
public enum VFLinkState: String, Hashable, Sendable, CaseIterable, TextParsable, CustomStringConvertible {
    /// Follow the PF's link.
    case auto
    case enable
    case disable

    /// The kernel's IFLA_VF_LINK_STATE_* value.
    public var kernelValue: UInt32 {
        switch self {
        case .auto: 0
        case .enable: 1
        case .disable: 2
        }
    }

    public init?(kernelValue: UInt32) {
        switch kernelValue {
        case 0: self = .auto
        case 1: self = .enable
        case 2: self = .disable
        default: return nil
        }
    }

    public static func parse(_ text: String, field: String) throws(ValidationError) -> VFLinkState {
        guard let v = VFLinkState(rawValue: text.lowercased()) else {
            throw ValidationError(field: field, value: text, reason: "is not a link state; use \"auto\", \"enable\" or \"disable\"")
        }
        return v
    }

    public var description: String { rawValue }
}

extension VFLinkState: Codable {
    public init(from decoder: any Decoder) throws { self = try Self.decodeString(from: decoder) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
