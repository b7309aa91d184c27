import Foundation
import SRIOVCore
import Testing

/// The Debian package's own files under a real systemd in the VM: install,
/// socket activation, reader and admin through the socket, upgrade, remove,
/// purge (Scenarios/package.sh and package-checks.sh). The packages are
/// scripts/package.sh's, revisions 1 and 2, in .build-release/deb
/// (scripts/test.sh builds them).
@Suite("the Debian package under systemd on the real igb driver (SR-IOV test VM; needs root, QEMU, virtme-ng, the packages)",
       .serialized,
       .enabled(if: Rig.shouldRun && (Rig.packagesBuilt || Rig.isRequired),
                "SR-IOV test VM or packages unavailable: \(Rig.unavailableReason ?? "no packages in .build-release/deb (scripts/package.sh)")"))
struct PackageRigTests {
    static let scenario = RigScenario(name: "package", batch: .systemd)

    func results() async throws -> [String: String] {
        try await Self.scenario.keyValues("package-results.txt").1
    }

    @Test("install: groups and folders made, systemd told, the example configuration as shipped; nothing enabled or started")
    func install() async throws {
        let r = try await results()
        #expect(r["done"] == "yes", "the checks ran to the end: \(r)")
        #expect(r["install"] == "ok")
        #expect(r["version"]?.hasSuffix("-1 install ok installed") == true, "\(r["version"] ?? "")")
        #expect(r["groups"] == "yes")
        #expect(r["state_dir"] == "750 root root")
        #expect(r["run_dir"] == "755 root root")
        #expect(r["enabled_after_install"] == "disabled disabled")
        #expect(r["active_after_install"] == "inactive inactive")
        #expect(r["exec_start"] == "/usr/sbin/sriovd", "systemd knows the packaged unit (daemon-reload)")
        #expect(r["conffile_pristine"] == "yes")
        #expect(r["conffile_check"] == "ok")
        #expect(r["binary_version"] == r["version"]?.split(separator: "-").first.map(String.init))
    }

    @Test("man sriovd, man sriovctl, man 5 sriovd.toml and the completions work from the installed package")
    func manAndCompletions() async throws {
        let r = try await results()
        #expect(r["man_sriovctl"] == "/usr/share/man/man8/sriovctl.8.gz")
        #expect((Int(r["man_sriovd"] ?? "") ?? 0) > 0)
        #expect((Int(r["man_sriovctl_text"] ?? "") ?? 0) > 0)
        #expect((Int(r["man_toml"] ?? "") ?? 0) > 0)
        #expect(r["completion_bash"] == "4", "sriovctl <TAB> offers vfs, assign, release, health")
        #expect(r["completion_zsh"] == "1")
    }

    @Test("enable --now sriovd.socket: the reader's first request starts sriovd; the reader lists VFs and is refused a change")
    func socketAndAccess() async throws {
        let r = try await results()
        #expect(r["conffile_edited_check"] == "ok")
        #expect(r["users"] == "ok ok", "the test's reader and stranger users were made (useradd)")
        #expect(r["reader_groups"]?.split(separator: " ").contains("sriovd-ro") == true, "\(r["reader_groups"] ?? "")")
        #expect(r["enable"] == "ok")
        #expect(r["active_after_enable"] == "active inactive")
        #expect(r["reader_health"] == "0")
        #expect(r["active_after_request"] == "active active")
        #expect(r["reader_vfs"] == "0")
        #expect(r["reader_vfs_listed"] == "2", "both VFs of the configured PF listed")
        #expect(r["reader_change"] == "77", "refused: EX_NOPERM")
        #expect(r["reader_change_trust"] == "False", "and nothing changed")
        #expect(r["stranger_health"] == "77", "not in a group: cannot connect")
        #expect(r["admin_assign"] == "ok")
        #expect(r["assigned_vf"]?.isEmpty == false)
        #expect(r["state_db"] == "yes")
    }

    @Test("upgrade to the second build: edited configuration, state.db and its assignment kept; sriovd restarted on the new files")
    func upgrade() async throws {
        let r = try await results()
        #expect(r["upgrade"] == "ok")
        #expect(r["upgraded_version"]?.hasSuffix("-2 install ok installed") == true, "\(r["upgraded_version"] ?? "")")
        #expect(r["conffile_kept"] == "yes")
        #expect(r["conffile_leftovers"] == "0")
        #expect(r["state_db_kept"] == "yes")
        #expect(r["active_after_upgrade"] == "active active")
        #expect(r["restarted"] == "new-pid")
        #expect(r["assignment_after_upgrade"] == r["assigned_vf"])
        #expect(r["reader_after_upgrade"] == "0")
        #expect(r["release"] == "ok")
    }

    @Test("remove stops sriovd and keeps configuration and state; purge leaves nothing of sriovd behind")
    func removeAndPurge() async throws {
        let r = try await results()
        #expect(r["remove"] == "ok")
        #expect(r["removed_status"] == "deinstall ok config-files")
        #expect(r["active_after_remove"] == "inactive inactive")
        #expect(r["removed_files"] == "0")
        #expect(r["remove_keeps"] == "conf+state")
        #expect(r["purge"] == "ok")
        #expect(r["purged_status"] == "not-installed")
        #expect(r["purged_paths"] == "0")
        #expect(r["purged_units"] == "0")
        #expect(r["leftovers"] == "none")
    }

    @Test("the host is untouched: dpkg ran in the VM's own layers, never on the shared root")
    func hostUntouched() async throws {
        _ = try await results()
        for path in ["/usr/sbin/sriovd", "/usr/bin/sriovctl", "/etc/sriovd", "/lib/systemd/system/sriovd.service",
                     "/usr/lib/sysusers.d/sriovd.conf", "/var/lib/dpkg/info/sriovd.list", "/var/lib/sriovd"] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) exists on the host")
        }
        let status = try String(contentsOfFile: "/var/lib/dpkg/status", encoding: .utf8)
        #expect(!status.contains("\nPackage: sriovd\n") && !status.hasPrefix("Package: sriovd\n"))
        let group = try String(contentsOfFile: "/etc/group", encoding: .utf8)
        #expect(!group.contains("\nsriovd-ro:"), "the VM's systemd-sysusers wrote the host's /etc/group")
        let passwd = try String(contentsOfFile: "/etc/passwd", encoding: .utf8)
        #expect(!passwd.contains("\nsriovd-reader:"), "the VM's useradd wrote the host's /etc/passwd")
    }
}

extension Rig {
    /// Whether scripts/package.sh left revisions 1 and 2 in .build-release/deb.
    static var packagesBuilt: Bool {
        let dir = repoRoot.appendingPathComponent(".build-release/deb").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.contains { $0.hasSuffix("-1_amd64.deb") } && names.contains { $0.hasSuffix("-2_amd64.deb") }
    }
}
