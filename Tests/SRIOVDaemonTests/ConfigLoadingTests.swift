import Foundation
import Testing

@testable import SRIOVDaemon

/// Reading the file: what is refused before its text is even parsed, and
/// that garbage never crashes the reader.
@Suite struct ConfigLoadingTests {
    /// A fresh directory, removed after `body`.
    private func withTemporaryDirectory(_ body: (URL) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try body(dir)
    }

    private func write(_ bytes: [UInt8], to url: URL, mode: Int = 0o644) throws {
        try Data(bytes).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
    }

    private func loadErrors(_ path: String) -> [ConfigurationError] {
        do {
            _ = try SRIOVConfiguration.load(path: path)
            return []
        } catch {
            return error.errors
        }
    }

    @Test func loadsAFileAndNamesItInErrors() throws {
        try withTemporaryDirectory { dir in
            let good = dir.appendingPathComponent("good.toml")
            try write(Array("[daemon]\nlog_level = \"debug\"\n".utf8), to: good)
            #expect(try SRIOVConfiguration.load(path: good.path).daemon.logLevel == .debug)

            let bad = dir.appendingPathComponent("bad.toml")
            try write(Array("[daemon]\nlog_level = 3\n".utf8), to: bad)
            #expect(
                loadErrors(bad.path).map(\.description) == [
                    "\(bad.path):2:13: daemon.log_level: expected a string, found integer 3"
                ])
        }
    }

    @Test func aMissingFileIsAnError() {
        let errors = loadErrors("/nonexistent/sriovd.toml")
        #expect(errors.count == 1)
        #expect(errors.first?.line == nil)
        #expect(
            errors.first?.description
                == "/nonexistent/sriovd.toml: cannot open the configuration file: No such file or directory")
    }

    @Test func refusesDirectoriesAndWorldWritableFiles() throws {
        try withTemporaryDirectory { dir in
            #expect(loadErrors(dir.path).first?.message == "is not a regular file")
            let open = dir.appendingPathComponent("open.toml")
            try write([], to: open, mode: 0o666)
            #expect(loadErrors(open.path).first?.message.contains("writable by every user (mode 666)") == true)
            try FileManager.default.setAttributes([.posixPermissions: 0o664], ofItemAtPath: open.path)
            #expect(try SRIOVConfiguration.load(path: open.path) == .defaults)
        }
    }

    @Test func refusesInvalidUTF8AndOversizedFiles() throws {
        try withTemporaryDirectory { dir in
            let binary = dir.appendingPathComponent("binary.toml")
            try write(Array("# ok\n".utf8) + [0xFF, 0xFE], to: binary)
            let errors = loadErrors(binary.path)
            #expect(errors.first?.line == 2)
            #expect(errors.first?.message.contains("not valid UTF-8") == true)

            let huge = dir.appendingPathComponent("huge.toml")
            try write([UInt8](repeating: UInt8(ascii: "#"), count: SRIOVConfiguration.maxFileBytes + 1), to: huge)
            #expect(loadErrors(huge.path).first?.message.contains("at most 1 MiB") == true)
        }
    }

    @Test func mutatedConfigurationsNeverCrashAndErrorsPointIntoTheFile() throws {
        let example = ConfigExampleTests.uncommented(
            try #require(
                String(validating: try ConfigurationFile.contents(of: ConfigExampleTests.examplePath), as: UTF8.self)))
        // Without its prose the example is a quarter of the size: more mutations per second.
        let text = example.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
            .joined(separator: "\n")
        let original = Array(text.utf8)
        _ = try SRIOVConfiguration.parse(text, fileName: "x")
        let lineCount = original.count { $0 == UInt8(ascii: "\n") } + 1
        let pieces = [
            "[[pf]]\n", "[[vf]]\n", "[pf.vf_defaults]\n", "[[pf.pool]]\n", "vlan = 4095\n", "qos = 9\n", "= ",
            "\"", "0-3,", "index = 1\n", "pci = \"0000:01:00.0\"\n", "mac = \"ff:ff:ff:ff:ff:ff\"\n", "[",
        ]
        var rng = TOMLFuzzSeededGenerator(state: 4)
        var refused = 0
        for _ in 0..<1000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(contentsOf: pieces.randomElement(using: &rng)!.utf8, at: at)
                default: bytes.insert(contentsOf: bytes[at..<min(at + 40, bytes.count)], at: at)
                }
            }
            do {
                _ = try SRIOVConfiguration.parse(utf8: bytes, fileName: "x")
            } catch {
                refused += 1
                let lines = bytes.count { $0 == UInt8(ascii: "\n") } + 1
                for e in error.errors {
                    #expect(e.line.map { $0 >= 1 && $0 <= max(lines, lineCount) } == true, "\(e)")
                    #expect(!e.message.isEmpty)
                }
            }
        }
        #expect(refused > 300)
    }
}

/// SplitMix64, so a failure repeats on every run.
struct TOMLFuzzSeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
