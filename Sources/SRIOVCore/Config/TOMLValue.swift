/// Where something was written in a TOML document: 1-based line and column.
/// Columns count Unicode scalars, so they match what an editor shows for
/// text without tabs.
public struct TOMLPosition: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public static func < (a: TOMLPosition, b: TOMLPosition) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }

    public var description: String { "\(line):\(column)" }
}

/// A value read from a TOML document, with the place it was written.
///
/// Only the types sriovd's parser supports exist here: strings, 64-bit
/// integers, booleans, arrays and tables. Floats and dates are refused when
/// parsing, with an error that says so.
public struct TOMLValue: Hashable, Sendable {
    public enum Storage: Hashable, Sendable {
        case string(String)
        case integer(Int64)
        case boolean(Bool)
        case array([TOMLValue])
        case table(TOMLTable)
    }

    public var storage: Storage
    /// Where the value starts (for a `[[table]]` array: its first header).
    public var position: TOMLPosition

    public init(_ storage: Storage, at position: TOMLPosition) {
        self.storage = storage
        self.position = position
    }

    public var string: String? {
        if case .string(let s) = storage { return s }
        return nil
    }

    public var integer: Int64? {
        if case .integer(let i) = storage { return i }
        return nil
    }

    public var boolean: Bool? {
        if case .boolean(let b) = storage { return b }
        return nil
    }

    public var array: [TOMLValue]? {
        if case .array(let a) = storage { return a }
        return nil
    }

    public var table: TOMLTable? {
        if case .table(let t) = storage { return t }
        return nil
    }

    /// The type's name with an article, for messages: "a string", "an integer".
    public var typeDescription: String {
        switch storage {
        case .string: "a string"
        case .integer: "an integer"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }

    /// The value as a message should quote it: `string "seven"`, `integer 7`,
    /// `boolean true`, `array`, `table`. Long strings are shortened.
    public var summary: String {
        switch storage {
        case .string(let s):
            let shown =
                s.unicodeScalars.count > 40 ? String(String.UnicodeScalarView(s.unicodeScalars.prefix(37))) + "..." : s
            return "string \(TOMLValue.quoted(shown))"
        case .integer(let i): return "integer \(i)"
        case .boolean(let b): return "boolean \(b)"
        case .array(let a): return a.isEmpty ? "empty array" : "array"
        case .table: return "table"
        }
    }

    /// `s` as a TOML basic string, with control characters, quotes and
    /// backslashes escaped, so a message never carries raw control bytes.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u" + hexString(scalar.value, width: 4).uppercased()
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// A TOML table: keys in the order the document defined them, each with the
/// place its key was written.
public struct TOMLTable: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var key: String
        /// Where the key (its last part, for a dotted key) was written.
        public var keyPosition: TOMLPosition
        public var value: TOMLValue

        public init(key: String, keyPosition: TOMLPosition, value: TOMLValue) {
            self.key = key
            self.keyPosition = keyPosition
            self.value = value
        }
    }

    /// In document order.
    public private(set) var entries: [Entry]
    /// Where the table was opened: its header, its `{`, or the first key
    /// that implied it.
    public var position: TOMLPosition
    private var index: [String: Int]

    public init(entries: [Entry] = [], position: TOMLPosition = TOMLPosition(line: 1, column: 1)) {
        self.entries = []
        self.position = position
        self.index = [:]
        for e in entries { set(e) }
    }

    public var keys: [String] { entries.map(\.key) }
    public var isEmpty: Bool { entries.isEmpty }

    public subscript(key: String) -> TOMLValue? {
        index[key].map { entries[$0].value }
    }

    public func entry(_ key: String) -> Entry? {
        index[key].map { entries[$0] }
    }

    /// Adds `entry`, or replaces the entry with the same key in place.
    public mutating func set(_ entry: Entry) {
        if let i = index[entry.key] {
            entries[i] = entry
        } else {
            index[entry.key] = entries.count
            entries.append(entry)
        }
    }

    public static func == (a: TOMLTable, b: TOMLTable) -> Bool {
        a.entries == b.entries && a.position == b.position
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries)
        hasher.combine(position)
    }
}
