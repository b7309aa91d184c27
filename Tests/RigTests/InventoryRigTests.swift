import Foundation
import Testing

/// What sysfs said in the VM, parsed from the scenario's dump.
struct SysfsDump {
    struct PF { var fields: [String: String] }
    struct VF { var pf: String; var index: Int; var pci: String; var fields: [String: String] }
    var pfs: [String: PF] = [:]
    var vfs: [VF] = []

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            func kv(_ from: Int) -> [String: String] {
                var d: [String: String] = [:]
                for w in words.dropFirst(from) {
                    let parts = w.split(separator: "=", maxSplits: 1).map(String.init)
                    d[parts[0]] = parts.count > 1 ? parts[1] : ""
                }
                return d
            }
            if words.first == "pf" { pfs[words[1]] = PF(fields: kv(2)) }
            if words.first == "vf" { vfs.append(VF(pf: words[1], index: Int(words[2])!, pci: words[3], fields: kv(4))) }
        }
    }
}

/// A VF as `ip -d -j link show` reports it.
struct IPVF: Equatable {
    var mac: String?
    var vlan: Int
    var qos: Int
    /// ip prints the VLAN protocol only when it is not 802.1Q.
    var vlanProto: String?
    var spoofCheck: Bool?
    var trust: Bool?
    var linkState: String?
    var maxTx: Int?
    var minTx: Int?

    init(_ o: [String: Any]) {
        mac = o["address"] as? String
        if let list = o["vlan_list"] as? [[String: Any]], let first = list.first {
            vlan = first["vlan"] as? Int ?? 0
            qos = first["qos"] as? Int ?? 0
            vlanProto = first["protocol"] as? String
        } else {
            vlan = o["vlan"] as? Int ?? 0
            qos = o["qos"] as? Int ?? 0
        }
        spoofCheck = o["spoofchk"] as? Bool
        trust = o["trust"] as? Bool
        linkState = o["link_state"] as? String
        let rate = o["rate"] as? [String: Any]
        maxTx = rate?["max_tx"] as? Int
        minTx = rate?["min_tx"] as? Int
    }
}

@Suite("Inventory on the real igb driver (SR-IOV test VM; needs root, QEMU, virtme-ng)", .serialized,
       .enabled(if: Rig.shouldRun, "SR-IOV test VM unavailable: \(Rig.unavailableReason ?? "")"))
struct InventoryRigTests {
    static let scenario = RigScenario(name: "inventory", pfs: 2)

