import Foundation
import SRIOVCore
import Synchronization
import Testing

@testable import SRIOVHypervisor

#if canImport(Glibc)
import Glibc
#endif

/// A stand-in guest agent on a Unix socket, answering as qemu-ga does
/// (one JSON answer per line, `guest-sync-delimited`'s preceded by 0xFF),
/// over a table of guest files; an answer an earlier client left unread
/// comes first. A write to `bonding/active_slave` of a name that is not in
/// `bonding/slaves` fails at the flush with EINVAL, as the kernel's does.
final class FakeAgent: @unchecked Sendable {
    let path: String
    let files: Mutex<[String: String]>
    /// Each command received, in order.
    let commands = Mutex<[String]>([])
    private let listener: Int32

    init(files: [String: String]) throws {
        path = NSTemporaryDirectory() + "sriovd-qga-\(UUID().uuidString.prefix(8)).sock"
        self.files = Mutex(files)
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
        Thread.detachNewThread { [self] in serve() }
    }

    /// Stops listening and removes the socket. The serving thread closes
    /// the listener when its accept fails: closed here, its number could be
    /// reused by the next agent's listener while the thread still waits on it.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        unlink(path)
    }

    private func serve() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else {
                close(listener)
                return
            }
            var pending = Data()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                pending.append(contentsOf: buffer[0..<n].filter { $0 != 0xFF })
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[pending.index(after: newline)...])
                    let reply = answer(line)
                    _ = reply.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                }
            }
            close(fd)
        }
    }

    private var handles: [Int: String] = [:]
    /// What was written to a file and not flushed yet.
    private var written: [String: String] = [:]

    private func answer(_ line: Data) -> Data {
        guard let request = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
            let command = request["execute"] as? String
        else { return Data(#"{"error":{"class":"GenericError","desc":"Invalid JSON syntax"}}"#.utf8 + [10]) }
        commands.withLock { $0.append(command) }
        let arguments = request["arguments"] as? [String: Any] ?? [:]
        func ok(_ value: Any) -> Data {
            (try! JSONSerialization.data(withJSONObject: ["return": value], options: [.fragmentsAllowed])) + [10]
        }
        func error(_ text: String) -> Data {
            Data(#"{"error":{"class":"GenericError","desc":"\#(text)"}}"#.utf8) + [10]
        }
        switch command {
        case "guest-sync-delimited":
            return Data(#"{"return": {"left": "by an earlier client"}}"#.utf8) + [10, 0xFF] + ok(arguments["id"] as? Int ?? 0)
        case "guest-file-open":
            let path = arguments["path"] as? String ?? ""
            if (arguments["mode"] as? String) == "r", files.withLock({ $0[path] }) == nil {
                return error("failed to open file '\(path)' (mode: 'r'): No such file or directory")
            }
            let handle = 1000 + handles.count
            handles[handle] = path
            return ok(handle)
        case "guest-file-read":
            let path = handles[arguments["handle"] as? Int ?? 0] ?? ""
            let text = files.withLock { $0[path] } ?? ""
            return ok(["count": text.utf8.count, "buf-b64": Data(text.utf8).base64EncodedString(), "eof": true])
        case "guest-file-write":
            let path = handles[arguments["handle"] as? Int ?? 0] ?? ""
            let text = String(decoding: Data(base64Encoded: arguments["buf-b64"] as? String ?? "") ?? Data(), as: UTF8.self)
            written[path] = text
            return ok(["count": text.utf8.count, "eof": false])
        case "guest-file-flush":
            let path = handles[arguments["handle"] as? Int ?? 0] ?? ""
            let text = written.removeValue(forKey: path) ?? ""
            if path.hasSuffix("/active_slave") {
                let bond = path.replacingOccurrences(of: "/active_slave", with: "/slaves")
                let slaves = files.withLock { $0[bond] ?? "" }.split(whereSeparator: \.isWhitespace)
                let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !slaves.contains(Substring(name)) { return error("failed to flush file: Invalid argument") }
            }
            files.withLock { $0[path] = text }
            return ok([String: Any]())
        case "guest-file-close":
            return ok([String: Any]())
        case "guest-network-get-interfaces":
            return ok([["name": "lo", "hardware-address": "00:00:00:00:00:00"], ["name": "bond0", "hardware-address": "52:54:00:5a:01:01"]])
        default:
            return Data(#"{"error":{"class":"CommandNotFound","desc":"The command \#(command) has not been found"}}"#.utf8) + [10]
        }
    }
}

/// The guest agent's protocol and the bond steering built on it, against
/// the stand-in agent (the real qemu-ga is in MigrationQEMUTests).
@Suite struct QGAConnectionTests {
    /// A guest whose bond0 has the virtio standby eth0 (PCI 0000:00:02.0,
    /// under its virtio device) and a plugged NIC eth1 (0000:01:00.0).
    static let guestFiles = [
        "/sys/class/net/bond0/bonding/slaves": "eth0 eth1\n",
        "/sys/class/net/bond0/bonding/active_slave": "eth1\n",
        "/sys/class/net/bond0/bonding/mode": "active-backup 1\n",
        "/sys/class/net/bond0/bonding/all_slaves_active": "0\n",
        "/sys/class/net/eth0/device/uevent": "DRIVER=virtio_net\nMODALIAS=virtio:d00000001v00001AF4\n",
        "/sys/class/net/eth0/device/../uevent": "DRIVER=virtio-pci\nPCI_SLOT_NAME=0000:00:02.0\n",
        "/sys/class/net/eth1/device/uevent": "DRIVER=e1000e\nPCI_SLOT_NAME=0000:01:00.0\n",
        "/sys/class/net/eth1/bonding_slave/mii_status": "up\n",
    ]

    @Test("resynchronising drops what an earlier client left unread; files are read whole and written with a flush before the close")
    func syncReadWrite() async throws {
        let agent = try FakeAgent(files: Self.guestFiles)
        defer { agent.stop() }
        let (slaves, names) = try await QGAConnection.with(socket: agent.path) { qga in
            try await qga.writeFile("/run/flag", "0\n")
            return (try await qga.readFile("/sys/class/net/bond0/bonding/slaves"), try await qga.interfaces().map(\.name))
        }
        #expect(slaves == "eth0 eth1\n")
        #expect(names == ["lo", "bond0"])
        #expect(agent.files.withLock { $0["/run/flag"] } == "0\n")
        let sent = agent.commands.withLock { $0 }
        #expect(Array(sent.prefix(5)) == ["guest-sync-delimited", "guest-file-open", "guest-file-write", "guest-file-flush", "guest-file-close"])
    }

    @Test("steering finds the slaves by PCI address (the standby's through its virtio device), writes active_slave and reads it back")
    func steersByPCIAddress() async throws {
        let agent = try FakeAgent(files: Self.guestFiles)
        defer { agent.stop() }
        let bond = QGABond(socket: agent.path, bond: "bond0")
        let (name, changed) = try await bond.makeActive(slaveAt: "0000:00:02.0", role: "standby")
        #expect(name == "eth0" && changed)
        #expect(agent.files.withLock { $0["/sys/class/net/bond0/bonding/active_slave"] } == "eth0\n")
        #expect(agent.files.withLock { $0["/sys/class/net/bond0/bonding/all_slaves_active"] } == "0\n", "put back after the switch")
        let writes = agent.commands.withLock { $0 }.filter { $0 == "guest-file-write" }.count
        #expect(writes == 3, "all_slaves_active 1, active_slave, all_slaves_active 0")
        let (again, changedAgain) = try await bond.makeActive(slaveAt: "0000:00:02.0", role: "standby")
        #expect(again == "eth0" && !changedAgain, "already active: nothing written")
        let ready = try await bond.waitUntilSlaveIsUp(at: "0000:01:00.0", deadline: .seconds(1), pollInterval: .milliseconds(10))
        #expect(ready.hasPrefix("eth1 is a slave of bond0 with MII up"))
    }

    @Test("refusals say what the guest has: no such slave, no such bond, a command the agent does not know")
    func refusals() async throws {
        let agent = try FakeAgent(files: Self.guestFiles)
        defer { agent.stop() }
        await #expect {
            _ = try await QGABond(socket: agent.path, bond: "bond0").makeActive(slaveAt: "0000:02:00.0", role: "VF")
        } throws: { error in
            "\(error)".contains("the guest's VF (PCI 0000:02:00.0 in the guest) is not a slave of bond0 (its slaves: eth0, eth1)")
        }
        await #expect {
            _ = try await QGABond(socket: agent.path, bond: "bond1").makeActive(slaveAt: "0000:00:02.0", role: "standby")
        } throws: { error in
            "\(error)".contains("the guest has no interface bond1 (it has lo, bond0)")
        }
        await #expect {
            try await QGAConnection.with(socket: agent.path) { try await $0.execute("guest-no-such-thing") }
        } throws: { error in
            guard case QGAError.refused(let command, let errorClass, _) = error else { return false }
            return command == "guest-no-such-thing" && errorClass == "CommandNotFound"
        }
        await #expect {
            try await QGAConnection.with(socket: agent.path + ".missing") { _ in }
        } throws: { error in
            guard case QGAError.cannotConnect(_, let reason) = error else { return false }
            return reason == "no such socket"
        }
    }

    @Test(
        "preflight through the agent: the bond, its mode, the standby among its slaves and its MAC, each refusal naming the field and what the guest has",
        arguments: [
            ("bond0", [:], "0000:00:02.0", "52:54:00:5a:01:01", nil, ""),
            ("bond0", [:], "0000:00:02.0", "52:54:00:5a:01:02", "mac", "has MAC 52:54:00:5a:01:01, not 52:54:00:5a:01:02"),
            ("bond1", [:], "0000:00:02.0", "52:54:00:5a:01:01", "failover.bond", "the guest has no interface bond1 (it has lo, bond0)"),
            ("bond0", ["/sys/class/net/bond0/bonding/mode": "balance-rr 0\n"], "0000:00:02.0", "52:54:00:5a:01:01", "failover.bond", "is in mode balance-rr, not active-backup"),
            ("bond0", [:], "0000:00:05.0", "52:54:00:5a:01:01", "failover.standby", "the standby net0 (PCI 0000:00:05.0 in the guest) is not a slave of bond0 (its slaves: eth0, eth1)"),
        ] as [(String, [String: String], String, String, String?, String)])
    func preflight(bond: String, files: [String: String], standby: String, mac: String, field: String?, found: String) async throws {
        let agent = try FakeAgent(files: Self.guestFiles.merging(files) { _, new in new })
        defer { agent.stop() }
        let check = QGABond(socket: agent.path, bond: bond)
        do {
            try await check.preflight(standbyAt: standby, standbyID: "net0", mac: try MACAddress.parse(mac, field: "mac"))
            #expect(field == nil, "accepted, expected a refusal of \(field ?? "")")
        } catch let error as FailoverError {
            #expect(error.field == field && error.reason.contains(found), "\(error)")
        }
    }

    @Test("preflight with no agent answering is refused as failover.agent")
    func preflightWithoutAgent() async throws {
        await #expect {
            try await QGABond(socket: NSTemporaryDirectory() + "no-such-agent.sock", bond: "bond0")
                .preflight(standbyAt: "0000:00:02.0", standbyID: "net0", mac: nil)
        } throws: { error in
            (error as? FailoverError)?.field == "failover.agent"
        }
    }
}
