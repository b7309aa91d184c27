import Foundation
import Hummingbird
import NIOCore
import SRIOVCore

/// Reading a JSON request body: bounded in size, strict about unknown
/// fields (a typo must not silently do nothing), and every refusal a 400
/// that names the field.
enum RequestBody {
    static func decode<T: Decodable>(
        _ type: T.Type, from request: Request, allowedKeys: Set<String>, limit: Int
    ) async throws -> T {
        if let contentType = request.headers[.contentType],
            !contentType.lowercased().hasPrefix("application/json")
        {
            throw APIError.unsupportedMediaType("send the body as application/json (got \(contentType))")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw APIError.payloadTooLarge(limit: limit)
        }
        let data = Data(buffer.readableBytesView)
        guard !data.isEmpty else {
            throw APIError.invalid(ValidationError(field: "body", value: "", reason: "is missing; send a JSON object"))
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw APIError.invalid(ValidationError(field: "body", value: "", reason: "is not valid JSON"))
        }
        guard let dictionary = object as? [String: Any] else {
            throw APIError.invalid(ValidationError(field: "body", value: "", reason: "must be a JSON object"))
        }
        for key in dictionary.keys.sorted() where !allowedKeys.contains(key) {
            throw APIError.invalid(ValidationError(
                field: key, value: "", reason: "is not a known field; known fields: \(allowedKeys.sorted().joined(separator: ", "))"))
        }
        for (key, value) in dictionary where value is NSNull {
            throw APIError.invalid(ValidationError(field: key, value: "null", reason: "must not be null; leave the field out to leave it alone"))
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            // Foundation reports a fractional or too-large number for an
            // integer field as "not valid JSON", without a path: find it.
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
                let (path, value) = firstNonInteger(in: dictionary, path: "")
            {
                throw APIError.invalid(ValidationError.message(
                    field: path, "must be a whole number within range (got \(value))"))
            }
            throw APIError.invalid(validationError(from: error))
        }
    }

    /// The first number, depth first in key order, that no integer field
    /// could hold, with its path (`nics[0].maxTxRate`). Only numbers are
    /// looked at: a fractional value where a number is expected.
    private static func firstNonInteger(in value: Any, path: String) -> (String, Any)? {
        if let dictionary = value as? [String: Any] {
            for key in dictionary.keys.sorted() {
                let sub = path.isEmpty ? key : "\(path).\(key)"
                if let found = firstNonInteger(in: dictionary[key]!, path: sub) { return found }
            }
        } else if let array = value as? [Any] {
            for (i, element) in array.enumerated() {
                if let found = firstNonInteger(in: element, path: "\(path)[\(i)]") { return found }
            }
        } else if !(value is Bool), value is NSNumber, notAnInteger(value) {
            return (path, value)
        }
        return nil
    }

    /// A JSON number that no integer field could hold.
    private static func notAnInteger(_ value: Any?) -> Bool {
        guard let number = value as? NSNumber else { return false }
        let double = number.doubleValue
        return double != double.rounded() || abs(double) >= 9.2e18
    }

    /// A decoding failure as a ValidationError naming the JSON path.
    static func validationError(from error: DecodingError) -> ValidationError {
        func path(_ codingPath: [any CodingKey]) -> String {
            var p = ""
            for key in codingPath {
                if let i = key.intValue { p += "[\(i)]" } else { p += (p.isEmpty ? "" : ".") + key.stringValue }
            }
            return p.isEmpty ? "body" : p
        }
        switch error {
        case .typeMismatch(let type, let context):
            return ValidationError(field: path(context.codingPath), value: "", reason: "has the wrong type; expected \(typeName(type))")
        case .valueNotFound(let type, let context):
            return ValidationError(field: path(context.codingPath), value: "", reason: "is missing; expected \(typeName(type))")
        case .keyNotFound(let key, let context):
            return ValidationError(field: path(context.codingPath + [key]), value: "", reason: "is required")
        case .dataCorrupted(let context):
            // Our types put their ValidationError text in the debug
            // description, starting with the field name: do not repeat it.
            var field = path(context.codingPath)
            var text = context.debugDescription
            // A nested value's own error may name a deeper field
            // (`nics[0].failover.bond: ...`): report that one.
            if let colon = text.range(of: ": "), text[..<colon.lowerBound].hasPrefix(field),
                !text[..<colon.lowerBound].contains(" ")
            {
                field = String(text[..<colon.lowerBound])
                text = String(text[colon.upperBound...])
            }
            return ValidationError.message(field: field, text)
        @unknown default:
            return ValidationError(field: "body", value: "", reason: "could not be decoded")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Bool.Type: "a boolean"
        case is Int.Type, is UInt32.Type, is Int32.Type, is UInt16.Type, is UInt8.Type: "an integer"
        case is String.Type: "a string"
        default: "\(type)"
        }
    }
}
