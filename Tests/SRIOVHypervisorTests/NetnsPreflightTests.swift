import Foundation
import SRIOVCore
import Testing
@testable import SRIOVHypervisor

/// The netns adapter's preflight against real network namespaces this test
/// creates (`ip netns add`, veth and bond links inside): it needs root, and
/// the cases with a bond need a kernel with the bonding driver (the SR-IOV
/// test VM has it; say so when it is missing).
@Suite("Netns preflight: the guest's bond, standby and MAC checked over rtnetlink (needs root; network namespaces)")
struct NetnsPreflightTests {
    static let mac = try! MACAddress.parse("52:54:00:77:00:01", field: "mac")
    static let other = try! MACAddress.parse("52:54:00:77:00:99", field: "mac")

    static var rootReason: String? {
        if getuid() != 0 { return "needs root (ip netns add)" }
        if ip(["-V"]).status != 0 { return "iproute2 (ip) is not installed" }
        return nil
    }

    /// Whether the kernel can make a bond (the bonding driver is there).
    static let bondReason: String? = {
        if let rootReason { return rootReason }
        let ns = "sriovd-bondprobe-\(getpid())"
        defer { _ = ip(["netns", "del", ns]) }
        guard ip(["netns", "add", ns]).status == 0 else { return "ip netns add failed" }
        let made = ip(["-n", ns, "link", "add", "probe0", "type", "bond"])
        return made.status == 0 ? nil : "this kernel has no bonding driver (\(made.output.trimmingCharacters(in: .whitespacesAndNewlines)))"
    }()

    @discardableResult
    static func ip(_ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (127, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A namespace for one test, deleted after it.
    final class Namespace {
        let name = "sriovd-pre-\(UUID().uuidString.prefix(8))"
        init() throws {
            let made = NetnsPreflightTests.ip(["netns", "add", name])
            try #require(made.status == 0, "\(made.output)")
        }
        deinit { NetnsPreflightTests.ip(["netns", "del", name]) }

        func run(_ command: String) throws {
            for line in command.split(separator: ";") {
                let words = line.split(separator: " ").map(String.init)
                let done = NetnsPreflightTests.ip(["-n", name] + words)
                try #require(done.status == 0, "ip -n \(name) \(line): \(done.output)")
            }
        }

        /// The guest a DNIS guest sets up: an active-backup bond with the
        /// NIC's MAC and a veth standby as its slave.
        func guest(mode: String = "active-backup", mac: MACAddress = NetnsPreflightTests.mac, enslave: Bool = true) throws {
            try run("link add bond0 type bond mode \(mode) miimon 20;link set bond0 address \(mac)")
            try run("link add veth-g type veth peer name veth-h")
            if enslave { try run("link set veth-g master bond0") }
        }

        var adapter: NetnsGuest { NetnsGuest(namespace: name, bond: "bond0", standby: "veth-g") }
    }

    /// The refusal's field and reason, or nil when preflight passed.
    func refusal(_ adapter: NetnsGuest, mac: MACAddress?) async -> (field: String?, reason: String)? {
        do {
            try await adapter.preflight(mac: mac)
            return nil
        } catch {
            return (error.field, error.reason)
        }
    }

    @Test("a matching guest passes: active-backup bond with the NIC's MAC, the standby its slave (needs root and the bonding driver)",
          .enabled(if: bondReason == nil, "\(bondReason ?? "")"))
    func matches() async throws {
        let ns = try Namespace()
        try ns.guest()
        let found = await refusal(ns.adapter, mac: Self.mac)
        #expect(found == nil, "\(found?.reason ?? "")")
        #expect(await refusal(ns.adapter, mac: nil) == nil, "no MAC asked: not compared")
    }

    @Test("a bond whose MAC differs from the NIC's is refused naming mac, with both MACs (needs root and the bonding driver)",
          .enabled(if: bondReason == nil, "\(bondReason ?? "")"))
    func otherMAC() async throws {
        let ns = try Namespace()
        try ns.guest(mac: Self.other)
        let found = try #require(await refusal(ns.adapter, mac: Self.mac))
        #expect(found.field == "mac")
        #expect(found.reason.contains(Self.other.description) && found.reason.contains(Self.mac.description), "\(found.reason)")
    }

    @Test("a bond that is not active-backup is refused naming failover.bond, with its mode (needs root and the bonding driver)",
          .enabled(if: bondReason == nil, "\(bondReason ?? "")"))
    func wrongMode() async throws {
        let ns = try Namespace()
        try ns.guest(mode: "balance-rr")
        let found = try #require(await refusal(ns.adapter, mac: Self.mac))
        #expect(found.field == "failover.bond")
        #expect(found.reason.contains("balance-rr"), "\(found.reason)")
    }

    @Test("a standby that is not the bond's slave is refused naming failover.standby (needs root and the bonding driver)",
          .enabled(if: bondReason == nil, "\(bondReason ?? "")"))
    func standbyNotSlave() async throws {
        let ns = try Namespace()
        try ns.guest(enslave: false)
        let found = try #require(await refusal(ns.adapter, mac: Self.mac))
        #expect(found.field == "failover.standby")
        #expect(found.reason.contains("not a slave of bond0") && found.reason.contains("no master"), "\(found.reason)")
    }

    @Test("no link named as the bond, or one that is not a bond, is refused naming failover.bond (needs root)",
          .enabled(if: rootReason == nil, "\(rootReason ?? "")"))
    func noBond() async throws {
        let ns = try Namespace()
        var found = try #require(await refusal(ns.adapter, mac: Self.mac))
        #expect(found.field == "failover.bond" && found.reason.contains("has no link \"bond0\""), "\(found.reason)")
        try ns.run("link add bond0 type veth peer name other0")
        found = try #require(await refusal(ns.adapter, mac: Self.mac))
        #expect(found.field == "failover.bond" && found.reason.contains("a veth, not a bond"), "\(found.reason)")
    }

    @Test("a namespace that does not exist is refused naming failover.namespace (needs root)",
          .enabled(if: rootReason == nil, "\(rootReason ?? "")"))
    func noNamespace() async throws {
        let adapter = NetnsGuest(namespace: "sriovd-none-\(UUID().uuidString.prefix(8))", bond: "bond0", standby: "veth-g")
        let found = try #require(await refusal(adapter, mac: Self.mac))
        #expect(found.field == "failover.namespace" && found.reason.contains("there is no network namespace"), "\(found.reason)")
    }

    @Test("EADDRNOTAVAIL at enslave is said as the two MACs and the field to fix")
    func pinnedMAC() throws {
        let vf = try PCIAddress.parse("0000:01:10.0", field: "vf")
        let error = NetnsGuest.pinnedMAC(
            bond: "bond0", bondMAC: Self.other, vfMAC: Self.mac, vf: vf, kernel: "Cannot assign requested address (errno 99)")
        #expect(error.field == "mac")
        #expect(
            error.reason.hasPrefix("the bond bond0's MAC \(Self.other) differs from the MAC \(Self.mac) the PF pins on the VF 0000:01:10.0"),
            "\(error.reason)")
        #expect(error.description.hasPrefix("mac: "))
    }
}
