import Foundation
import Testing

/// A real QEMU process on this machine (q35, TCG) booting the Debian kernel
/// from /boot with a busybox initramfs built here: a Linux guest whose own
/// PCI hotplug driver answers `device_add`/`device_del`, reached through
/// its QMP socket. It boots in about ten seconds.
///
/// Needs root, qemu-system-x86_64, a kernel in /boot, busybox-static and,
/// for the failover guest, qemu-guest-agent (scripts/install-deps.sh).
/// Without them the tests are skipped and say why, unless the run requires
/// them (SRIOVD_REQUIRE_RIG=1, or CI=true): then they fail.
final class QEMUGuestProcess: @unchecked Sendable {
    let folder: URL
    let qmpSocket: String
    /// The guest agent's socket (the failover guest runs qemu-ga on a
    /// virtio-serial port named org.qemu.guest_agent.0).
    let agentSocket: String
    private let process: Process
    private let console: URL

    /// SRIOVD_REQUIRE_RIG=1, or CI unless SRIOVD_REQUIRE_RIG=0 (the rule of
    /// TestRequirement in SRIOVDaemonTests).
    static var isRequired: Bool {
        let environment = ProcessInfo.processInfo.environment
        if let rig = environment["SRIOVD_REQUIRE_RIG"], rig == "0" || rig == "1" { return rig == "1" }
        return ["true", "1"].contains(environment["CI"]?.lowercased() ?? "")
    }

    static var unavailableReason: String? {
        let fm = FileManager.default
        if qemu == nil { return "qemu-system-x86_64 is not installed (scripts/install-deps.sh)" }
        if kernel == nil { return "no /boot/vmlinuz-* kernel image (scripts/install-deps.sh)" }
        if !fm.isExecutableFile(atPath: "/bin/busybox") { return "busybox-static is not installed (scripts/install-deps.sh)" }
        if !fm.isExecutableFile(atPath: "/usr/bin/cpio") { return "cpio is not installed" }
        if !fm.isExecutableFile(atPath: qemuGA) { return "qemu-guest-agent is not installed (scripts/install-deps.sh)" }
        return nil
    }

    static var shouldRun: Bool { unavailableReason == nil || isRequired }

