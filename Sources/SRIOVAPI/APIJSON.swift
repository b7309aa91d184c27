#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one JSON configuration of the API, for both ends: keys sorted (the
/// same value is always the same bytes, for scripts and diffs), slashes as
/// they are, dates in ISO 8601.
public enum APIJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

extension CodingKey where Self: CaseIterable, Self: RawRepresentable, RawValue == String {
    /// Every member name, for a body's list of known fields.
    static var names: Set<String> { Set(allCases.map(\.rawValue)) }
}

/// A name sent as a JSON string and kept whatever it is, so that a newer
/// peer's names still get through; the ones known are constants of the type.
public protocol OpenName: RawRepresentable<String>, Hashable, Sendable, Codable, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    init(rawValue: String)
}

extension OpenName {
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public var description: String { rawValue }
}
