import Testing

@testable import SRIOVCore

/// What the parser refuses, and that it says where and why.
@Suite struct TOMLErrorTests {
    /// The error `text` is refused with.
    private func error(_ text: String) -> TOMLError? {
        do {
            _ = try TOML.parse(text)
            return nil
        } catch {
            return error
        }
    }

    private func expectError(
        _ text: String, line: Int, column: Int, key: String? = nil, containing words: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let e = error(text) else {
            Issue.record("accepted: \(text)", sourceLocation: sourceLocation)
            return
        }
        #expect(e.line == line, "\(e)", sourceLocation: sourceLocation)
        #expect(e.column == column, "\(e)", sourceLocation: sourceLocation)
        if let key { #expect(e.key == key, "\(e)", sourceLocation: sourceLocation) }
        #expect(e.message.contains(words), "\(e)", sourceLocation: sourceLocation)
    }

    @Test func duplicateKeysAreRefusedAtTheSecondDefinition() {
        expectError("a = 1\nb = 2\na = 3", line: 3, column: 1, key: "a", containing: "duplicate key")
        expectError("[t]\nx.y = 1\n  x.y = 2", line: 3, column: 5, key: "t.x.y", containing: "line 2")
        expectError("t = { a = 1, a = 2 }", line: 1, column: 14, key: "t.a", containing: "duplicate key")
        expectError("a = 1\na.b = 2", line: 2, column: 1, key: "a", containing: "already an integer (line 1)")
    }

    @Test func redefinedTablesAreRefused() {
        expectError("[a]\nx = 1\n[b]\n[a]", line: 4, column: 2, key: "a", containing: "table defined twice")
        expectError("[a.b]\n[a]\n[a]", line: 3, column: 2, key: "a", containing: "line 2")
        expectError("[a]\nb.c = 1\n[a.b]", line: 3, column: 4, key: "a.b", containing: "dotted key")
        expectError("[[a]]\n[a]", line: 2, column: 2, key: "a", containing: "use [[a]]")
        expectError("[a]\n[[a]]", line: 2, column: 3, key: "a", containing: "cannot be an array of tables")
    }

    @Test func dottedKeysCannotReachIntoTablesDefinedElsewhere() {
        expectError("[a.b.c]\nz = 9\n[a]\nb.c.t = 1", line: 4, column: 1, key: "a.b", containing: "dotted key")
        expectError("[[p]]\n[x]\n[p]\n", line: 3, column: 2, key: "p", containing: "array of tables")
    }

    @Test func inlineTablesAndStaticArraysCannotBeExtended() {
        expectError("a = { x = 1 }\n[a]", line: 2, column: 2, key: "a", containing: "inline table")
        expectError("a = { x = 1 }\na.y = 2", line: 2, column: 1, key: "a", containing: "inline table")
        expectError("a = { x = 1 }\n[a.b]", line: 2, column: 2, key: "a", containing: "inline table")
        expectError("a = []\n[[a]]", line: 2, column: 3, key: "a", containing: "already an array")
    }

    @Test func unsupportedTypesAreNamed() {
        expectError("x = 1.5", line: 1, column: 5, containing: "floating-point numbers are not supported")
        expectError("x = 1e3", line: 1, column: 5, containing: "floating-point")
        expectError("x = -inf", line: 1, column: 5, containing: "floating-point")
        expectError("x = nan", line: 1, column: 5, containing: "floating-point")
        expectError("x = 1979-05-27", line: 1, column: 5, containing: "dates and times are not supported")
        expectError("x = 1979-05-27T07:32:00Z", line: 1, column: 5, containing: "dates and times")
        expectError("x = 07:32:00", line: 1, column: 5, containing: "dates and times")
    }

    @Test func malformedIntegersAreRefused() {
        expectError("x = 0660", line: 1, column: 5, containing: "leading zeros")
        expectError("x = 0_1", line: 1, column: 5, containing: "leading zeros")
        expectError("x = 1__000", line: 1, column: 5, containing: "underscore")
        expectError("x = 1_", line: 1, column: 5, containing: "underscore")
        expectError("x = 0x_1", line: 1, column: 5, containing: "underscore")
        expectError("x = +0x10", line: 1, column: 5, containing: "sign")
        expectError("x = 0x", line: 1, column: 5, containing: "no digits")
        expectError("x = 0o8", line: 1, column: 5, containing: "base-8 digit")
        expectError("x = 12abc", line: 1, column: 5, containing: "base-10 digit")
        expectError("x = 9223372036854775808", line: 1, column: 5, containing: "64-bit")
        expectError("x = -9223372036854775809", line: 1, column: 5, containing: "64-bit")
        expectError("x = 0xFFFFFFFFFFFFFFFF", line: 1, column: 5, containing: "64-bit")
    }

    @Test func malformedStringsAreRefused() {
        expectError("s = \"open\nt = 1", line: 1, column: 5, containing: "unterminated string")
        expectError("s = 'open", line: 1, column: 5, containing: "unterminated string")
        expectError("s = \"\"\"open\n\n", line: 1, column: 5, containing: "\"\"\" is missing")
        expectError(#"s = "bad \x41""#, line: 1, column: 10, containing: #"invalid escape \x"#)
        expectError(#"s = "\uD800""#, line: 1, column: 6, containing: "not a Unicode scalar")
        expectError(#"s = "\u12""#, line: 1, column: 6, containing: "4 hex digits")
        expectError("s = \"a\u{1}b\"", line: 1, column: 7, containing: "control character U+0001")
        expectError("s = \"\"\"a\"\"\"\"\"\"\"", line: 1, column: 9, containing: "too many quotes")
        expectError("\"\"\"k\"\"\" = 1", line: 1, column: 1, containing: "multi-line")
    }

    @Test func valuesMustBeValues() {
        expectError("num_vfs = seven", line: 1, column: 11, containing: #"a string needs quotes: "seven""#)
        expectError("x =", line: 1, column: 4, key: "x", containing: "expected a value after '='")
        expectError("x = # nothing", line: 1, column: 5, containing: "expected a value")
        expectError("x = @", line: 1, column: 5, containing: "'@'")
        expectError("x = truely", line: 1, column: 5, containing: "needs quotes")
    }

    @Test func oneKeyValuePerLine() {
        expectError("vlan = 0 ; qos = 0", line: 1, column: 10, containing: "one key = value per line")
        expectError("a = 1 b = 2", line: 1, column: 7, containing: "end of the line")
        expectError("[t] x = 1", line: 1, column: 5, containing: "after the table header")
        expectError("a b = 1", line: 1, column: 3, containing: "expected '='")
        expectError("= 1", line: 1, column: 1, containing: "expected a key")
        expectError("a. = 1", line: 1, column: 4, containing: "expected a key")
    }

    @Test func malformedArraysAndInlineTablesAreRefused() {
        expectError("a = [1, 2", line: 1, column: 10, containing: "unterminated array")
        expectError("a = [1 2]", line: 1, column: 8, containing: "expected ',' or ']'")
        expectError("a = [,]", line: 1, column: 6, containing: "expected a value")
        expectError("a = [1,,2]", line: 1, column: 8, containing: "expected a value")
        expectError("t = { a = 1, }", line: 1, column: 14, containing: "trailing comma")
        expectError("t = { a = 1,\n b = 2 }", line: 1, column: 13, containing: "end on the line it starts")
        expectError("t = { a = 1 b = 2 }", line: 1, column: 13, containing: "expected ',' or '}'")
    }

    @Test func malformedHeadersAreRefused() {
        expectError("[a", line: 1, column: 3, containing: "expected ']'")
        expectError("[[a]", line: 1, column: 5, containing: "']]'")
        expectError("[[a] ]", line: 1, column: 5, containing: "']]'")
        expectError("[]", line: 1, column: 2, containing: "expected a key")
        expectError("[ [a]]", line: 1, column: 3, containing: "expected a key")
    }

    @Test func encodingAndControlCharactersAreChecked() {
        do {
            _ = try TOML.parse(utf8: Array("a = 1\nb = \"".utf8) + [0xC3, 0x28] + Array("\"".utf8))
            Issue.record("invalid UTF-8 accepted")
        } catch {
            #expect(error.line == 2)
            #expect(error.column == 6)
            #expect(error.message.contains("not valid UTF-8"))
        }
        expectError("\u{FEFF}a = 1", line: 1, column: 1, containing: "byte-order mark")
        expectError("# bell \u{7}\n", line: 1, column: 8, containing: "in a comment")
        expectError("a = 1\rb = 2", line: 1, column: 6, containing: "carriage return")
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        expectError("a = " + String(repeating: "[", count: 10_000), line: 1, column: 68, containing: "nested")
        let inline = "a = " + String(repeating: "{ b = ", count: 200)
        #expect(error(inline)?.message.contains("nested") == true)
        let dotted = "[" + Array(repeating: "a", count: 40).joined(separator: ".") + "]"
        #expect(error(dotted)?.message.contains("at most") == true)
    }

    @Test func descriptionIsLineColumnKeyMessage() {
        let e = TOMLError(at: TOMLPosition(line: 3, column: 7), key: "pf.num_vfs", "duplicate key")
        #expect(e.description == "3:7: pf.num_vfs: duplicate key")
        #expect(TOMLError(at: TOMLPosition(line: 1, column: 2), "x").description == "1:2: x")
    }
}