    func check(snapshot: String, in out: URL) throws {
        let sysfs = SysfsDump(try out.file("\(snapshot).sysfs.txt"))
        let pfs = try #require((try out.json("\(snapshot).pfs.json") as? [String: Any])?["pfs"] as? [[String: Any]])
        let vfs = try #require((try out.json("\(snapshot).vfs.json") as? [String: Any])?["vfs"] as? [[String: Any]])

        // Every PF sysfs knows, and nothing else, field by field.
        #expect(sysfs.pfs.count == 2, "the VM has two igb PFs")
        #expect(Set(pfs.compactMap { $0["pciAddress"] as? String }) == Set(sysfs.pfs.keys))
        for pf in pfs {
            let address = try #require(pf["pciAddress"] as? String)
            let s = try #require(sysfs.pfs[address]).fields
            #expect(pf["totalVFs"] as? Int == Int(s["totalvfs"]!), "\(address) totalVFs")
            #expect(pf["numVFs"] as? Int == Int(s["numvfs"]!), "\(address) numVFs")
            #expect(pf["driver"] as? String == s["driver"], "\(address) driver")
            #expect(pf["netdev"] as? String == s["netdev"], "\(address) netdev")
            #expect(pf["ifindex"] as? Int == Int(s["ifindex"]!), "\(address) ifindex")
            #expect(pf["driversAutoprobe"] as? Bool == (s["autoprobe"] == "1"), "\(address) autoprobe")
            #expect(pf["vendorID"] as? Int == Int(s["vendor"]!.dropFirst(2), radix: 16), "\(address) vendor")
            #expect(pf["deviceID"] as? Int == Int(s["device"]!.dropFirst(2), radix: 16), "\(address) device")
            let numa = Int(s["numa"]!)!
            #expect((pf["numaNode"] as? Int) == (numa < 0 ? nil : numa), "\(address) numaNode")
            #expect((pf["vendorName"] as? String)?.contains("Intel") == true, "\(address) vendor name from pci.ids")

            let ip = try #require((try out.json("\(snapshot).ip-\(address).json") as? [[String: Any]])?.first)
            #expect((pf["mac"] as? String) == (ip["address"] as? String), "\(address) MAC")
            #expect((pf["adminUp"] as? Bool) == ((ip["flags"] as? [String])?.contains("UP") ?? false), "\(address) admin up")
            #expect(pf["netdev"] as? String == ip["ifname"] as? String)

            // The PF detail endpoint agrees with the lists.
            let detail = try #require(try out.json("\(snapshot).pf-\(address).json") as? [String: Any])
            #expect((detail["pf"] as? [String: Any])?["pciAddress"] as? String == address)
            #expect((detail["vfs"] as? [Any])?.count == Int(s["numvfs"]!))

            // VF settings: as the PF's netlink reply (ip -d) reports them.
            let ipVFs = try #require(ip["vfinfo_list"] as? [[String: Any]], "ip reports VFs of \(address)")
            let mine = vfs.filter { $0["pf"] as? String == address }
            #expect(mine.count == ipVFs.count, "\(address): as many VFs as ip reports")
            for o in ipVFs {
                let ipvf = IPVF(o)
                let index = try #require(o["vf"] as? Int)
                let vf = try #require(mine.first { $0["index"] as? Int == index }, "\(address) VF \(index)")
                let at = "\(address) VF \(index)"
                #expect(vf["mac"] as? String == ipvf.mac, "\(at) mac")
                #expect(vf["vlan"] as? Int == ipvf.vlan, "\(at) vlan")
                #expect(vf["qos"] as? Int == ipvf.qos, "\(at) qos")
                #expect(vf["vlanProto"] as? String == ipvf.vlanProto ?? "802.1Q", "\(at) vlanProto")
                #expect(vf["spoofCheck"] as? Bool == ipvf.spoofCheck, "\(at) spoofCheck")
                #expect(vf["trust"] as? Bool == ipvf.trust, "\(at) trust")
                #expect(vf["linkState"] as? String == ipvf.linkState, "\(at) linkState")
                // igb reports both rates (no limit: 0; its minimum is always 0).
                #expect(ipvf.maxTx == 0 && vf["maxTxRate"] as? Int == 0, "\(at) maxTxRate")
                #expect(ipvf.minTx == 0 && vf["minTxRate"] as? Int == 0, "\(at) minTxRate")
            }
        }

        // VFs: the same set as sysfs's virtfn links, with driver, netdev and IOMMU group.
        #expect(vfs.count == sysfs.vfs.count)
        for s in sysfs.vfs {
            let vf = try #require(vfs.first { $0["pciAddress"] as? String == s.pci }, "VF \(s.pci)")
            #expect(vf["pf"] as? String == s.pf)
            #expect(vf["index"] as? Int == s.index)
            #expect((vf["driver"] as? String ?? "-") == s.fields["driver"], "\(s.pci) driver")
            #expect((vf["netdev"] as? String ?? "") == (s.fields["netdev"] ?? ""), "\(s.pci) netdev")
            #expect((vf["iommuGroup"] as? Int).map(String.init) ?? "-" == s.fields["iommu"], "\(s.pci) IOMMU group")
        }
    }

    @Test("/v1/pfs and /v1/vfs agree field by field with sysfs and ip -d link")
    func agreesWithKernel() async throws {
        let out = try await Self.scenario.output()
        try check(snapshot: "before", in: out)

        // The settings the scenario made are really seen (not two empty sides agreeing).
        let vfs = try #require((try out.json("before.vfs.json") as? [String: Any])?["vfs"] as? [[String: Any]])
        let sysfs = SysfsDump(try out.file("before.sysfs.txt"))
        let pf1 = try #require(sysfs.pfs.keys.sorted().first)
        let vf0 = try #require(vfs.first { $0["pf"] as? String == pf1 && $0["index"] as? Int == 0 })
        #expect(vf0["mac"] as? String == "52:54:00:aa:00:01")
        #expect(vf0["vlan"] as? Int == 100)
        #expect(vf0["qos"] as? Int == 3)
        let vf1 = try #require(vfs.first { $0["pf"] as? String == pf1 && $0["index"] as? Int == 1 })
        #expect(vf1["spoofCheck"] as? Bool == false)
        #expect(vf1["trust"] as? Bool == true)
        #expect(vfs.filter { $0["pf"] as? String == pf1 }.count == 3)
    }

