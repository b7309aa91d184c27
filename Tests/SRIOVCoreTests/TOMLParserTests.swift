import Testing

@testable import SRIOVCore

/// What the parser accepts, and the values and positions it reads.
@Suite struct TOMLParserTests {
    @Test func emptyAndCommentOnlyDocumentsAreEmptyTables() throws {
        #expect(try TOML.parse("").isEmpty)
        #expect(try TOML.parse("# only a comment\n\n   \t\n# another").isEmpty)
    }

    @Test func readsScalarsWithTheirPositions() throws {
        let doc = try TOML.parse(
            """
            # header comment
            name = "sriovd"   # trailing comment
              count = 42
            on = true
            off = false
            """)
        #expect(doc.keys == ["name", "count", "on", "off"])
        #expect(doc["name"]?.string == "sriovd")
        #expect(doc["name"]?.position == TOMLPosition(line: 2, column: 8))
        #expect(doc.entry("name")?.keyPosition == TOMLPosition(line: 2, column: 1))
        #expect(doc["count"]?.integer == 42)
        #expect(doc["count"]?.position == TOMLPosition(line: 3, column: 11))
        #expect(doc.entry("count")?.keyPosition == TOMLPosition(line: 3, column: 3))
        #expect(doc["on"]?.boolean == true)
        #expect(doc["off"]?.boolean == false)
    }

    @Test func acceptsCRLFLineEnds() throws {
        let doc = try TOML.parse("a = 1\r\n# c\r\nb = 'x'\r\n")
        #expect(doc["a"]?.integer == 1)
        #expect(doc["b"]?.string == "x")
        #expect(doc["b"]?.position.line == 3)
    }

    @Test func readsBareQuotedAndDottedKeys() throws {
        let doc = try TOML.parse(
            """
            bare_key-1 = 1
            "quoted key" = 2
            'literal "key"' = 3
            a.b.c = 4
            a . "d e" . f = 5
            a.b.g = 6
            1234 = 7
            """)
        #expect(doc["bare_key-1"]?.integer == 1)
        #expect(doc["quoted key"]?.integer == 2)
        #expect(doc["literal \"key\""]?.integer == 3)
        let a = try #require(doc["a"]?.table)
        #expect(a.keys == ["b", "d e"])
        #expect(a["b"]?.table?["c"]?.integer == 4)
        #expect(a["b"]?.table?["g"]?.integer == 6)
        #expect(a["d e"]?.table?["f"]?.integer == 5)
        #expect(doc["1234"]?.integer == 7)
    }

