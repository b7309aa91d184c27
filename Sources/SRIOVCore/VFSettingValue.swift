/// A value one VF setting field holds. It says how it is read from each edge
/// (a command-line option, the configuration file, JSON) and how it is shown,
/// so that a field is defined by its type and a few words (`VFSettingField`).
public protocol VFSettingValue: Hashable, Sendable, Codable, CustomStringConvertible {
    /// How the configuration file writes it.
    static var configForm: VFSettingConfigForm { get }
    /// The value from an input of the kind `configForm` says, or from
    /// command-line text; a refusal names `field`.
    init(_ input: VFSettingInput, field: String) throws(ValidationError)
    /// The value under `key`, nil when absent; a refusal names the key.
    static func decodeJSON(
        from container: KeyedDecodingContainer<VFSettingField.CodingKey>, key: VFSettingField.CodingKey
    ) throws -> Self?
    /// As sriovctl shows it in a list of settings.
    var displayText: String { get }
}

/// How the configuration file writes a setting's value.
public enum VFSettingConfigForm: Sendable, Hashable {
    /// `true` or `false`.
    case boolean
    /// An integer in `range`; `meaning` follows the range in a refusal.
    case integer(ClosedRange<Int>, meaning: String?)
    /// An integer that the value's type checks itself (a VLAN id, a priority).
    case checkedInteger
    /// A string that the value's type parses (a MAC, a protocol name).
    case string
}

/// A setting's value as it comes in, before its type has checked it.
public enum VFSettingInput: Sendable, Hashable {
    /// From the command line, or a string of the configuration file.
    case text(String)
    case integer(Int)
    case boolean(Bool)
}

extension VFSettingValue {
    public static func decodeJSON(
        from container: KeyedDecodingContainer<VFSettingField.CodingKey>, key: VFSettingField.CodingKey
    ) throws -> Self? {
        try container.decodeIfPresent(Self.self, forKey: key)
    }

    public var displayText: String { description }

    static func mismatch(_ input: VFSettingInput, field: String, expected: String) -> ValidationError {
        ValidationError(field: field, value: "\(input)", reason: "is not \(expected)")
    }
}

extension VFSettingValue where Self: TextParsable {
    public static var configForm: VFSettingConfigForm { .string }

    public init(_ input: VFSettingInput, field: String) throws(ValidationError) {
        guard case .text(let text) = input else { throw Self.mismatch(input, field: field, expected: "a string") }
        self = try Self.parse(text, field: field)
    }
}

extension MACAddress: VFSettingValue {}
extension VLANProtocol: VFSettingValue {}
extension VFLinkState: VFSettingValue {}

extension Bool: VFSettingValue {
    public static var configForm: VFSettingConfigForm { .boolean }

    /// `true`/`false`; as text "on" or "off" ("true"/"false", "yes"/"no" too, any case).
    public init(_ input: VFSettingInput, field: String) throws(ValidationError) {
        switch input {
        case .boolean(let value): self = value
        case .text(let text): self = try Self.parseSwitch(text, field: field)
        case .integer: throw Self.mismatch(input, field: field, expected: "a switch")
        }
    }

    /// "on" or "off"; "true"/"false" and "yes"/"no" too, any case.
    public static func parseSwitch(_ text: String, field: String) throws(ValidationError) -> Bool {
        switch text.lowercased() {
        case "on", "true", "yes": return true
        case "off", "false", "no": return false
        default: throw ValidationError(field: field, value: text, reason: "is not a switch; use \"on\" or \"off\"")
        }
    }

    public var displayText: String { self ? "on" : "off" }
}

extension VLANID: VFSettingValue {
    public static var configForm: VFSettingConfigForm { .checkedInteger }

    public init(_ input: VFSettingInput, field: String) throws(ValidationError) {
        try self.init(input.integer(field: field, expected: "a VLAN id 0-4094"), field: field)
    }

    public var displayText: String { self == .none ? "0 (untagged)" : description }
}

extension VLANQoS: VFSettingValue {
    public static var configForm: VFSettingConfigForm { .checkedInteger }

    public init(_ input: VFSettingInput, field: String) throws(ValidationError) {
        try self.init(input.integer(field: field, expected: "a priority 0-7"), field: field)
    }
}

/// A TX rate in Mbit/s, 0 meaning none (minimum) or no limit (maximum).
extension UInt32: VFSettingValue {
    public static var configForm: VFSettingConfigForm { .integer(0...Int(UInt32.max), meaning: nil) }

    public init(_ input: VFSettingInput, field: String) throws(ValidationError) {
        switch input {
        case .integer(let value):
            guard let rate = UInt32(exactly: value) else { throw Self.outOfRange(String(value), field: field) }
            self = rate
        case .text(let text):
            guard let rate = UInt32(text) else {
                throw ValidationError(
                    field: field, value: text, reason: "is not a rate in Mbit/s; expected 0 (no limit) to \(UInt32.max)")
            }
            self = rate
        case .boolean: throw Self.mismatch(input, field: field, expected: "a rate in Mbit/s")
        }
    }

    /// Decoded as Int and range-checked here, so a negative or huge rate is
    /// an error that names the field (not "invalid JSON").
    public static func decodeJSON(
        from container: KeyedDecodingContainer<VFSettingField.CodingKey>, key: VFSettingField.CodingKey
    ) throws -> UInt32? {
        guard let value = try container.decodeIfPresent(Int.self, forKey: key) else { return nil }
        guard let rate = UInt32(exactly: value) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: outOfRange(String(value), field: key.stringValue).description)
        }
        return rate
    }

    static func outOfRange(_ value: String, field: String) -> ValidationError {
        ValidationError(field: field, value: value, reason: "is not a rate in Mbit/s (0 to 4294967295)")
    }
}

extension VFSettingInput {
    /// An integer, or decimal text for one; `expected` says what in a refusal.
    func integer(field: String, expected: String) throws(ValidationError) -> Int {
        switch self {
        case .integer(let value): return value
        case .text(let text):
            guard let value = Int(text) else { throw ValidationError(field: field, value: text, reason: "is not \(expected)") }
            return value
        case .boolean: throw ValidationError(field: field, value: "\(self)", reason: "is not \(expected)")
        }
    }
}
