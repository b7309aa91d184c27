import Foundation
import Testing
@testable import SRIOVDaemon

/// The Debian package scripts/package.sh builds (scripts/test.sh builds it
/// into .build-release/deb before the tests; SRIOVD_DEB_DIR overrides).
enum DebianPackage {
    static var directory: String {
        ProcessInfo.processInfo.environment["SRIOVD_DEB_DIR"] ?? Checkout.root.appendingPathComponent(".build-release/deb").path
    }

    /// The package of revision 1 (the one the upgrade test starts from).
    static var path: String { "\(directory)/sriovd_\(sriovdVersion)-1_amd64.deb" }
    static var isBuilt: Bool { FileManager.default.fileExists(atPath: path) }
    /// CI (scripts/test.sh) builds it: there, a missing package fails.
    static var shouldTest: Bool { isBuilt || TestRequirement.enforced }

    /// Every file the package installs: exactly these.
    static let files: Set<String> = [
        "/usr/sbin/sriovd",
        "/usr/bin/sriovctl",
        "/lib/systemd/system/sriovd.service",
        "/lib/systemd/system/sriovd.socket",
        "/usr/lib/sysusers.d/sriovd.conf",
        "/usr/lib/tmpfiles.d/sriovd.conf",
        "/etc/sriovd/sriovd.toml",
        "/usr/share/man/man8/sriovd.8.gz",
        "/usr/share/man/man8/sriovctl.8.gz",
        "/usr/share/man/man5/sriovd.toml.5.gz",
        "/usr/share/bash-completion/completions/sriovd",
        "/usr/share/bash-completion/completions/sriovctl",
        "/usr/share/zsh/vendor-completions/_sriovd",
        "/usr/share/zsh/vendor-completions/_sriovctl",
        "/usr/share/doc/sriovd/openapi.yaml",
        "/usr/share/doc/sriovd/copyright",
        "/usr/share/doc/sriovd/changelog.Debian.gz",
    ]

    /// The package unpacked (files and control area) into a new folder.
    static func unpack() throws -> String {
        let dir = try Checkout.temporaryDirectory("sriovd-deb")
        for arguments in [["dpkg-deb", "-x", path, dir + "/files"], ["dpkg-deb", "-e", path, dir + "/DEBIAN"]] {
            let (status, output) = try Checkout.run(arguments)
            try #require(status == 0, "\(arguments.joined(separator: " ")): \(output)")
        }
        return dir
    }
}

@Suite(
    "the Debian package: contents, control data, lintian",
    .serialized,
    .enabled(if: DebianPackage.shouldTest, "no package at \(DebianPackage.path) (scripts/package.sh; scripts/test.sh builds it)"))
