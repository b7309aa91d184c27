/// A strict TOML 1.0 parser for sriovd's configuration.
///
/// It reads a subset of TOML 1.0, so that every document it accepts is also
/// read the same way by other TOML tools: comments; bare, quoted and dotted
/// keys; basic and literal strings, single- and multi-line, with escapes;
/// 64-bit integers (decimal, `0x`, `0o`, `0b`, with `_` separators);
/// booleans; arrays; inline tables; `[tables]` and `[[arrays.of.tables]]`.
/// Floats, dates and times are refused with an error saying so.
///
/// Pure: no I/O. Any input, valid UTF-8 or not, either parses or throws a
/// `TOMLError` with its line and column; nothing it reads can make it trap.
public enum TOML {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        try parse(utf8: Array(text.utf8))
    }

    /// Parses raw bytes, e.g. a file's contents; invalid UTF-8 is an error.
    public static func parse(utf8 bytes: [UInt8]) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(bytes)
        return try parser.parseDocument()
    }
}

struct TOMLParser {
    private let b: [UInt8]
    private var i = 0
    /// Offsets at which each line starts; line n (1-based) starts at lineStarts[n-1].
    private let lineStarts: [Int]
    private let root = TOMLTableNode.root()
    private var current: TOMLTableNode
    /// The section (header) the document is in; dotted keys extend only their own section's tables.
    private var section = 0
    private var lastSection = 0

    /// Most parts a dotted key may have.
    static let maxKeyParts = 32

