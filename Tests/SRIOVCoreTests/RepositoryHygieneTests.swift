import Foundation
import Testing

/// The repository speaks of the product alone. It names no absolute path of
/// one particular machine (a home folder, a Python install's folders, the
/// Swift toolchain's install prefix, a workspace folder: each is found at run
/// time, Python's scripts folder from `sysconfig`, the toolchain from PATH),
/// and no word about how the work on it is organised (an issue's number, a
/// session, who leads it).
///
/// `git grep` searches the checkout: tracked files and untracked ones that
/// are not ignored, so a new file is checked before it is added. This file
/// is left out: it holds the patterns.
enum RepositoryHygiene {
    struct Rule: Sendable {
        /// A POSIX extended regular expression, matched case-insensitively.
        var pattern: String
        var why: String
    }

    /// A path starts at the beginning of a line or after a character that
    /// cannot end a folder's name (`$dir/root/etc` is a folder inside another).
    private static let pathStart = "(^|[^[:alnum:]_.$}/-])"

    static let rules: [Rule] = [
        Rule(pattern: pathStart + "/root/", why: "root's home folder: a path of one machine"),
        Rule(pattern: pathStart + "/home/[[:alnum:]_.-]+/", why: "a user's home folder: a path of one machine"),
        Rule(pattern: #"\.pyenv/"#, why: "a pyenv folder: pip's scripts folder comes from Python's sysconfig"),
        Rule(pattern: pathStart + "/opt/swift", why: "a Swift install prefix: the toolchain comes from PATH"),
        Rule(pattern: pathStart + "/work/", why: "a workspace folder of one machine"),
        Rule(pattern: #"\bissues? #?[0-9]+"#, why: "an issue's number: say what the product does instead"),
        Rule(pattern: #"\bthis session\b"#, why: "how the work was organised, not the product"),
        Rule(pattern: #"\bthe lead\b"#, why: "how the work was organised, not the product"),
        Rule(pattern: #"\bfor the issue\b"#, why: "how the work was organised, not the product"),
    ]

    /// This file, relative to the checkout: the one file not searched.
    static let ownPath = "Tests/SRIOVCoreTests/RepositoryHygieneTests.swift"

    static let checkout: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Every line that breaks a rule, as `file:line: text  <- why`.
    /// `folder` is a git checkout (searched as `git grep --untracked`
    /// without this file), or, with `checkout: false`, any folder
    /// (`git grep --no-index`).
    static func findings(in folder: URL, checkout: Bool = true) throws -> [String] {
        var findings: [String] = []
        for rule in rules {
            var arguments = ["grep", "-n", "-I", "-i", "-E", "-e", rule.pattern]
            arguments.insert(checkout ? "--untracked" : "--no-index", at: 1)
            arguments += ["--", "."]
            if checkout { arguments.append(":(exclude)\(ownPath)") }
            let (status, output) = try git(arguments, in: folder)
            // git grep: 0 found, 1 found nothing, anything else an error.
            guard status == 0 || status == 1 else {
                throw Failure(description: "git \(arguments.joined(separator: " ")) exited \(status): \(output)")
            }
            for line in output.split(separator: "\n") { findings.append("\(line)  <- \(rule.why)") }
        }
        return findings
    }

    /// The same rules over `text`, written to a file of its own in a new
    /// folder (a file is what git grep reads).
    static func findings(inText text: String) throws -> [String] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-hygiene-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try text.write(to: folder.appendingPathComponent("planted.txt"), atomically: true, encoding: .utf8)
        return try findings(in: folder, checkout: false)
    }

    private static func git(_ arguments: [String], in folder: URL) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        process.currentDirectoryURL = folder
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

@Suite("repository hygiene")
struct RepositoryHygieneTests {
    @Test("no file of the checkout names a path of one machine or how the work on it is organised")
    func checkoutIsClean() throws {
        try #require(
            FileManager.default.fileExists(atPath: RepositoryHygiene.checkout.appendingPathComponent(".git").path),
            "not a git checkout: \(RepositoryHygiene.checkout.path)")
        let findings = try RepositoryHygiene.findings(in: RepositoryHygiene.checkout)
        #expect(findings.isEmpty, "\(findings.count) finding(s):\n\(findings.joined(separator: "\n"))")
    }

    @Test(
        "each rule finds what it is for in a file",
        arguments: [
            // Assembled from pieces so that this file itself names no such path.
            "PATH=\"$PATH:/" + "root/.pyenv/shims\"", "the toolchain in /" + "opt/swift/usr/bin", "cd /" + "work/main && swift build",
            "dirs + [\"/" + "home/alice/bin\"]", "Goals (issue 11): under 30 MB", "after this session's changes",
            "as the lead asked", "## Release build (the figures for the issue)", "see Issue #12",
        ])
    func plantedLineIsFound(_ line: String) throws {
        let findings = try RepositoryHygiene.findings(inText: "fine text\n" + line + "\n")
        #expect(!findings.isEmpty, "not found: \(line)")
        #expect(findings.allSatisfy { $0.hasPrefix("planted.txt:2:") }, "\(findings)")
    }

    @Test(
        "what only looks like one is left alone",
        arguments: [
            #"dpkg-deb -x "$deb" "$work/root/etc""#, #"dir + "root/usr/sbin/sriovd""#, "$HOME/.local/bin",
            "a tissue 5 mm thick", "the issue itself is checked by a probe", "the leading VF", "/usr/local/bin/python3",
            "scripts/rig/run.sh --out /tmp/rig-selftest", "sysconfig.get_path(\"scripts\")",
        ])
    func lookalikeIsLeftAlone(_ line: String) throws {
        let findings = try RepositoryHygiene.findings(inText: line + "\n")
        #expect(findings.isEmpty, "\(findings)")
    }
}
