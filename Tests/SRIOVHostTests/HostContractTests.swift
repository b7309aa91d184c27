import Foundation
import SRIOVCore
import SRIOVHost
import SRIOVHostTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The host port's contract: the same cases run against `FakeHost` in the
/// unit tests and against the real igb driver in the test VM
/// (Tests/RigTests/Scenarios/contract.sh runs this binary there with
/// `SRIOVD_CONTRACT_PF` naming an igb PF), so the fake every other suite
/// relies on cannot drift from the kernel.
///
/// The kernel variant changes the PF's VF count and its VFs' settings and
/// drivers: it runs only where `SRIOVD_CONTRACT_PF` names a PF for it.
enum ContractHost: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case fake
    case kernel

    /// The PF the kernel variant may change, from `SRIOVD_CONTRACT_PF`.
    static var kernelPF: PCIAddress? {
        ProcessInfo.processInfo.environment["SRIOVD_CONTRACT_PF"].flatMap { try? PCIAddress.parse($0, field: "SRIOVD_CONTRACT_PF") }
    }

    static var available: [ContractHost] { kernelPF == nil ? [.fake] : [.fake, .kernel] }

    var testDescription: String { rawValue }

    /// A fresh subject: a new fake with one igb PF, or the kernel with the PF named.
    func subject() throws -> ContractSubject {
        switch self {
        case .fake:
            let fake = FakeHost(pf: "0000:01:00.0", vfs: 0, autoprobe: true)
            return ContractSubject(host: fake, pf: fake.pf) { fake.setLink(pf: fake.pf, up: false) }
        case .kernel:
            let pf = try #require(Self.kernelPF)
            let sysfs = SysfsTree()
            return ContractSubject(host: KernelHost(sysfs: sysfs, names: PCINames()), pf: pf) {
                let netdev = try #require(sysfs.netdevs(pf).first, "the PF has no netdev")
                try ContractSubject.run("/sbin/ip", "link", "set", "dev", netdev, "down")
            }
        }
    }

    /// Runs one case: a fresh subject with `vfs` fresh VFs (autoprobe off),
    /// the PF back to no VFs after, and the case recorded as run.
    func run(vfs: Int, _ name: String = #function, _ body: (ContractSubject) async throws -> Void) async throws {
        let subject = try subject()
        try await subject.prepare(vfs: vfs)
        try await body(subject)
        try await subject.prepare(vfs: 0)
        record(String(name.prefix { $0 != "(" }))
    }

    /// Appends "RAN <case> <host>" to `SRIOVD_CONTRACT_REPORT`, so the rig
    /// can check that every case ran against the kernel.
    func record(_ name: String) {
        guard let path = ProcessInfo.processInfo.environment["SRIOVD_CONTRACT_REPORT"] else { return }
        let line = "RAN \(name) \(rawValue)\n"
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(Data(line.utf8))
            try? handle.close()
        } else {
            FileManager.default.createFile(atPath: path, contents: Data(line.utf8))
        }
    }
}

struct ContractSubject: Sendable {
    var host: any HostPort
    var pf: PCIAddress
    /// Takes the PF's link down (igb then refuses TX rates).
    var linkDown: @Sendable () async throws -> Void

    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CommandFailed(description: "\(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
    }

    /// Autoprobe off (new VFs bind no driver) and exactly `count` VFs, made fresh.
    func prepare(vfs count: Int) async throws {
        try await host.setDriversAutoprobe(pf: pf, enabled: false)
        try await host.setNumVFs(pf: pf, to: 0, timeout: .seconds(60))
        if count > 0 { try await host.setNumVFs(pf: pf, to: count, timeout: .seconds(60)) }
    }

    func location(_ index: Int) async throws -> VFLocation {
        let address = FakeHost.vfAddress(index, of: pf)
        return try #require(await host.locate(vf: address), "VF \(index) at \(address) not found")
    }

    func outcomes(_ results: [VFAttributeResult]) -> [VFSettingGroup: VFAttributeResult.Outcome] {
        Dictionary(results.map { ($0.group, $0.outcome) }, uniquingKeysWith: { $1 })
    }
}

@Suite("Host port contract (fake, and igb when SRIOVD_CONTRACT_PF is set)", .serialized)
struct HostContractTests {
    static let mac = try! MACAddress.parse("52:54:00:c0:ff:ee", field: "mac")

    @Test("the VF count goes through 0 and back; totalVFs and autoprobe read back", arguments: ContractHost.available)
    func vfCount(_ kind: ContractHost) async throws {
        try await kind.run(vfs: 0) { s in
            #expect(await s.host.totalVFs(pf: s.pf) == 7)
            #expect(await s.host.numVFs(pf: s.pf) == 0)
            #expect(await s.host.vfAddresses(pf: s.pf).isEmpty)
            #expect(await s.host.driversAutoprobe(pf: s.pf) == false)
            try await s.host.setNumVFs(pf: s.pf, to: 3, timeout: .seconds(60))
            #expect(await s.host.numVFs(pf: s.pf) == 3)
            // Between two nonzero counts the host goes through 0 itself.
            try await s.host.setNumVFs(pf: s.pf, to: 2, timeout: .seconds(60))
            #expect(await s.host.numVFs(pf: s.pf) == 2)
            #expect(await s.host.vfAddresses(pf: s.pf).map(\.index) == [0, 1])
            try await s.host.setNumVFs(pf: s.pf, to: 0, timeout: .seconds(60))
            #expect(await s.host.numVFs(pf: s.pf) == 0)
        }
    }