    init(_ bytes: [UInt8]) {
        b = bytes
        var starts = [0]
        for (k, c) in bytes.enumerated() where c == .lf { starts.append(k + 1) }
        lineStarts = starts
        current = root
    }

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        if let bad = Self.firstInvalidUTF8(b) {
            throw fail(at: bad, "the file is not valid UTF-8 (byte 0x\(hexString(b[bad], width: 2)))")
        }
        // Not every TOML reader skips one, so neither does this one.
        if b.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw fail(at: 0, "the file starts with a byte-order mark; save it as UTF-8 without one")
        }
        while true {
            skipWhitespace()
            guard let c = cur else { break }
            switch c {
            case .hash, .lf, .cr:
                try endOfLine(after: nil)
            case .lbracket:
                try parseHeader()
                try endOfLine(after: "the table header")
            default:
                try parseKeyValue(into: current, section: section)
                try endOfLine(after: "the value")
            }
        }
        return root.build()
    }

    // MARK: Lines and headers

    private mutating func parseKeyValue(into table: TOMLTableNode, section: Int) throws(TOMLError) {
        let parts = try parseKey()
        let keyPath = table.path + parts.map(\.name)
        skipWhitespace()
        guard cur == .equals else {
            throw fail(at: i, "expected '=' after the key \(TOMLKey.display(keyPath)), found \(found(at: i))")
        }
        i += 1
        skipWhitespace()
        if cur == nil || cur == .lf || cur == .cr || cur == .hash {
            throw fail(at: i, key: TOMLKey.display(keyPath), "expected a value after '=', found \(found(at: i))")
        }
        let value = try parseValue(depth: table.depth + parts.count, path: keyPath)
        var target = table
        for part in parts.dropLast() {
            target = try target.dottedChild(part.name, at: position(part.offset), section: section)
        }
        let last = parts[parts.count - 1]
        try target.insert(value, key: last.name, at: position(last.offset))
    }

    private mutating func parseHeader() throws(TOMLError) {
        let start = i
        let isArray = byte(at: i + 1) == .lbracket
        i += isArray ? 2 : 1
        let parts = try parseKey()
        guard cur == .rbracket else {
            throw fail(at: i, "expected ']' to close the table header, found \(found(at: i))")
        }
        i += 1
        if isArray {
            guard cur == .rbracket else {
                throw fail(at: i, "expected ']]' to close the array-of-tables header, found \(found(at: i))")
            }
            i += 1
        }
        lastSection += 1
        section = lastSection
        var table = root
        for part in parts.dropLast() {
            table = try table.headerChild(part.name, at: position(part.offset), section: section)
        }
        let last = parts[parts.count - 1]
        if isArray {
            current = try table.appendArrayElement(
                last.name, keyPosition: position(last.offset), headerPosition: position(start), section: section)
        } else {
            current = try table.defineTable(
                last.name, keyPosition: position(last.offset), headerPosition: position(start), section: section)
        }
    }

    /// After a key/value pair or header: optional whitespace and comment, then a newline or the end.
    private mutating func endOfLine(after what: String?) throws(TOMLError) {
        skipWhitespace()
        if cur == .hash { try skipComment() }
        guard let c = cur else { return }
        if c == .lf {
            i += 1
            return
        }
        if c == .cr {
            guard byte(at: i + 1) == .lf else {
                throw fail(at: i, "a carriage return must be followed by a newline")
            }
            i += 2
            return
        }
        var message = "expected the end of the line after \(what ?? "the comment"), found \(found(at: i))"
        if c == .semicolon || c == .comma {
            message += "; TOML takes one key = value per line"
        }
        throw fail(at: i, message)
    }

    // MARK: Keys

    private struct KeyPart {
        var name: String
        var offset: Int
    }

    /// A simple or dotted key, with the whitespace around it.
    private mutating func parseKey() throws(TOMLError) -> [KeyPart] {
        var parts: [KeyPart] = []
        while true {
            skipWhitespace()
            parts.append(try parseSimpleKey())
            guard parts.count <= Self.maxKeyParts else {
                throw fail(at: parts[parts.count - 1].offset, "a dotted key may have at most \(Self.maxKeyParts) parts")
            }
            skipWhitespace()
            guard cur == .dot else { return parts }
            i += 1
        }
    }

    private mutating func parseSimpleKey() throws(TOMLError) -> KeyPart {
        let start = i
        guard let c = cur else { throw fail(at: i, "expected a key, found end of file") }
        if TOMLKey.isBareKeyByte(c) {
            while let c = cur, TOMLKey.isBareKeyByte(c) { i += 1 }
            return KeyPart(name: String(decoding: b[start..<i], as: UTF8.self), offset: start)
        }
        if c == .quote || c == .apostrophe {
            if byte(at: i + 1) == c && byte(at: i + 2) == c {
                throw fail(at: i, "a key cannot be a multi-line string")
            }
            let name = c == .quote ? try parseBasicString() : try parseLiteralString()
            return KeyPart(name: name, offset: start)
        }
        throw fail(at: i, "expected a key, found \(found(at: i))")
    }

    // MARK: Values

    private mutating func parseValue(depth: Int, path: [String]) throws(TOMLError) -> TOMLValue {
        let start = i
        let at = position(start)
        guard let c = cur else { throw fail(at: i, "expected a value, found end of file") }
        switch c {
        case .quote:
            let isMultiLine = byte(at: i + 1) == .quote && byte(at: i + 2) == .quote
            return TOMLValue(.string(isMultiLine ? try parseMultiLineBasicString() : try parseBasicString()), at: at)
        case .apostrophe:
            let isMultiLine = byte(at: i + 1) == .apostrophe && byte(at: i + 2) == .apostrophe
            return TOMLValue(
                .string(isMultiLine ? try parseMultiLineLiteralString() : try parseLiteralString()), at: at)
        case .lbracket:
            return try parseArray(depth: depth, path: path)
        case .lbrace:
            return try parseInlineTable(depth: depth, path: path)
        case .plus, .minus, UInt8(ascii: "0")...UInt8(ascii: "9"):
            return TOMLValue(.integer(try parseNumber()), at: at)
        default:
            if TOMLKey.isBareKeyByte(c) {
                while let c = cur, TOMLKey.isBareKeyByte(c) { i += 1 }
                let word = String(decoding: b[start..<i], as: UTF8.self)
                switch word {
                case "true": return TOMLValue(.boolean(true), at: at)
                case "false": return TOMLValue(.boolean(false), at: at)
                case "inf", "nan":
                    throw fail(at: start, "floating-point numbers are not supported; use an integer")
                default:
                    throw fail(
                        at: start,
                        "expected a value, found \(word); a string needs quotes: \(TOMLValue.quoted(word))")
                }
            }
            throw fail(at: start, "expected a value, found \(found(at: start))")
        }
    }

    private mutating func parseArray(depth: Int, path: [String]) throws(TOMLError) -> TOMLValue {
        let start = i
        guard depth < TOMLTableNode.maxDepth else {
            throw fail(at: start, "arrays and tables are nested more than \(TOMLTableNode.maxDepth) levels deep")
        }
        i += 1
        var items: [TOMLValue] = []
        while true {
            try skipWhitespaceCommentsAndNewlines()
            if cur == .rbracket {
                i += 1
                break
            }
            if cur == nil {
                throw fail(at: i, "unterminated array: the '[' at \(position(start)) is never closed")
            }
            items.append(try parseValue(depth: depth + 1, path: path))
            try skipWhitespaceCommentsAndNewlines()
            switch cur {
            case .comma:
                i += 1
            case .rbracket:
                i += 1
                return TOMLValue(.array(items), at: position(start))
            case nil:
                throw fail(at: i, "unterminated array: the '[' at \(position(start)) is never closed")
            default:
                throw fail(at: i, "expected ',' or ']' in the array, found \(found(at: i))")
            }
        }
        return TOMLValue(.array(items), at: position(start))
    }

    private mutating func parseInlineTable(depth: Int, path: [String]) throws(TOMLError) -> TOMLValue {
        let start = i
        guard depth < TOMLTableNode.maxDepth else {
            throw fail(at: start, "arrays and tables are nested more than \(TOMLTableNode.maxDepth) levels deep")
        }
        i += 1
        lastSection += 1
        let node = TOMLTableNode(
            origin: .inline, position: position(start), section: lastSection, path: path, depth: depth + 1)
        skipWhitespace()
        if cur == .rbrace {
            i += 1
            return TOMLValue(.table(node.build()), at: position(start))
        }
        while true {
            skipWhitespace()
            try parseKeyValue(into: node, section: node.section)
            skipWhitespace()
            switch cur {
            case .comma:
                i += 1
                skipWhitespace()
                if cur == .rbrace {
                    throw fail(at: i, "a trailing comma is not allowed in an inline table")
                }
                if cur == .lf || cur == .cr || cur == nil {
                    throw fail(
                        at: i,
                        "an inline table must end on the line it starts: the '{' at \(position(start)) is not closed")
                }
            case .rbrace:
                i += 1
                return TOMLValue(.table(node.build()), at: position(start))
            case .lf, .cr, nil:
                throw fail(
                    at: i,
                    "an inline table must end on the line it starts: the '{' at \(position(start)) is not closed")
            default:
                throw fail(at: i, "expected ',' or '}' in the inline table, found \(found(at: i))")
            }
        }
    }

    // MARK: Numbers

    private mutating func parseNumber() throws(TOMLError) -> Int64 {
        let start = i
        while let c = cur, Self.isNumberTokenByte(c) { i += 1 }
        let token = Array(b[start..<i])
        let text = String(decoding: token, as: UTF8.self)
        if Self.looksLikeDateOrTime(token) {
            throw fail(at: start, "dates and times are not supported; write \(TOMLValue.quoted(text)) as a string")
        }
        var digits = token[...]
        var negative = false
        var signed = false
        if let first = digits.first, first == .plus || first == .minus {
            negative = first == .minus
            signed = true
            digits = digits.dropFirst()
        }
        var radix: UInt64 = 10
        if digits.count >= 2, digits.first == UInt8(ascii: "0") {
            switch digits[digits.startIndex + 1] {
            case UInt8(ascii: "x"): radix = 16
            case UInt8(ascii: "o"): radix = 8
            case UInt8(ascii: "b"): radix = 2
            default: break
            }
            if radix != 10 {
                if signed {
                    throw fail(at: start, "\(text): a sign is not allowed on a hexadecimal, octal or binary integer")
                }
                digits = digits.dropFirst(2)
            }
        }
        if radix == 10 {
            let isFloat =
                digits.contains(.dot) || digits.contains(UInt8(ascii: "e")) || digits.contains(UInt8(ascii: "E"))
                || digits.elementsEqual("inf".utf8) || digits.elementsEqual("nan".utf8)
            if isFloat {
                throw fail(at: start, "floating-point numbers are not supported; use an integer")
            }
            if digits.count > 1, digits.first == UInt8(ascii: "0"),
                Self.digit(digits[digits.startIndex + 1], radix: 10) != nil
                    || digits[digits.startIndex + 1] == .underscore
            {
                throw fail(
                    at: start,
                    "\(text): leading zeros are not allowed in a decimal integer (an octal integer is written 0o660)")
            }
        }
        guard !digits.isEmpty else { throw fail(at: start, "\(text) is not a number: it has no digits") }
        var magnitude: UInt64 = 0
        var previousWasDigit = false
        for (k, c) in zip(digits.indices, digits) {
            if c == .underscore {
                let next = k + 1 < digits.endIndex ? digits[k + 1] : nil
                guard previousWasDigit, let next, Self.digit(next, radix: radix) != nil else {
                    throw fail(at: start, "\(text): an underscore in a number must be between two digits")
                }
                previousWasDigit = false
                continue
            }
            guard let d = Self.digit(c, radix: radix) else {
                throw fail(at: start, "\(text) is not an integer: '\(Self.printable(c))' is not a base-\(radix) digit")
            }
            let (times, o1) = magnitude.multipliedReportingOverflow(by: radix)
            let (sum, o2) = times.addingReportingOverflow(d)
            guard !o1, !o2 else { throw fail(at: start, "\(text) does not fit in a 64-bit integer") }
            magnitude = sum
            previousWasDigit = true
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else {
                throw fail(at: start, "\(text) does not fit in a 64-bit integer")
            }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else {
            throw fail(at: start, "\(text) does not fit in a 64-bit integer")
        }
        return Int64(magnitude)
    }

    private static func isNumberTokenByte(_ c: UInt8) -> Bool {
        TOMLKey.isBareKeyByte(c) || c == .plus || c == .dot || c == .colon
    }

    /// `1979-05-27...` or `07:32:00...`.
    private static func looksLikeDateOrTime(_ t: [UInt8]) -> Bool {
        func digits(_ r: Range<Int>) -> Bool {
            r.upperBound <= t.count && t[r].allSatisfy { digit($0, radix: 10) != nil }
        }
        return (digits(0..<4) && t.count > 4 && t[4] == .minus) || (digits(0..<2) && t.count > 2 && t[2] == .colon)
    }

    private static func digit(_ c: UInt8, radix: UInt64) -> UInt64? {
        let v: UInt64
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt64(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = UInt64(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = UInt64(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
        return v < radix ? v : nil
    }

    // MARK: Strings

    private mutating func parseBasicString() throws(TOMLError) -> String {
        let start = i
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = cur else { throw fail(at: start, "unterminated string: the closing '\"' is missing") }
            switch c {
            case .quote:
                i += 1
                return String(decoding: out, as: UTF8.self)
            case .backslash:
                try parseEscape(into: &out)
            case .lf, .cr:
                throw fail(
                    at: start,
                    "unterminated string: a \"basic string\" ends on the line it starts (\"\"\" starts a multi-line one)"
                )
            default:
                try checkNotControl(c, in: "a string")
                out.append(c)
                i += 1
            }
        }
    }

    private mutating func parseMultiLineBasicString() throws(TOMLError) -> String {
        let start = i
        i += 3
        skipNewlineAfterOpeningDelimiter()
        var out: [UInt8] = []
        while true {
            guard let c = cur else { throw fail(at: start, "unterminated string: the closing \"\"\" is missing") }
            switch c {
            case .quote:
                if try closesMultiLine(.quote, into: &out) { return String(decoding: out, as: UTF8.self) }
            case .backslash:
                var j = i + 1
                while let s = byte(at: j), s == .space || s == .tab { j += 1 }
                if byte(at: j) == .lf || (byte(at: j) == .cr && byte(at: j + 1) == .lf) {
                    // A line-ending backslash: drop it, and all whitespace and newlines after it.
                    i = j
                    while let s = cur {
                        if s == .space || s == .tab || s == .lf {
                            i += 1
                        } else if s == .cr && byte(at: i + 1) == .lf {
                            i += 2
                        } else {
                            break
                        }
                    }
                } else {
                    try parseEscape(into: &out)
                }
            default:
                try appendMultiLineByte(c, into: &out)
            }
        }
    }

    private mutating func parseLiteralString() throws(TOMLError) -> String {
        let start = i
        i += 1
        let contentStart = i
        while true {
            guard let c = cur else { throw fail(at: start, "unterminated string: the closing \"'\" is missing") }
            switch c {
            case .apostrophe:
                i += 1
                return String(decoding: b[contentStart..<(i - 1)], as: UTF8.self)
            case .lf, .cr:
                throw fail(
                    at: start,
                    "unterminated string: a 'literal string' ends on the line it starts (''' starts a multi-line one)")
            default:
                try checkNotControl(c, in: "a string")
                i += 1
            }
        }
    }

    private mutating func parseMultiLineLiteralString() throws(TOMLError) -> String {
        let start = i
        i += 3
        skipNewlineAfterOpeningDelimiter()
        var out: [UInt8] = []
        while true {
            guard let c = cur else { throw fail(at: start, "unterminated string: the closing ''' is missing") }
            if c == .apostrophe {
                if try closesMultiLine(.apostrophe, into: &out) { return String(decoding: out, as: UTF8.self) }
            } else {
                try appendMultiLineByte(c, into: &out)
            }
        }
    }

    private mutating func skipNewlineAfterOpeningDelimiter() {
        if cur == .lf {
            i += 1
        } else if cur == .cr && byte(at: i + 1) == .lf {
            i += 2
        }
    }

    /// At a run of `quote`s inside a multi-line string: three to five end it
    /// (up to two belong to the content), fewer are content, more are an error.
    private mutating func closesMultiLine(_ quote: UInt8, into out: inout [UInt8]) throws(TOMLError) -> Bool {
        var n = 0
        while byte(at: i + n) == quote { n += 1 }
        if n > 5 {
            throw fail(at: i, "too many quotes in a row in a multi-line string; escape some of them")
        }
        let contentQuotes = n >= 3 ? n - 3 : n
        out.append(contentsOf: repeatElement(quote, count: contentQuotes))
        i += n
        return n >= 3
    }

    private mutating func appendMultiLineByte(_ c: UInt8, into out: inout [UInt8]) throws(TOMLError) {
        if c == .cr {
            guard byte(at: i + 1) == .lf else {
                throw fail(at: i, "a carriage return must be followed by a newline")
            }
            out.append(.lf)
            i += 2
            return
        }
        if c != .lf { try checkNotControl(c, in: "a string") }
        out.append(c)
        i += 1
    }

    /// At a backslash in a basic string.
    private mutating func parseEscape(into out: inout [UInt8]) throws(TOMLError) {
        let start = i
        guard let e = byte(at: i + 1) else { throw fail(at: start, "unterminated string: it ends in a backslash") }
        i += 2
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(.tab)
        case UInt8(ascii: "n"): out.append(.lf)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(.cr)
        case .quote: out.append(.quote)
        case .backslash: out.append(.backslash)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = e == UInt8(ascii: "u") ? 4 : 8
            var v: UInt32 = 0
            for k in 0..<count {
                guard let c = byte(at: i + k), let d = Self.digit(c, radix: 16) else {
                    throw fail(
                        at: start, "invalid escape: \\\(Self.printable(e)) must be followed by \(count) hex digits")
                }
                v = v << 4 | UInt32(d)
            }
            guard let scalar = Unicode.Scalar(v) else {
                throw fail(
                    at: start,
                    "invalid escape: U+\(hexString(v, width: 4).uppercased()) is not a Unicode scalar value")
            }
            i += count
            UTF8.encode(scalar) { out.append($0) }
        default:
            throw fail(
                at: start,
                "invalid escape \\\(Self.printable(e)); TOML knows \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX and \\UXXXXXXXX"
            )
        }
    }

    private func checkNotControl(_ c: UInt8, in what: String) throws(TOMLError) {
        if (c < 0x20 && c != .tab) || c == 0x7F {
            throw fail(
                at: i,
                "control character U+\(hexString(c, width: 4).uppercased()) is not allowed in \(what); escape it")
        }
    }

    // MARK: Whitespace and comments

    private mutating func skipWhitespace() {
        while let c = cur, c == .space || c == .tab { i += 1 }
    }

    /// At '#': up to, not including, the end of the line.
    private mutating func skipComment() throws(TOMLError) {
        i += 1
        while let c = cur, c != .lf {
            if c == .cr && byte(at: i + 1) == .lf { break }
            try checkNotControl(c, in: "a comment")
            i += 1
        }
    }

    private mutating func skipWhitespaceCommentsAndNewlines() throws(TOMLError) {
        while let c = cur {
            switch c {
            case .space, .tab, .lf:
                i += 1
            case .cr:
                guard byte(at: i + 1) == .lf else {
                    throw fail(at: i, "a carriage return must be followed by a newline")
                }
                i += 2
            case .hash:
                try skipComment()
            default:
                return
            }
        }
    }

    // MARK: Positions and messages

    private var cur: UInt8? { i < b.count ? b[i] : nil }

    private func byte(at k: Int) -> UInt8? { k >= 0 && k < b.count ? b[k] : nil }

    private func position(_ offset: Int) -> TOMLPosition {
        var lo = 0
        var hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        var column = 1
        var k = lineStarts[lo]
        let end = min(offset, b.count)
        while k < end {
            if b[k] & 0xC0 != 0x80 { column += 1 }
            k += 1
        }
        return TOMLPosition(line: lo + 1, column: column)
    }

    private func fail(at offset: Int, key: String? = nil, _ message: String) -> TOMLError {
        TOMLError(at: position(offset), key: key, message)
    }

    /// The character at `offset`, as a message shows it.
    private func found(at offset: Int) -> String {
        guard let c = byte(at: offset) else { return "end of file" }
        switch c {
        case .lf, .cr: return "end of line"
        case .space: return "a space"
        case .tab: return "a tab"
        case 0x21...0x7E: return "'\(Self.printable(c))'"
        case 0x00..<0x20, 0x7F: return "control character U+\(hexString(c, width: 4).uppercased())"
        default:
            let tail = b[offset..<min(offset + 4, b.count)]
            guard let scalar = String(decoding: tail, as: UTF8.self).unicodeScalars.first else { return "end of file" }
            return "'\(scalar)' (U+\(hexString(scalar.value, width: 4).uppercased()))"
        }
    }

    private static func printable(_ c: UInt8) -> String {
        (0x21...0x7E).contains(c) ? String(UnicodeScalar(c)) : "\\u{\(hexString(c, width: 2))}"
    }

    /// The offset of the first byte that does not start a valid UTF-8 sequence.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}

extension UInt8 {
    fileprivate static let tab = UInt8(ascii: "\t")
    fileprivate static let lf = UInt8(ascii: "\n")
    fileprivate static let cr = UInt8(ascii: "\r")
    fileprivate static let space = UInt8(ascii: " ")
    fileprivate static let quote = UInt8(ascii: "\"")
    fileprivate static let apostrophe = UInt8(ascii: "'")
    fileprivate static let backslash = UInt8(ascii: "\\")
    fileprivate static let hash = UInt8(ascii: "#")
    fileprivate static let equals = UInt8(ascii: "=")
    fileprivate static let dot = UInt8(ascii: ".")
    fileprivate static let comma = UInt8(ascii: ",")
    fileprivate static let colon = UInt8(ascii: ":")
    fileprivate static let semicolon = UInt8(ascii: ";")
    fileprivate static let plus = UInt8(ascii: "+")
    fileprivate static let minus = UInt8(ascii: "-")
    fileprivate static let underscore = UInt8(ascii: "_")
    fileprivate static let lbracket = UInt8(ascii: "[")
    fileprivate static let rbracket = UInt8(ascii: "]")
    fileprivate static let lbrace = UInt8(ascii: "{")
    fileprivate static let rbrace = UInt8(ascii: "}")
}
