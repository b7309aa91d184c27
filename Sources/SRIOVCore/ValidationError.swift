/// A value from outside (API body, config file, command line) that was refused.
/// It names the field, echoes the offending value and says why, so an operator
/// can fix the input without reading code.
public struct ValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var reason: String

    public init(field: String, value: String, reason: String) {
        self.field = field
        self.value = value
        self.reason = reason
    }

    /// The same error, reported under a (more) qualified field name, e.g. `vfs[2].mac`.
    public func inField(_ name: String) -> ValidationError {
        ValidationError(field: name, value: value, reason: reason)
    }

    /// An error whose `reason` already says everything after the field name
    /// (e.g. a nested error's text); no value is quoted.
    public static func message(field: String, _ text: String) -> ValidationError {
        var error = ValidationError(field: field, value: "", reason: text)
        error.preformatted = true
        return error
    }

    var preformatted = false

    public var description: String {
        if preformatted { return "\(field): \(reason)" }
        return "\(field): \(value.isEmpty ? "empty value" : "\"\(value)\"") \(reason)"
    }
}

/// Types that are parsed from text exactly once, at the edge.
public protocol TextParsable {
    /// Parses `text`, naming `field` in the error when it is refused.
    static func parse(_ text: String, field: String) throws(ValidationError) -> Self
}

extension TextParsable {
    /// Decodes the value from a single JSON string, with the coding path as the field name.
    static func decodeString(from decoder: any Decoder) throws -> Self {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        let field = decoder.codingPath.map { key in
            key.intValue.map { "[\($0)]" } ?? key.stringValue
        }.joined(separator: ".")
        do {
            return try parse(text, field: field.isEmpty ? "value" : field)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }
}

func hexValue(_ c: Character) -> UInt8? {
    guard let ascii = c.asciiValue else { return nil }
    switch ascii {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return ascii - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return ascii - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return ascii - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// Parses 1...maxDigits hex digits into an integer, or nil.
func parseHex(_ s: Substring, maxDigits: Int) -> UInt32? {
    guard !s.isEmpty, s.count <= maxDigits else { return nil }
    var v: UInt32 = 0
    for c in s {
        guard let d = hexValue(c) else { return nil }
        v = v << 4 | UInt32(d)
    }
    return v
}

func hexString<T: BinaryInteger>(_ v: T, width: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}
