import Testing

@testable import SRIOVCore

/// Arbitrary input never crashes the parser, and every error it reports
/// points inside the input.
@Suite struct TOMLFuzzTests {
    /// SplitMix64: small, fast, and the same sequence on every platform.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let sample = """
        # sample
        [daemon]
        socket = "/run/sriovd/sriovd.sock"
        socket_mode = "0660"
        [[pf]]
        pci = "0000:01:00.0"
        num_vfs = 4
        labels = { a = "b", "c d" = 'e' }
          [pf.vf_defaults]
          vlan = 0x10
          list = [ 1, 2,
            3, ] # comment
          text = \"\"\"
        multi \\
          line\"\"\"
        [[pf.pool]]
        name = 'x'
        a.b.c = -1_000
        """

    static let fragments: [String] = [
        "[", "]", "[[", "]]", "{", "}", "=", "\"", "'", "\"\"\"", "'''", "\\", ".", ",", "#", "\n", "\r\n", "\r",
        " ", "\t", "a", "pf", "key", "1", "0x", "0o7", "0b1", "_", "-", "+", "true", "false", "1.5", "1979-05-27",
        "\\u00e9", "\\U0010FFFF", "\\uD800", "é", "\u{0}", "\u{7F}", "🙂", "inf", "nan", "e", ":", "= \"v\"\n",
    ]

    /// The error's position lies inside `bytes` (the end of the input counts).
    private func checkPosition(_ error: TOMLError, in bytes: [UInt8]) {
        let lines = bytes.count { $0 == UInt8(ascii: "\n") } + 1
        let longest =
            bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(\.count).max() ?? 0
        #expect(error.line >= 1 && error.line <= lines, "\(error)")
        #expect(error.column >= 1 && error.column <= longest + 1, "\(error)")
    }

    @discardableResult
    private func parse(_ bytes: [UInt8]) -> TOMLError? {
        do {
            _ = try TOML.parse(utf8: bytes)
            return nil
        } catch {
            checkPosition(error, in: bytes)
            return error
        }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SeededGenerator(state: 1)
        for _ in 0..<2000 {
            let count = Int.random(in: 0...48, using: &rng)
            parse((0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }

    @Test func randomTokenSoupNeverCrashes() {
        var rng = SeededGenerator(state: 2)
        var accepted = 0
        for _ in 0..<3000 {
            let count = Int.random(in: 0...24, using: &rng)
            let text = (0..<count).map { _ in Self.fragments.randomElement(using: &rng)! }.joined()
            if parse(Array(text.utf8)) == nil { accepted += 1 }
        }
        // The generator reaches the accepting paths too, not only the first error.
        #expect(accepted > 50)
    }

    @Test func mutatedDocumentsNeverCrash() throws {
        let original = Array(Self.sample.utf8)
        _ = try TOML.parse(utf8: original)
        var rng = SeededGenerator(state: 3)
        var refused = 0
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                guard !bytes.isEmpty else { break }
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(contentsOf: Self.fragments.randomElement(using: &rng)!.utf8, at: at)
                case 3: bytes.removeSubrange(at..<bytes.count)
                default: bytes.insert(bytes[Int.random(in: 0..<bytes.count, using: &rng)], at: at)
                }
            }
            if parse(bytes) != nil { refused += 1 }
        }
        #expect(refused > 1000)
    }
}
