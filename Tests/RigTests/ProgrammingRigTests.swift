import Foundation
import SRIOVDaemon
import Testing

@Suite("VF programming on the real igb driver (SR-IOV test VM; needs root, QEMU, virtme-ng)", .serialized,
       .enabled(if: Rig.shouldRun, "SR-IOV test VM unavailable: \(Rig.unavailableReason ?? "")"))
struct ProgrammingRigTests {
    static let scenario = RigScenario(name: "programming", batch: .onePF)

    func status(_ out: URL, _ name: String) throws -> Int { try #require(try out.status(name), "\(name).status") }

    func body(_ out: URL, _ name: String) throws -> [String: Any] { try out.body(name) }

    func ipVF(_ out: URL, _ name: String, index: Int = 0) throws -> IPVF {
        let link = try #require((try out.json("\(name).ip.json") as? [[String: Any]])?.first)
        let list = try #require(link["vfinfo_list"] as? [[String: Any]])
        return IPVF(try #require(list.first { $0["vf"] as? Int == index }))
    }

    func outcomes(_ body: [String: Any]) -> [String: String] {
        var d: [String: String] = [:]
        for r in body["results"] as? [[String: Any]] ?? [] {
            if let s = r["setting"] as? String, let o = r["outcome"] as? String { d[s] = o }
        }
        return d
    }

    func keyValues(_ text: String) -> [String: String] {
        var d: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let p = line.split(separator: "=", maxSplits: 1).map(String.init)
            if p.count == 2 { d[p[0]] = p[1] }
        }
        return d
    }

    @Test("VF counts 0→3→5→2→0 through the API; above totalVFs refused with nothing changed")
    func transitions() async throws {
        let out = try await Self.scenario.output()
        let lines = try out.file("transitions.txt").split(separator: "\n").map(String.init)
        #expect(lines.prefix(4) == ["3 3 3", "5 5 5", "2 2 2", "0 0 0"])
        #expect(lines.contains("after-refusals 0"))
        for n in [3, 5, 2, 0] { #expect(try status(out, "numvfs-\(n)") == 200) }
        #expect(try status(out, "numvfs-too-many") == 400)
        #expect(try body(out, "numvfs-too-many")["field"] as? String == "numVFs")
        #expect(try status(out, "numvfs-bad-type") == 400)
        #expect(try body(out, "numvfs-bad-type")["field"] as? String == "numVFs")
    }

    @Test("every setting igb supports round-trips; link state and RSS query are reported unsupported and block nothing")
    func settingsRoundTrip() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "set-all") == 200)
        let results = outcomes(try body(out, "set-all"))
        #expect(results["mac"] == "applied")
        #expect(results["vlan"] == "applied")
        #expect(results["spoofCheck"] == "applied")
        #expect(results["trust"] == "applied")
        #expect(results["linkState"] == "unsupported")
        #expect(results["rssQuery"] == "unsupported")
        let vf = try ipVF(out, "after-set")
        #expect(vf.mac == "52:54:00:12:34:56")
        #expect(vf.vlan == 100 && vf.qos == 3)
        #expect(vf.spoofCheck == false && vf.trust == true)
        // The API's own view of the VF agrees with ip.
        let reported = try #require(try body(out, "set-all")["vf"] as? [String: Any])
        #expect(reported["mac"] as? String == "52:54:00:12:34:56")
        #expect(reported["vlan"] as? Int == 100)
        // igb does not report the RSS query switch (the kernel's -1 preset stays): unknown, not "off".
        #expect(reported["rssQuery"] == nil)
    }

    /// VF `index` as `GET /v1/vfs?pf=` answered in the call `name`.
    func apiVF(_ out: URL, _ name: String, index: Int = 0) throws -> [String: Any] {
        let vfs = try #require(try body(out, name)["vfs"] as? [[String: Any]])
        return try #require(vfs.first { $0["index"] as? Int == index })
    }

    @Test("rollback on igb: a VLAN igb refuses (802.1ad) fails; the MAC, spoof check and trust it applied are undone and read back as before")
    func rollback() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "set-qinq") == 500)
        let answer = try body(out, "set-qinq")
        #expect(outcomes(answer) == ["mac": "rolledBack", "vlan": "failed", "spoofCheck": "rolledBack", "trust": "rolledBack"])
        let vlan = try #require((answer["results"] as? [[String: Any]])?.first { $0["setting"] as? String == "vlan" })
        // igb_ndo_set_vf_vlan: anything but 802.1Q is EPROTONOSUPPORT.
        #expect((vlan["detail"] as? String)?.contains("Protocol not supported") == true, "\(vlan)")
        // Netlink: exactly as before the request (set-all's values).
        let before = try ipVF(out, "after-set")
        let after = try ipVF(out, "after-qinq")
        #expect(after == before)
        #expect(after.mac == "52:54:00:12:34:56" && after.vlan == 100 && after.qos == 3 && after.vlanProto == nil)
        #expect(after.spoofCheck == false && after.trust == true)
        let text = try out.file("after-qinq.ip.txt").split(separator: "\n").first { $0.contains("vf 0 ") }
        #expect(
            text?.contains("link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff, vlan 100, qos 3, spoof checking off") == true,
            "\(text ?? "no vf 0 line")")
        #expect(text?.contains("trust on") == true && text?.contains("802.1ad") == false)
        // The API reads the same back.
        let vf = try apiVF(out, "after-qinq-vfs")
        #expect(vf["mac"] as? String == "52:54:00:12:34:56")
        #expect(vf["vlan"] as? Int == 100 && vf["qos"] as? Int == 3 && vf["vlanProto"] as? String == "802.1Q")
        #expect(vf["spoofCheck"] as? Bool == false && vf["trust"] as? Bool == true)
    }

    @Test("TX rate on igb (PF link up): a maximum is applied and read back; a minimum is refused, igb has none, and changes nothing")
    func txRate() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "set-rate") == 200)
        #expect(outcomes(try body(out, "set-rate")) == ["txRate": "applied"])
        let afterRate = try ipVF(out, "after-rate")
        #expect(afterRate.maxTx == 100 && afterRate.minTx == 0)
        #expect(try status(out, "set-min-rate") == 500)
        #expect(outcomes(try body(out, "set-min-rate")) == ["txRate": "failed"])
        let afterMin = try ipVF(out, "after-min-rate")
        #expect(afterMin == afterRate)
    }

    @Test("bad input is a 400 naming the field, and changes nothing")
    func badInput() async throws {
        let out = try await Self.scenario.output()
        let expected = [
            "bad-vlan": "vlan", "bad-qos": "qos", "bad-mac": "mac", "bad-zero-mac": "mac", "bad-field": "vlanid",
            "bad-json": "body", "bad-address": "pciAddress",
        ]
        for (name, field) in expected {
            #expect(try status(out, name) == 400, "\(name)")
            let problem = try body(out, name)
            #expect(problem["field"] as? String == field, "\(name)")
            #expect((problem["detail"] as? String)?.isEmpty == false, "\(name)")
        }
        #expect(try status(out, "not-a-vf") == 404)
        let before = try ipVF(out, "before-bad")
        let after = try ipVF(out, "after-bad")
        #expect(before.mac == after.mac && before.vlan == after.vlan && before.qos == after.qos)
        #expect(before.spoofCheck == after.spoofCheck && before.trust == after.trust && before.maxTx == after.maxTx)
    }

    @Test("restore leaves the VF as it was found")
    func restore() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "restore") == 200)
        let original = try ipVF(out, "original")
        let restored = try ipVF(out, "after-restore")
        #expect(restored.mac == original.mac)
        #expect(restored.vlan == original.vlan && restored.qos == original.qos)
        #expect(restored.spoofCheck == original.spoofCheck)
        #expect(restored.trust == original.trust)
        #expect(restored.maxTx == original.maxTx)
        // igb only has 802.1Q (ip prints no protocol for it) and no minimum
        // TX rate (it reports 0): so they were, and so they are again.
        #expect(original.vlanProto == nil && restored.vlanProto == nil)
        #expect(original.minTx == 0 && restored.minTx == 0)
        #expect(restored == original)
        let vf = try #require(try body(out, "restore")["vf"] as? [String: Any])
        #expect(vf["vlanProto"] as? String == "802.1Q")
        #expect(vf["minTxRate"] as? Int == 0 && vf["maxTxRate"] as? Int == 0)
    }

    @Test("binding: vfio-pci with the emulated IOMMU, back to igbvf, then none; unknown driver refused")
    func binding() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "bind-vfio") == 200)
        let vfio = keyValues(try out.file("bind-vfio.txt"))
        #expect(vfio["driver"] == "vfio-pci")
        #expect(vfio["devnode"] == "yes")
        #expect(keyValues(try out.file("bind-host.txt"))["driver"] == "igbvf")
        #expect(keyValues(try out.file("bind-none.txt"))["driver"] == "none")
        #expect(try status(out, "bind-bad") == 400)
        #expect(try body(out, "bind-bad")["field"] as? String == "driver")
    }

    // igb logs "Reload the VF driver to make this change effective" for every
    // MAC set, bound or not; what matters is the MAC igbvf comes up with.
    @Test("a MAC set before igbvf binds is the VF netdev's MAC at once")
    func macAtBind() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "bind-vf2-host") == 200)
        let facts = keyValues(try out.file("mac-at-bind.txt"))
        #expect(facts["netdev"] != "none")
        #expect(facts["netdev_mac"] == "52:54:00:ab:cd:02")
    }

    @Test("the API's VF answers carry the VF's identity, not only its settings")
    func responseIdentity() async throws {
        let out = try await Self.scenario.output()
        let vf = try #require(try body(out, "set-all")["vf"] as? [String: Any])
        let group = try out.file("vf0-iommu-group.txt").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(vf["iommuGroup"] as? Int == Int(group), "sysfs: group \(group)")
        let pf = (try body(out, "numvfs-3")["pf"] as? [String: Any])?["pciAddress"] as? String
        #expect(pf != nil && vf["pf"] as? String == pf)
        #expect(vf["pciAddress"] as? String == (try out.file("vfs.txt")).split(separator: " ").first.map(String.init))
        #expect(vf["index"] as? Int == 0)
    }

    @Test("lowering the count over a VF in use is refused (409) unless forced")
    func lowering() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "lower-refused") == 409)
        let lines = try out.file("transitions.txt")
        #expect(lines.contains("after-refused 3"))
        #expect(try status(out, "lower-forced") == 200)
        #expect(lines.contains("after-forced 1"))
    }

    @Test("with autoprobe on, the count change returns once igbvf's VF netdevs exist")
    func autoprobeWaitsForNetdevs() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "autoprobe-2") == 200)
        let detail = try body(out, "autoprobe-2")
        let vfs = try #require(detail["vfs"] as? [[String: Any]])
        #expect(vfs.count == 2)
        for vf in vfs {
            #expect(vf["driver"] as? String == "igbvf")
            #expect((vf["netdev"] as? String)?.isEmpty == false)
        }
    }

    @Test("every state change is one native journal record with its fields and MESSAGE_ID; release_action scrub clears the VF")
    func journalRecords() async throws {
        let out = try await Self.scenario.output()
        let records = try out.file("journal.jsonl").split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        }
        let pf = try #require((try out.body("j-numvfs")["pf"] as? [String: Any])?["pciAddress"] as? String)
        let vf = try out.file("journal-vf.txt").trimmingCharacters(in: .whitespacesAndNewlines)
        for name in ["j-numvfs", "j-settings", "j-bind", "j-unbind", "j-restore", "j-change", "j-release"] {
            #expect(try out.status(name) == 200, "\(name)")
        }
        #expect(try out.status("j-assign") == 201)
        let assignedVF = try #require(try out.body("j-assign")["vf"] as? String)

        func events(_ id: MessageID) -> [[String: String]] { records.filter { $0["MESSAGE_ID"] == id.id } }
        for record in records {
            #expect(record["SYSLOG_IDENTIFIER"] == "sriovd")
            #expect(record["PRIORITY"].flatMap { Int($0) }.map { (0...7).contains($0) } == true)
        }
        let numVFs = try #require(events(.pfNumVFs).first)
        #expect(numVFs["SRIOVD_PF"] == pf && numVFs["SRIOVD_NUMVFS"] == "3" && numVFs["SRIOVD_OP"] == "pf.numvfs")

        // The VF's own changes: settings, vfio-pci, none, restore; no VM or NIC.
        let direct = records.filter { $0["SRIOVD_VF"] == vf && $0["SRIOVD_VM"] == nil && $0["MESSAGE_ID"] != nil }
        #expect(
            direct.map { $0["MESSAGE_ID"] }
                == [MessageID.vfConfigured, .vfBound, .vfBound, .vfRestored].map(\.id), "\(direct)")
        #expect(direct.allSatisfy { $0["SRIOVD_PF"] == pf })
        #expect(direct.first?["SRIOVD_RESULTS"]?.contains("vlan=applied") == true)
        #expect(direct.filter { $0["MESSAGE_ID"] == MessageID.vfBound.id }.map { $0["SRIOVD_DRIVER"] } == ["vfio-pci", "none"])

        // The assignment's: each names the VM and NIC, including the VF changes made for it.
        let forNIC = records.filter { $0["SRIOVD_VM"] == "vm-j" && $0["MESSAGE_ID"] != nil }
        #expect(
            forNIC.map { $0["MESSAGE_ID"] }
                == [
                    MessageID.vfConfigured, .vfBound, .assignmentCreated, .vfConfigured, .assignmentChanged, .vfBound,
                    .vfScrubbed, .assignmentReleased,
                ].map(\.id), "\(forNIC.map { $0["MESSAGE"] ?? "" })")
        #expect(forNIC.allSatisfy { $0["SRIOVD_NIC"] == "net0" && $0["SRIOVD_VF"] == assignedVF && $0["SRIOVD_PF"] == pf })
        #expect(events(.assignmentCreated).first?["SRIOVD_OP"] == "assignment.create")
        #expect(events(.assignmentReleased).first?["SRIOVD_OP"] == "assignment.release")

        // Scrubbed at release: the earlier user's MAC and trust are gone too.
        let index = try #require(try out.body("j-assign")["vfIndex"] as? Int)
        let released = try ipVF(out, "j-after-release", index: index)
        #expect(released.mac == "00:00:00:00:00:00" && released.trust == false && released.vlan == 0)
    }

    @Test("scrub clears a VF on igb: zero MAC, no VLAN, spoof check on, trust off; link state and RSS query unsupported")
    func scrub() async throws {
        let out = try await Self.scenario.output()
        #expect(try status(out, "scrub-set") == 200)
        #expect(try status(out, "scrub") == 200)
        let results = outcomes(try body(out, "scrub"))
        for setting in ["mac", "vlan", "spoofCheck", "trust"] { #expect(results[setting] == "applied", "\(setting)") }
        #expect(results["linkState"] == "unsupported" && results["rssQuery"] == "unsupported")
        let vf = try ipVF(out, "after-scrub", index: 1)
        #expect(vf.mac == "00:00:00:00:00:00")
        #expect(vf.vlan == 0 && vf.qos == 0)
        #expect(vf.spoofCheck == true && vf.trust == false)
    }
}