    static var qemu: String? {
        ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    static let qemuGA = "/usr/sbin/qemu-ga"

    static var kernel: String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []
        return names.filter { $0.hasPrefix("vmlinuz-") }.sorted().last.map { "/boot/" + $0 }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// What the guest's init sets up besides reporting.
    enum Role {
        /// Only reports PCI functions and carriers.
        case plain
        /// A DNIS guest: an active-backup bond (MII monitoring every 20 ms)
        /// of the virtio-net standby and any NIC plugged later, which it
        /// enslaves and makes primary (as a guest's udev rule or
        /// net_failover would); it pings QEMU's user-network gateway
        /// (10.0.2.2, answered inside QEMU: nothing leaves it) every 10 ms
        /// and prints each reply (`64 bytes from ... seq=N`) and each change
        /// of the bond's active slave (`BOND-ACTIVE name driver`). It runs
        /// qemu-ga; a plugged NIC is made primary unless /run/plug-primary
        /// says 0 (written through the agent: a guest whose switch back
        /// is left to sriovd's lever).
        case failover
    }

    /// The failover guest's MAC (its standby's and its bond's).
    static let guestMAC = "52:54:00:5a:01:01"

    /// Boots the guest and waits until its init says it is up.
    init(extraDevices: [String] = [], role: Role = .plain) throws {
        if let reason = Self.unavailableReason { throw Failure(description: "QEMU guest unavailable: \(reason)") }
        folder = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("sriovd-qemu-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        qmpSocket = folder.appendingPathComponent("qmp.sock").path
        agentSocket = folder.appendingPathComponent("qga.sock").path
        console = folder.appendingPathComponent("console.log")
        let initrd = try Self.buildInitramfs(in: folder, role: role)

        process = Process()
        // No parent-death signal (setpriv --pdeathsig): it follows the
        // spawning thread, and the executor's threads end when idle, which
        // killed QEMU mid-test. A shared guest is killed at exit instead.
        process.executableURL = URL(fileURLWithPath: Self.qemu!)
        process.arguments = [
            "-machine", "q35", "-accel", "tcg", "-m", "256", "-smp", "1", "-nodefaults", "-display", "none",
            "-no-reboot", "-kernel", Self.kernel!, "-initrd", initrd,
            "-append", "console=ttyS0 panic=-1 quiet loglevel=4",
            "-serial", "file:\(console.path)",
            "-qmp", "unix:\(qmpSocket),server=on,wait=off",
            // Free root ports to plug into, and hub ports (on a hub with no
            // host connection: nothing leaves QEMU) for the NICs.
            "-device", "pcie-root-port,id=rp1,chassis=1,slot=1",
            "-device", "pcie-root-port,id=rp2,chassis=2,slot=2",
            "-device", "pcie-root-port,id=rp3,chassis=3,slot=3",
            "-netdev", "hubport,id=sb0,hubid=0",
            "-device", "virtio-net-pci,id=standby,netdev=sb0,mac=\(Self.guestMAC)",
            "-netdev", "hubport,id=plug1,hubid=0",
            "-netdev", "hubport,id=plug2,hubid=0",
        ] + (role == .failover ? [
            // The traffic peer: QEMU's user network, restricted (no way
            // out of QEMU), whose gateway answers the guest's pings.
            "-netdev", "user,id=peer,restrict=on",
            "-netdev", "hubport,id=peerport,hubid=0,netdev=peer",
            "-device", "virtio-serial",
            "-chardev", "socket,path=\(agentSocket),server=on,wait=off,id=qga0",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        ] : []) + extraDevices
        let log = folder.appendingPathComponent("qemu.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try waitForConsole("SRIOVD-GUEST-READY", timeout: 180)
    }

    deinit { stop() }

    var pid: Int32 { process.processIdentifier }

    /// Ends QEMU at once (nothing in the guest is worth keeping). SIGKILL:
    /// a child of this process may have SIGTERM blocked.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var consoleText: String { (try? String(contentsOf: console, encoding: .utf8)) ?? "" }

    /// The console's lines (the serial port ends them with CR LF).
    var consoleLines: [Substring] { consoleText.split(whereSeparator: \.isNewline) }

    /// The carrier the guest's kernel last reported for the NIC with `mac`
    /// (`LINKS NET mac carrier ...` lines): true up, false down, nil unknown.
    func guestCarrier(mac: String) -> Bool? {
        guard let line = consoleLines.last(where: { $0.hasPrefix("LINKS") }) else { return nil }
        let words = line.split(separator: " ")
        guard let at = words.firstIndex(where: { $0 == mac }), at + 1 < words.count else { return nil }
        switch words[at + 1] {
        case "1": return true
        case "0": return false
        default: return nil
        }
    }

    /// Waits until the guest reports carrier `up` for the NIC with `mac`.
    func waitForGuestCarrier(mac: String, up: Bool, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if guestCarrier(mac: mac) == up { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Failure(description: "the guest does not report carrier \(up ? "up" : "down") for \(mac) after \(Int(timeout)) s (last: \(consoleLines.last(where: { $0.hasPrefix("LINKS") }) ?? "none"))")
    }

    /// Waits until the guest's console shows `marker` (a line its init writes).
    func waitForConsole(_ marker: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if consoleText.contains(marker) { return }
            if !process.isRunning {
                throw Failure(description: "QEMU exited (\(process.terminationStatus)); console:\n\(consoleText.suffix(3000))\nqemu:\n\((try? String(contentsOf: folder.appendingPathComponent("qemu.log"), encoding: .utf8)) ?? "")")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Failure(description: "the guest did not print \(marker) within \(Int(timeout)) s; console:\n\(consoleText.suffix(3000))")
    }

    /// The failover guest's ping replies (`seq=N`) seen on the console.
    var pingReplies: Set<Int> {
        var seen: Set<Int> = []
        for line in consoleLines {
            guard line.contains("bytes from 10.0.2.2"), let range = line.range(of: "seq=") else { continue }
            if let n = Int(line[range.upperBound...].prefix(while: \.isNumber)) { seen.insert(n) }
        }
        return seen
    }

    /// The failover guest's active slave's driver, as its init last reported it.
    var activeSlaveDriver: String? {
        guard let line = consoleLines.last(where: { $0.hasPrefix("BOND-ACTIVE ") }) else { return nil }
        return line.split(separator: " ").dropFirst(2).first.map(String.init)
    }

    /// Waits until the failover guest's bond runs on a NIC driven by `driver`.
    func waitForActiveSlave(driver: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if activeSlaveDriver == driver { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Failure(description: "the guest's bond is on \(activeSlaveDriver ?? "nothing"), not a \(driver) NIC, after \(Int(timeout)) s; console:\n\(consoleLines.filter { !$0.contains("seq=") }.suffix(20).joined(separator: "\n"))")
    }

    /// The number of PCI functions the guest's own kernel lists, as its init
    /// last reported it on the console (`PCI-FUNCTIONS n`).
    var guestPCIFunctions: Int? {
        consoleLines.reversed().lazy
            .compactMap { line -> Int? in
                guard let range = line.range(of: "PCI-FUNCTIONS ") else { return nil }
                return Int(line[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines))
            }.first
    }

    /// Waits until the guest reports `count` PCI functions.
    func waitForGuestPCIFunctions(_ count: Int, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if guestPCIFunctions == count { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Failure(description: "the guest lists \(guestPCIFunctions.map(String.init) ?? "no") PCI functions, not \(count), after \(Int(timeout)) s")
    }

    /// A busybox initramfs whose init mounts /proc, /sys and /dev, loads the
    /// virtio-net and e1000e drivers (with what they depend on, as modprobe
    /// resolves it for the kernel booted), says it is up, then reports on the
    /// console each time what its kernel sees changes: the number of PCI
    /// functions (hot-plug and unplug answered) and each NIC's carrier
    /// (`NET mac carrier`).
    private static func buildInitramfs(in folder: URL, role: Role) throws -> String {
        let root = folder.appendingPathComponent("initramfs")
        let fm = FileManager.default
        for dir in ["bin", "dev", "proc", "sys", "run", "lib/modules"] {
            try fm.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: "/bin/busybox", toPath: root.appendingPathComponent("bin/busybox").path)
        var modules: [String] = []
        let version = String(URL(fileURLWithPath: kernel!).lastPathComponent.dropFirst("vmlinuz-".count))
        if role == .failover { try copyWithLibraries(qemuGA, into: root) }
        for module in ["virtio_pci", "virtio_net", "e1000e"] + (role == .failover ? ["bonding", "virtio_console"] : []) {
            for line in try shell("/sbin/modprobe -S '\(version)' --show-depends \(module)").split(separator: "\n") {
                let words = line.split(separator: " ")
                guard words.first == "insmod", words.count >= 2 else { continue }  // "builtin ..." lines
                let path = String(words[1])
                let name = URL(fileURLWithPath: path).lastPathComponent
                if modules.contains(name) { continue }
                try fm.copyItem(atPath: path, toPath: root.appendingPathComponent("lib/modules/\(name)").path)
                modules.append(name)
            }
        }
        let loads = modules.map { "insmod /lib/modules/\($0)" }.joined(separator: "\n")
        let initScript = """
            #!/bin/busybox sh
            /bin/busybox --install -s /bin
            mount -t proc proc /proc
            mount -t sysfs sys /sys
            mount -t devtmpfs dev /dev
            exec > /dev/ttyS0 2>&1
            \(loads)
            report() {
              n=$(ls /sys/bus/pci/devices | wc -l)
              if [ "$n" != "$pci" ]; then echo "PCI-FUNCTIONS $n"; pci=$n; fi
              now=""
              for dev in /sys/class/net/*; do
                name=${dev##*/}
                [ "$name" = lo ] || [ ! -d "$dev" ] && continue
                ip link set "$name" up 2>/dev/null
                now="$now NET $(cat $dev/address) $(cat $dev/carrier 2>/dev/null || echo -)"
              done
              if [ "$now" != "$net" ]; then echo "LINKS$now"; net=$now; fi
            }
            pci="" net=""
            \(role == .failover ? Self.failoverSetup : "")
            report
            echo SRIOVD-GUEST-READY
            while true; do report; \(role == .failover ? "bond_watch; " : "")sleep 0.1; done

            """
        let initPath = root.appendingPathComponent("init").path
        try initScript.write(toFile: initPath, atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: initPath)
        let image = folder.appendingPathComponent("initramfs.cpio").path
        let cpio = Process()
        cpio.executableURL = URL(fileURLWithPath: "/bin/sh")
        cpio.arguments = ["-c", "cd \"$1\" && find . | cpio -o -H newc --quiet > \"$2\"", "sh", root.path, image]
        try cpio.run()
        cpio.waitUntilExit()
        guard cpio.terminationStatus == 0 else { throw Failure(description: "building the initramfs failed") }
        return image
    }

    /// Copies an executable and the shared libraries it loads (as ldd
    /// resolves them here, with the dynamic loader) to the same paths
    /// under `root`.
    private static func copyWithLibraries(_ path: String, into root: URL) throws {
        let fm = FileManager.default
        var files = [path]
        for line in try shell("ldd '\(path)'").split(separator: "\n") {
            // "libx.so.1 => /lib/.../libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            if let word = line.split(whereSeparator: \.isWhitespace).first(where: { $0.hasPrefix("/") }) { files.append(String(word)) }
        }
        for file in files {
            let target = root.appendingPathComponent(String(file.dropFirst()))
            try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            if !fm.fileExists(atPath: target.path) {
                try fm.copyItem(atPath: URL(fileURLWithPath: file).resolvingSymlinksInPath().path, toPath: target.path)
            }
        }
    }

    /// The failover guest's bond and prober (see `Role.failover`). The
    /// report loop brings every NIC up, so a NIC is enslaved only by
    /// `bond_watch`: it takes it down, enslaves it, and makes it primary.
    private static let failoverSetup = """
        standby=""
        for dev in /sys/class/net/*; do
          [ "$(cat $dev/address)" = "\(guestMAC)" ] && standby=${dev##*/}
        done
        [ -d /sys/class/net/bond0 ] || echo +bond0 > /sys/class/net/bonding_masters
        echo active-backup > /sys/class/net/bond0/bonding/mode
        echo 20 > /sys/class/net/bond0/bonding/miimon
        ip link set "$standby" down
        echo "+$standby" > /sys/class/net/bond0/bonding/slaves
        ip link set bond0 up
        ip addr add 10.0.2.15/24 dev bond0
        for port in /sys/class/virtio-ports/*; do
          [ "$(cat $port/name)" = org.qemu.guest_agent.0 ] && /usr/sbin/qemu-ga -m virtio-serial -p /dev/${port##*/} -t /run -f /run/qemu-ga.pid &
        done
        active=""
        bond_watch() {
          for dev in /sys/class/net/*; do
            name=${dev##*/}
            case "$name" in lo|bond*|"$standby") continue ;; esac
            [ -e "$dev/device" ] || continue
            [ -e "$dev/master" ] && continue
            ip link set "$name" down
            echo "+$name" > /sys/class/net/bond0/bonding/slaves && echo "ENSLAVED $name"
            if [ "$(cat /run/plug-primary 2>/dev/null)" = 0 ]; then
              echo > /sys/class/net/bond0/bonding/primary
            else
              echo "$name" > /sys/class/net/bond0/bonding/primary
            fi
          done
          a=$(cat /sys/class/net/bond0/bonding/active_slave)
          if [ "$a" != "$active" ]; then
            d=$(basename "$(readlink /sys/class/net/$a/device/driver 2>/dev/null)" 2>/dev/null)
            echo "BOND-ACTIVE ${a:-none} ${d:-none}"; active=$a
          fi
        }
        bond_watch
        ping -i 0.01 10.0.2.2 &
        """

    private static func shell(_ command: String) throws -> String {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failure(description: "\(command) failed") }
        return String(decoding: data, as: UTF8.self)
    }
}