    @Test("a renamed PF netdev is still found by its PCI address")
    func survivesRename() async throws {
        let out = try await Self.scenario.output()
        try check(snapshot: "renamed", in: out)
        let pfs = try #require((try out.json("renamed.pfs.json") as? [String: Any])?["pfs"] as? [[String: Any]])
        #expect(pfs.contains { $0["netdev"] as? String == "sriovren0" })
    }

    @Test("the state store keeps the PFs and VFs seen; a PF removed while sriovd was down is recorded gone, then back")
    func seenDevices() async throws {
        let out = try await Self.scenario.output()
        func seen(_ name: String) throws -> (pfs: [[String: Any]], vfs: [[String: Any]]) {
            let o = try #require(try out.json(name) as? [String: [[String: Any]]])
            return (o["seenPF"] ?? [], o["seenVF"] ?? [])
        }
        // As sysfs had it (after the rename: the PF's netdev is the new name).
        let sysfs = SysfsDump(try out.file("renamed.sysfs.txt"))
        let first = try seen("seen-1.json")
        #expect(Set(first.pfs.compactMap { $0["pci"] as? String }) == Set(sysfs.pfs.keys))
        for row in first.pfs {
            let pci = try #require(row["pci"] as? String)
            let s = try #require(sysfs.pfs[pci]).fields
            #expect(row["numVFs"] as? Int == Int(s["numvfs"]!), "\(pci) numVFs")
            #expect(row["totalVFs"] as? Int == Int(s["totalvfs"]!), "\(pci) totalVFs")
            #expect(row["driver"] as? String == s["driver"], "\(pci) driver")
            #expect(row["netdev"] as? String == s["netdev"], "\(pci) netdev")
            #expect(row["goneSince"] is NSNull, "\(pci) present")
        }
        #expect(Set(first.vfs.compactMap { $0["pci"] as? String }) == Set(sysfs.vfs.map(\.pci)))
        let pf1 = try #require(sysfs.pfs.keys.sorted().first)
        let pf2 = try #require(sysfs.pfs.keys.sorted().last)
        let vf0 = try #require(first.vfs.first { $0["pf"] as? String == pf1 && $0["vfIndex"] as? Int == 0 })
        #expect(vf0["mac"] as? String == "52:54:00:aa:00:01")

        let removed = try seen("seen-2.json")
        let pf2Row = try #require(removed.pfs.first { $0["pci"] as? String == pf2 })
        #expect(pf2Row["goneSince"] is String, "PF 2 recorded gone: \(pf2Row)")
        #expect(removed.vfs.filter { $0["pf"] as? String == pf2 }.allSatisfy { $0["goneSince"] is String })
        #expect(removed.pfs.first { $0["pci"] as? String == pf1 }?["goneSince"] is NSNull)

        let back = try seen("seen-3.json")
        let pf2Back = try #require(back.pfs.first { $0["pci"] as? String == pf2 })
        #expect(pf2Back["goneSince"] is NSNull, "PF 2 back: \(pf2Back)")
        #expect(pf2Back["firstSeen"] as? String == pf2Row["firstSeen"] as? String, "first seen kept")

        let log = try out.file("sriovd.log")
        #expect(log.contains("PF seen before is gone") && log.contains(pf2))
        #expect(log.contains("PF is back"))
    }

    @Test("sriovctl: readable tables, and exit codes for bad and unknown addresses")
    func sriovctl() async throws {
        let out = try await Self.scenario.output()
        let tables = try out.file("tables.txt")
        #expect(tables.contains("52:54:00:aa:00:01"))
        #expect(tables.contains("igb"))
        let errors = try out.file("errors.txt")
        #expect(errors.contains("bad_address_exit=64"))
        #expect(errors.contains("unknown_pf_exit=1"))
        #expect(try out.file("bad-address.err").contains("0000:zz:00.0"))
    }

    @Test("SIGTERM stops sriovd within 5 s and removes its socket")
    func gracefulStop() async throws {
        let out = try await Self.scenario.output()
        let text = try out.file("shutdown.txt")
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let p = line.split(separator: "=", maxSplits: 1).map(String.init)
            if p.count == 2 { fields[p[0]] = p[1] }
        }
        #expect(fields["exit_code"] == "0")
        #expect(fields["socket_removed"] == "yes")
        let ms = try #require(fields["stop_ms"].flatMap { Int($0) })
        #expect(ms < 5000, "stopped in \(ms) ms")
    }
}