    @Test func decodesBasicStringEscapes() throws {
        let doc = try TOML.parse(#"s = "tab\there\nquote\" backslash\\ \u00E9 \U0001F600 \b\f\r""#)
        #expect(doc["s"]?.string == "tab\there\nquote\" backslash\\ \u{E9} \u{1F600} \u{08}\u{0C}\r")
    }

    @Test func literalStringsKeepBackslashes() throws {
        let doc = try TOML.parse(#"path = 'C:\Users\sriov\n'"#)
        #expect(doc["path"]?.string == #"C:\Users\sriov\n"#)
    }

    @Test func readsMultiLineStrings() throws {
        let doc = try TOML.parse(
            "a = \"\"\"\nline one\n  line two\"\"\"\n"
                + "b = \"\"\"one \\\n     two \\\n\n   three\"\"\"\n"
                + "c = '''\nraw \\n ''quoted'' '''\n"
                + "d = \"\"\"ends in two quotes\"\"\"\"\"\n"
                + "e = \"\"\"crlf\r\nline\"\"\"\n")
        #expect(doc["a"]?.string == "line one\n  line two")
        #expect(doc["b"]?.string == "one two three")
        #expect(doc["c"]?.string == "raw \\n ''quoted'' ")
        #expect(doc["d"]?.string == "ends in two quotes\"\"")
        #expect(doc["e"]?.string == "crlf\nline")
        #expect(doc["b"]?.position.line == 4)
        #expect(doc.entry("c")?.keyPosition.line == 8)
    }

    @Test func readsIntegersInEveryBase() throws {
        let doc = try TOML.parse(
            """
            a = 0
            b = +17
            c = -17
            d = 1_000_000
            e = 0xDEAD_beef
            f = 0o755
            g = 0b1101
            h = 9223372036854775807
            i = -9223372036854775808
            j = -0
            """)
        #expect(doc["a"]?.integer == 0)
        #expect(doc["b"]?.integer == 17)
        #expect(doc["c"]?.integer == -17)
        #expect(doc["d"]?.integer == 1_000_000)
        #expect(doc["e"]?.integer == 0xDEAD_BEEF)
        #expect(doc["f"]?.integer == 0o755)
        #expect(doc["g"]?.integer == 0b1101)
        #expect(doc["h"]?.integer == Int64.max)
        #expect(doc["i"]?.integer == Int64.min)
        #expect(doc["j"]?.integer == 0)
    }

    @Test func readsMultiLineArraysWithCommentsAndTrailingComma() throws {
        let doc = try TOML.parse(
            """
            a = [
              1,   # one
              2,
              # a comment line
              3,
            ]
            b = []
            c = [ [1, 2], ["x", 'y'], [] ]
            d = [ "mixed", 1, true, { k = "v" } ]
            """)
        #expect(doc["a"]?.array?.compactMap(\.integer) == [1, 2, 3])
        #expect(doc["a"]?.array?[2].position == TOMLPosition(line: 5, column: 3))
        #expect(doc["b"]?.array?.isEmpty == true)
        let c = try #require(doc["c"]?.array)
        #expect(c.count == 3)
        #expect(c[1].array?.compactMap(\.string) == ["x", "y"])
        #expect(doc["d"]?.array?[3].table?["k"]?.string == "v")
    }

    @Test func readsInlineTables() throws {
        let doc = try TOML.parse(
            """
            labels = { physical_network = "physnet1", "rack id" = "r7" }
            empty = {}
            nested = { a = { b = 1 }, c.d = 2, c.e = 3 }
            """)
        let labels = try #require(doc["labels"]?.table)
        #expect(labels.keys == ["physical_network", "rack id"])
        #expect(labels["rack id"]?.string == "r7")
        #expect(labels.position == TOMLPosition(line: 1, column: 10))
        #expect(doc["empty"]?.table?.isEmpty == true)
        let nested = try #require(doc["nested"]?.table)
        #expect(nested["a"]?.table?["b"]?.integer == 1)
        #expect(nested["c"]?.table?["d"]?.integer == 2)
        #expect(nested["c"]?.table?["e"]?.integer == 3)
    }

    @Test func readsTablesAndSubTables() throws {
        let doc = try TOML.parse(
            """
            top = 1
            [daemon]
            socket = "/run/x.sock"

            [a.b.c]
            x = 1
            [a]        # defining a super-table after its sub-table is allowed
            y = 2
            [ a . b . d ]
            z = 3
            """)
        #expect(doc.keys == ["top", "daemon", "a"])
        let daemon = try #require(doc["daemon"]?.table)
        #expect(daemon["socket"]?.string == "/run/x.sock")
        #expect(daemon.position == TOMLPosition(line: 2, column: 1))
        let a = try #require(doc["a"]?.table)
        #expect(a["y"]?.integer == 2)
        #expect(a.position.line == 7)
        #expect(a["b"]?.table?["c"]?.table?["x"]?.integer == 1)
        #expect(a["b"]?.table?["d"]?.table?["z"]?.integer == 3)
    }

    @Test func readsArraysOfTablesWithSubTables() throws {
        let doc = try TOML.parse(
            """
            [[pf]]
            pci = "0000:01:00.0"
              [pf.vf_defaults]
              trust = false
              [[pf.pool]]
              name = "a"
              [[pf.pool]]
              name = "b"

            [[pf]]
            pci = "0000:02:00.0"
              [[pf.pool]]
              name = "c"
            """)
        let pfs = try #require(doc["pf"]?.array)
        #expect(pfs.count == 2)
        #expect(doc["pf"]?.position.line == 1)
        #expect(pfs[1].position.line == 10)
        let first = try #require(pfs[0].table)
        #expect(first["vf_defaults"]?.table?["trust"]?.boolean == false)
        #expect(first["pool"]?.array?.compactMap { $0.table?["name"]?.string } == ["a", "b"])
        #expect(pfs[1].table?["pool"]?.array?.compactMap { $0.table?["name"]?.string } == ["c"])
        #expect(pfs[1].table?["vf_defaults"] == nil)
    }

    @Test func dottedKeysMayExtendTheirOwnTablesAndHeadersMayAddSubTables() throws {
        let doc = try TOML.parse(
            """
            [fruit]
            apple.color = "red"
            inline = { x = 1 }
            apple.taste.sweet = true
            [fruit.apple.texture]
            smooth = true
            """)
        let apple = try #require(doc["fruit"]?.table?["apple"]?.table)
        #expect(apple["color"]?.string == "red")
        #expect(apple["taste"]?.table?["sweet"]?.boolean == true)
        #expect(apple["texture"]?.table?["smooth"]?.boolean == true)
    }

    @Test func columnsCountCharactersNotBytes() throws {
        let doc = try TOML.parse("\"ééé\" = 1\nx = \"é\" # é\ny = 2")
        #expect(doc["ééé"]?.position == TOMLPosition(line: 1, column: 9))
        #expect(doc["y"]?.position == TOMLPosition(line: 3, column: 5))
    }

    @Test func summariesQuoteAndShortenStrings() {
        let at = TOMLPosition(line: 1, column: 1)
        #expect(TOMLValue(.string("seven"), at: at).summary == #"string "seven""#)
        #expect(TOMLValue(.string("a\u{1}\"b"), at: at).summary == #"string "a\u0001\"b""#)
        #expect(TOMLValue(.string(String(repeating: "x", count: 100)), at: at).summary.count < 60)
        #expect(TOMLValue(.integer(7), at: at).summary == "integer 7")
        #expect(TOMLKey.display(["labels", "rack id", "x"]) == #"labels."rack id".x"#)
    }
}