struct PackageContentsTests {
    @Test("it installs exactly the listed files, binaries executable, the rest 0644, all root's")
    func contents() throws {
        try #require(DebianPackage.isBuilt, "no package at \(DebianPackage.path)")
        let (status, listing) = try Checkout.run(["dpkg-deb", "-c", DebianPackage.path])
        try #require(status == 0, "\(listing)")
        var files: [String: String] = [:]  // path: mode
        for line in listing.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, let name = fields.last, !fields[0].hasPrefix("d") else { continue }
            #expect(fields[1] == "root/root", "\(line)")
            files[String(name.dropFirst())] = String(fields[0])
        }
        #expect(Set(files.keys) == DebianPackage.files, "extra: \(Set(files.keys).subtracting(DebianPackage.files)), missing: \(DebianPackage.files.subtracting(files.keys))")
        for (path, mode) in files {
            let executable = path == "/usr/sbin/sriovd" || path == "/usr/bin/sriovctl"
            #expect(mode == (executable ? "-rwxr-xr-x" : "-rw-r--r--"), "\(path): \(mode)")
        }
    }

    @Test("control: its version is sriovd's own, Depends comes from the binaries' libraries and names no Swift runtime")
    func control() throws {
        let dir = try DebianPackage.unpack()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let control = try String(contentsOfFile: dir + "/DEBIAN/control", encoding: .utf8)
        var fields: [String: String] = [:]
        for line in control.split(separator: "\n") where !line.hasPrefix(" ") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        #expect(fields["Package"] == "sriovd")
        #expect(fields["Version"] == "\(sriovdVersion)-1")
        #expect(fields["Architecture"] == "amd64")
        let depends = try #require(fields["Depends"])
        let names = Set(depends.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).split(separator: " ")[0] }.map(String.init))
        // What the C modules link (Package.swift's system libraries) and libc.
        for library in ["libc6", "libnl-3-200", "libnl-route-3-200", "libsystemd0", "libpci3", "systemd"] {
            #expect(names.contains(library), "Depends: \(depends)")
        }
        #expect(!depends.lowercased().contains("swift"), "the Swift runtime is linked in, not a dependency: \(depends)")
        let conffiles = try String(contentsOfFile: dir + "/DEBIAN/conffiles", encoding: .utf8)
        #expect(conffiles == "/etc/sriovd/sriovd.toml\n")
    }

    @Test("the binaries are stripped, carry the Swift standard library inside, and run")
    func binaries() throws {
        let dir = try DebianPackage.unpack()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for binary in ["/usr/sbin/sriovd", "/usr/bin/sriovctl"] {
            let (status, sections) = try Checkout.run(["readelf", "-S", "-W", dir + "/files" + binary])
            try #require(status == 0, "\(sections)")
            #expect(!sections.contains(".symtab"), "\(binary) is not stripped")
            let (_, dynamic) = try Checkout.run(["readelf", "-d", dir + "/files" + binary])
            #expect(dynamic.contains("libc.so.6"))
            #expect(!dynamic.contains("libswiftCore") && !dynamic.contains("libFoundation"), "\(binary) needs the Swift runtime: \(dynamic)")
        }
        let (status, version) = try Checkout.run([dir + "/files/usr/sbin/sriovd", "--version"])
        #expect(status == 0 && version.trimmingCharacters(in: .whitespacesAndNewlines) == sriovdVersion)
    }

    @Test("the units start /usr/sbin/sriovd; the configuration is the documented example, which sets nothing")
    func unitsAndConfiguration() throws {
        let dir = try DebianPackage.unpack()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let service = try String(contentsOfFile: dir + "/files/lib/systemd/system/sriovd.service", encoding: .utf8)
        #expect(service.contains("\nExecStart=/usr/sbin/sriovd --config /etc/sriovd/sriovd.toml\n"))
        let socket = try String(contentsOfFile: dir + "/files/lib/systemd/system/sriovd.socket", encoding: .utf8)
        #expect(socket.contains("\nExecStartPost=-/usr/sbin/sriovd socket-access /run/sriovd/sriovd.sock\n"))
        #expect(!(service + socket).contains("/usr/local"))
        for (installed, source) in [
            ("/lib/systemd/system/sriovd.service", "systemd/sriovd.service"),
            ("/usr/lib/sysusers.d/sriovd.conf", "systemd/sriovd.sysusers"),
            ("/usr/lib/tmpfiles.d/sriovd.conf", "systemd/sriovd.tmpfiles"),
            ("/etc/sriovd/sriovd.toml", "config/sriovd.toml"),
            ("/usr/share/doc/sriovd/openapi.yaml", "docs/openapi.yaml"),
        ] {
            let packaged = try Data(contentsOf: URL(fileURLWithPath: dir + "/files" + installed))
            #expect(packaged == (try Data(contentsOf: Checkout.root.appendingPathComponent(source))), "\(installed) differs from \(source)")
        }
        let configuration = try String(contentsOfFile: dir + "/files/etc/sriovd/sriovd.toml", encoding: .utf8)
        let settings = configuration.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        #expect(settings == ["[daemon]"], "uncommented lines: \(settings)")
    }

    @Test("maintainer scripts: groups and folders made, systemd reloaded, nothing enabled or started; purge removes the state")
    func maintainerScripts() throws {
        let dir = try DebianPackage.unpack()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let postinst = try String(contentsOfFile: dir + "/DEBIAN/postinst", encoding: .utf8)
        #expect(postinst.contains("systemd-sysusers sriovd.conf") && postinst.contains("systemd-tmpfiles --create sriovd.conf"))
        #expect(postinst.contains("daemon-reload"))
        let everything = try ["postinst", "prerm", "postrm"].map {
            try String(contentsOfFile: dir + "/DEBIAN/" + $0, encoding: .utf8)
        }.joined()
        for forbidden in ["systemctl enable", "systemctl start", "systemctl restart", "deb-systemd-invoke start", "--now"] {
            #expect(!everything.contains(forbidden), "a maintainer script says \(forbidden)")
        }
        let postrm = try String(contentsOfFile: dir + "/DEBIAN/postrm", encoding: .utf8)
        let purge = try #require(postrm.range(of: "purge)"))
        let remove = try #require(postrm.range(of: "remove)"))
        let removal = try #require(postrm.range(of: "rm -rf /var/lib/sriovd"))
        #expect(removal.lowerBound > purge.lowerBound && !(postrm[remove.lowerBound..<purge.lowerBound].contains("/var/lib/sriovd")))
    }

    @Test("man pages render with their sections; completions are generated scripts for both commands")
    func manPagesAndCompletions() throws {
        let dir = try DebianPackage.unpack()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = dir + "/files"
        for (page, mustContain) in [
            ("man8/sriovd.8.gz", ["NAME", "SYNOPSIS", "check-config", "--config"]),
            ("man8/sriovctl.8.gz", ["NAME", "SYNOPSIS", "assign", "--socket"]),
            ("man5/sriovd.toml.5.gz", ["NAME", "sriovd.toml", "reconcile_interval_seconds", "SEE ALSO"]),
        ] {
            let (status, text) = try Checkout.run(["env", "MANWIDTH=100", "man", "-l", "-P", "cat", root + "/usr/share/man/" + page])
            #expect(status == 0, "\(page): \(text.prefix(500))")
            for word in mustContain { #expect(text.contains(word), "\(page) lacks \(word)") }
        }
        for tool in ["sriovd", "sriovctl"] {
            let bash = root + "/usr/share/bash-completion/completions/" + tool
            let (status, output) = try Checkout.run(["bash", "-n", bash])
            #expect(status == 0, "\(output)")
            #expect(try String(contentsOfFile: bash, encoding: .utf8).contains("_\(tool)()"))
            let zsh = try String(contentsOfFile: root + "/usr/share/zsh/vendor-completions/_" + tool, encoding: .utf8)
            #expect(zsh.hasPrefix("#compdef \(tool)"))
        }
    }

    @Test("lintian reports no errors")
    func lintian() throws {
        let (status, output) = try Checkout.run(["lintian", "--fail-on", "error", DebianPackage.path])
        #expect(status == 0, "\(output)")
        #expect(!output.split(separator: "\n").contains { $0.hasPrefix("E: ") }, "\(output)")
    }
}