    @Test("VF n sits at the PF's routing id + 0x80 + 2n; locate finds each VF, and nothing else", arguments: ContractHost.available)
    func addresses(_ kind: ContractHost) async throws {
        try await kind.run(vfs: 5) { s in
            let vfs = await s.host.vfAddresses(pf: s.pf)
            #expect(vfs.map(\.index) == [0, 1, 2, 3, 4])
            #expect(vfs.map(\.address) == (0..<5).map { FakeHost.vfAddress($0, of: s.pf) })
            for vf in vfs {
                #expect(await s.host.locate(vf: vf.address) == VFLocation(vf: vf.address, pf: s.pf, index: vf.index))
            }
            #expect(await s.host.locate(vf: s.pf) == nil, "a PF is not a VF")
            #expect(await s.host.locate(vf: FakeHost.vfAddress(6, of: s.pf)) == nil, "VF 6 does not exist with 5 VFs")
            let detail = try #require(try await s.host.physicalFunction(s.pf))
            #expect(detail.pf.numVFs == 5 && detail.pf.totalVFs == 7 && detail.pf.driver == "igb")
            #expect(detail.vfs.map(\.pciAddress) == vfs.map(\.address))
            #expect(try await s.host.physicalFunction(vfs[0].address) == nil, "a VF is not a PF")
        }
    }

    @Test("settings written are read back: MAC, VLAN with QoS, spoof check, trust", arguments: ContractHost.available)
    func settingsReadBack(_ kind: ContractHost) async throws {
        try await kind.run(vfs: 2) { s in
            let vf = try await s.location(1)
            let fresh = try await s.host.settings(of: vf)
            #expect(fresh.mac == .zero && fresh.vlan == VLANID.none && fresh.spoofCheck == true && fresh.trust == false)
            let config = VFConfig(mac: Self.mac, vlan: try VLANID(100), qos: try VLANQoS(3), spoofCheck: false, trust: true)
            let results = await s.host.write(config, to: vf)
            #expect(results.map(\.group) == [.mac, .vlan, .spoofCheck, .trust])
            #expect(results.allSatisfy { $0.outcome == .applied }, "\(results)")
            let now = try await s.host.settings(of: vf)
            #expect(now.mac == Self.mac)
            #expect(try now.vlan == VLANID(100) && now.qos == VLANQoS(3))
            #expect(now.spoofCheck == false && now.trust == true)
            // The other VF is untouched.
            #expect(try await s.host.settings(of: try await s.location(0)).mac == .zero)
            // VLAN 0 clears the tag.
            #expect(await s.host.write(VFConfig(vlan: VLANID.none), to: vf).map(\.outcome) == [.applied])
            #expect(try await s.host.settings(of: vf).vlan == VLANID.none)
        }
    }

    @Test("igb has no link-state or RSS-query operation: reported unsupported, the rest applied", arguments: ContractHost.available)
    func unsupported(_ kind: ContractHost) async throws {
        try await kind.run(vfs: 1) { s in
            let vf = try await s.location(0)
            let results = s.outcomes(await s.host.write(VFConfig(trust: true, linkState: .enable, rssQuery: true), to: vf))
            #expect(results[.trust] == .applied)
            guard case .unsupported = results[.linkState] else { Issue.record("link state: \(String(describing: results[.linkState]))"); return }
            guard case .unsupported = results[.rssQuery] else { Issue.record("RSS query: \(String(describing: results[.rssQuery]))"); return }
            let now = try await s.host.settings(of: vf)
            #expect(now.trust == true)
            #expect(now.linkState == .auto, "link state unchanged")
        }
    }

    @Test("a TX rate is refused (EINVAL) while the PF link is down", arguments: ContractHost.available)
    func rateWhileLinkDown(_ kind: ContractHost) async throws {
        try await kind.run(vfs: 1) { s in
            try await s.linkDown()
            let vf = try await s.location(0)
            let results = await s.host.write(VFConfig(maxTxRate: 100), to: vf)
            #expect(results.map(\.group) == [.txRate])
            guard case .failed(let code, _) = results.first?.outcome else { Issue.record("\(results)"); return }
            #expect(code == EINVAL)
            #expect(try await s.host.settings(of: vf).maxTxRate == 0)
        }
    }

    @Test("drivers are bound and unbound by choice: host driver, none, vfio-pci", arguments: ContractHost.available)
    func binding(_ kind: ContractHost) async throws {
        try await kind.run(vfs: 1) { s in
            let vf = try await s.location(0).vf
            #expect(await s.host.driver(of: vf) == nil, "autoprobe off: no driver")
            try await s.host.bind(vf, to: .host)
            #expect(await s.host.driver(of: vf) == "igbvf")
            try await s.host.bind(vf, to: .none)
            #expect(await s.host.driver(of: vf) == nil)
            try await s.host.bind(vf, to: .vfio)
            #expect(await s.host.driver(of: vf) == "vfio-pci")
            #expect(await s.host.describe(try await s.location(0), settings: VFSettings()).iommuGroup != nil)
            try await s.host.bind(vf, to: .none)
            #expect(await s.host.driver(of: vf) == nil)
        }
    }

    @Test("bad input is refused and changes nothing: a count above total, a VF index out of range", arguments: ContractHost.available)
    func badInput(_ kind: ContractHost) async throws {
        try await kind.run(vfs: 2) { s in
            await #expect(throws: (any Error).self) {
                try await s.host.setNumVFs(pf: s.pf, to: 8, timeout: .seconds(10))
            }
            #expect(await s.host.numVFs(pf: s.pf) == 2)
            let missing = VFLocation(vf: FakeHost.vfAddress(5, of: s.pf), pf: s.pf, index: 5)
            let results = await s.host.write(VFConfig(trust: true), to: missing)
            guard case .failed(let code, _) = results.first?.outcome else { Issue.record("\(results)"); return }
            #expect(code == EINVAL)
        }
    }
}
