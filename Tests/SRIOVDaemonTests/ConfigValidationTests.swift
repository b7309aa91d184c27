import Testing

@testable import SRIOVCore
@testable import SRIOVDaemon

/// Every kind of mistake is reported with its line and key, and all of them
/// at once.
@Suite struct ConfigValidationTests {
    private func errors(_ text: String) -> [ConfigurationError] {
        do {
            _ = try SRIOVConfiguration.parse(text, fileName: "sriovd.toml")
            return []
        } catch {
            return error.errors
        }
    }

    /// `text` is refused with exactly these errors: (line, key, words of the message).
    private func expectErrors(
        _ text: String, _ expected: [(line: Int, key: String?, words: String)],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let found = errors(text)
        let listing = found.map(\.description).joined(separator: "\n")
        #expect(found.count == expected.count, "\(listing)", sourceLocation: sourceLocation)
        for (e, x) in zip(found, expected) {
            #expect(e.file == "sriovd.toml", sourceLocation: sourceLocation)
            #expect(e.line == x.line, "\(e)", sourceLocation: sourceLocation)
            #expect(e.key == x.key, "\(e)", sourceLocation: sourceLocation)
            #expect(e.message.contains(x.words), "\(e)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Valid input

    @Test func emptyFileIsTheDefaults() throws {
        #expect(try SRIOVConfiguration.parse("", fileName: "x") == .defaults)
        #expect(try SRIOVConfiguration.parse("[daemon]\n", fileName: "x") == .defaults)
    }

    @Test func readsEveryDaemonSetting() throws {
        let c = try SRIOVConfiguration.parse(
            """
            [daemon]
            socket = "/run/other/api.sock"
            socket_mode = "750"
            admin_group = ""
            reader_group = "netops"
            state_dir = "/srv/sriovd"
            log_level = "debug"
            log_target = "journal"
            max_request_bytes = 1_048_576
            reconcile_interval_seconds = 0
            numvfs_timeout_seconds = 300
            release_action = "scrub"
            drift = "report"
            unplug_timeout_seconds = 60
            hook_timeout_seconds = 90
            """, fileName: "x")
        let d = c.daemon
        #expect(d.socket == "/run/other/api.sock")
        #expect(d.socketMode == 0o750)
        #expect(d.adminGroup == nil)
        #expect(d.readerGroup == "netops")
        #expect(d.stateDirectory == "/srv/sriovd")
        #expect(d.logLevel == .debug)
        #expect(d.logTarget == .journal)
        #expect(d.maxRequestBytes == 1_048_576)
        #expect(d.reconcileInterval == .zero)
        #expect(d.numVFsTimeout == .seconds(300))
        #expect(d.releaseAction == .scrub)
        #expect(d.drift == .report)
        #expect(SRIOVConfiguration.defaults.daemon.drift == .correct)
        #expect(d.unplugTimeout == .seconds(60))
        #expect(d.hookTimeout == .seconds(90))
        #expect(SRIOVConfiguration.defaults.daemon.unplugTimeout == .seconds(20))
        #expect(SRIOVConfiguration.defaults.daemon.hookTimeout == .seconds(30))
    }

    @Test func readsPFsPoolsAndVFsIntoDomainValues() throws {
        let c = try SRIOVConfiguration.parse(
            """
            [[pf]]
            pci = "01:00.0"
            num_vfs = 8
            vf_defaults = { spoof_check = false, link_state = "enable", max_tx_rate = 1000 }
            [[pf.pool]]
            name = "a"
            vfs = "0-3, 6"
            [[pf.pool]]
            name = "b"
            vfs = "4,5,7"
            labels.rack = "r1"

            [[pf]]
            vendor_device = "8086:1521"

            [[vf]]
            pf = "0000:01:00.0"
            index = 7
            mac = "52-54-00-AB-CD-EF"
            vlan = 4094
            qos = 7
            vlan_proto = "802.1ad"
            min_tx_rate = 100
            max_tx_rate = 0
            """, fileName: "x")
        #expect(c.pfs.count == 2)
        let pf = c.pfs[0]
        #expect(pf.match == .pciAddress(PCIAddress(bus: 1, device: 0, function: 0)))
        #expect(pf.numVFs == 8)
        #expect(pf.driversAutoprobe == nil)
        #expect(pf.vfDriver == nil)
        #expect(pf.vfDefaults == VFConfig(spoofCheck: false, linkState: .enable, maxTxRate: 1000))
        #expect(pf.pools.map(\.name) == ["a", "b"])
        #expect(pf.pools[0].vfs?.indices == [0, 1, 2, 3, 6])
        #expect(pf.pools[1].vfs?.description == "4-5,7")
        #expect(pf.pools[1].labels == ["rack": "r1"])
        #expect(c.pfs[1].match == .ids(vendorID: 0x8086, deviceID: 0x1521, index: nil))
        #expect(c.pfs[1].vfDefaults.isEmpty)
        let vf = try #require(c.vfs.first)
        #expect(vf.pf == PCIAddress(bus: 1, device: 0, function: 0))
        #expect(vf.index == 7)
        #expect(
            vf.config
                == VFConfig(
                    mac: MACAddress(bytes: [0x52, 0x54, 0, 0xAB, 0xCD, 0xEF]), vlan: try VLANID(4094),
                    qos: try VLANQoS(7), vlanProto: .dot1AD, minTxRate: 100, maxTxRate: 0))
    }

    // MARK: The message format

    @Test func errorsNameFileLineColumnAndKey() {
        let found = errors("[[pf]]\npci = \"0000:01:00.0\"\n  num_vfs = \"seven\"\n")
        #expect(
            found.map(\.description) == [#"sriovd.toml:3:13: pf[0].num_vfs: expected an integer, found string "seven""#]
        )
    }

    @Test func allErrorsAreListedOnePerLineInFileOrder() {
        let text = """
            [daemon]
            socket = "run/sriovd.sock"
            log_level = "verbose"
            socket_mode = "0668"

            [[pf]]
            pci = "0000:01:00.0"
            numvfs = 4
            [[pf.pool]]
            name = "p"
            vfs = "0-"

            [[vf]]
            pf = "0000:09:00.0"
            index = 0
            vlan = 4095
            qos = 8
            mac = "01:00:5e:00:00:01"
            """
        expectErrors(
            text,
            [
                (2, "daemon.socket", "relative path"),
                (3, "daemon.log_level", "trace, debug, info, notice, warning, error, critical"),
                (4, "daemon.socket_mode", "not a file mode"),
                (8, "pf[0].numvfs", "did you mean num_vfs?"),
                (11, "pf[0].pool[0].vfs", "neither an index nor a range"),
                (14, "vf[0].pf", "not declared"),
                (16, "vf[0].vlan", "4095 is outside the VLAN range 0-4094"),
                (17, "vf[0].qos", "8 is outside the 802.1p priority range 0-7"),
                (18, "vf[0].mac", "multicast"),
            ])
        do {
            _ = try SRIOVConfiguration.parse(text, fileName: "sriovd.toml")
        } catch {
            let lines = error.description.split(separator: "\n")
            #expect(lines.count == 9)
            #expect(lines.allSatisfy { $0.hasPrefix("sriovd.toml:") })
        }
    }

    @Test func syntaxErrorsAreReportedWithTheirPosition() {
        let found = errors("[daemon]\nsocket = \"/x\"\nsocket = \"/y\"\n")
        #expect(
            found.map(\.description) == [#"sriovd.toml:3:1: daemon.socket: duplicate key: already a string (line 2)"#])
        expectErrors("[[pf]]\nnum_vfs = 0660\n", [(2, nil, "leading zeros")])
        expectErrors("[daemon]\nsocket = /run/x\n", [(2, nil, "expected a value")])
    }

    // MARK: Keys and types

    @Test func unknownKeysAreNamedWithSuggestions() {
        expectErrors(
            """
            [deamon]
            [[pfs]]
            [[pf]]
            pci = "0000:01:00.0"
            vlan = 5
            vf-driver = "host"
            [pf.vf_defaults]
            spoofchk = true
            colour = "blue"
            """,
            [
                (1, "deamon", "did you mean daemon?"),
                (2, "pfs", "did you mean pf?"),
                (5, "pf[0].vlan", "VF settings belong under [pf.vf_defaults] or in a [[vf]] entry"),
                (6, "pf[0].vf-driver", "did you mean vf_driver?"),
                (8, "pf[0].vf_defaults.spoofchk", "did you mean spoof_check?"),
                (9, "pf[0].vf_defaults.colour", "unknown key"),
            ])
        expectErrors("socket = \"/x\"\n", [(1, "socket", "belongs under the [daemon] header")])
        let colour = errors("[[pf]]\npci = \"0000:01:00.0\"\n[pf.vf_defaults]\ncolour = 1").first
        #expect(colour?.message == "unknown key")
    }

    @Test func wrongTypesAreNamedWithWhatWasFound() {
        expectErrors(
            """
            daemon = 5
            pf = { pci = "0000:01:00.0" }
            [[vf]]
            pf = "0000:01:00.0"
            index = "2"
            trust = "yes"
            rss_query = 1
            """,
            [
                (1, "daemon", "expected a table, found integer 5"),
                (2, "pf", "expected an array of tables (write each entry under its own [[pf]] header), found table"),
                (4, "vf[0].pf", "not declared"),
                (5, "vf[0].index", #"expected an integer, found string "2""#),
                (6, "vf[0].trust", #"expected a boolean (true or false), found string "yes""#),
                (7, "vf[0].rss_query", "expected a boolean (true or false), found integer 1"),
            ])
        expectErrors(
            "[daemon]\nsocket_mode = 0o660\n", [(2, "daemon.socket_mode", #"octal string such as "0660""#)])
        expectErrors(
            "[daemon]\nrelease_action = \"wipe\"\n",
            [(2, "daemon.release_action", #""wipe" is not a release action; use restore or scrub"#)])
        expectErrors(
            "[daemon]\ndrift = \"fix\"\n", [(2, "daemon.drift", #""fix" is not a drift action; use correct or report"#)])
        expectErrors(
            "[daemon]\nlog_target = \"syslog\"\n",
            [(2, "daemon.log_target", #""syslog" is not a log target; use auto, journal or stderr"#)])
        expectErrors(
            "[[pf]]\npci = \"0000:01:00.0\"\n[[pf.pool]]\nname = \"a\"\nlabels = { rack = 7 }\n",
            [(5, "pf[0].pool[0].labels.rack", "expected a string, found integer 7")])
        expectErrors("pf = [1]\n", [(1, "pf[0]", "expected a table")])
    }

    // MARK: [daemon]

    @Test func daemonValuesAreChecked() {
        expectErrors(
            """
            [daemon]
            socket = "/run/\(String(repeating: "s", count: 110))"
            socket_mode = "1777"
            admin_group = "wheel staff"
            reader_group = "1000"
            state_dir = "/var/lib/../tmp"
            log_target = "syslog"
            max_request_bytes = 10
            reconcile_interval_seconds = -1
            numvfs_timeout_seconds = 0
            unplug_timeout_seconds = 0
            hook_timeout_seconds = 3601
            """,
            [
                (2, "daemon.socket", "at most 107"),
                (3, "daemon.socket_mode", "not a file mode"),
                (4, "daemon.admin_group", "not a group name"),
                (5, "daemon.reader_group", "is a number"),
                (6, "daemon.state_dir", "\"..\""),
                (7, "daemon.log_target", "auto, journal or stderr"),
                (8, "daemon.max_request_bytes", "10 is outside 1024-16777216"),
                (9, "daemon.reconcile_interval_seconds", "-1 is outside 0-86400"),
                (10, "daemon.numvfs_timeout_seconds", "0 is outside 1-3600"),
                (11, "daemon.unplug_timeout_seconds", "0 is outside 1-3600"),
                (12, "daemon.hook_timeout_seconds", "3601 is outside 1-3600"),
            ])
        expectErrors("[daemon]\nstate_dir = \"var/lib/sriovd\"\n", [(2, "daemon.state_dir", "relative path")])
    }

    // MARK: [[pf]]

    @Test func aPFNeedsExactlyOneOfPCIAndVendorDevice() {
        expectErrors(
            """
            [[pf]]
            num_vfs = 2

            [[pf]]
            pci = "0000:01:00.0"
            vendor_device = "8086:10c9"

            [[pf]]
            pci = "0000:02:00.0"
            device_index = 1

            [[pf]]
            vendor_device = "8086:10c"
            """,
            [
                (1, "pf[0]", "needs pci"),
                (6, "pf[1].vendor_device", "either pci or vendor_device, not both"),
                (10, "pf[2].device_index", "only applies with vendor_device"),
                (13, "pf[3].vendor_device", "not a vendor:device pair"),
            ])
    }

    @Test func twoEntriesForTheSamePFAreRefused() {
        expectErrors(
            """
            [[pf]]
            pci = "0000:01:00.0"
            [[pf]]
            pci = "01:00.0"
            [[pf]]
            vendor_device = "8086:10c9"
            device_index = 0
            [[pf]]
            vendor_device = "8086:10C9"
            [[pf]]
            vendor_device = "8086:10c9"
            device_index = 1
            """,
            [
                (4, "pf[1].pci", "0000:01:00.0 is already managed by pf[0] (line 1)"),
                (9, "pf[3].vendor_device", "matches the same PFs as pf[2] (line 5)"),
                (11, "pf[4].vendor_device", "matches the same PFs as pf[3] (line 8)"),
            ])
    }

    @Test func pfValuesAreChecked() {
        expectErrors(
            """
            [[pf]]
            pci = "0000:01:20.0"
            num_vfs = 70000
            vf_driver = "igbvf"
            drivers_autoprobe = 1
            """,
            [
                (2, "pf[0].pci", "device number"),
                (3, "pf[0].num_vfs", "70000 is outside 0-65535"),
                (4, "pf[0].vf_driver", "use vfio-pci, host or none"),
                (5, "pf[0].drivers_autoprobe", "expected a boolean"),
            ])
    }

    // MARK: VF settings

    @Test func vfSettingsAreCheckedOnTheirOwnAndTogether() {
        expectErrors(
            """
            [[pf]]
            pci = "0000:01:00.0"
              [pf.vf_defaults]
              mac = "52:54:00:00:00:01"
              qos = 3
              vlan_proto = "802.1ad"
              min_tx_rate = 500
              max_tx_rate = 100
              link_state = "up"
            [[vf]]
            pf = "0000:01:00.0"
            index = 0
            mac = "00:00:00:00:00:00"
            vlan = 0
            qos = 1
            vlan_proto = "qinq"
            [[vf]]
            pf = "0000:01:00.0"
            index = 1
            mac = "52:54:00:00:00:zz"
            vlan = -1
            max_tx_rate = 5000000000
            """,
            [
                (4, "pf[0].vf_defaults.mac", "not allowed in vf_defaults"),
                (5, "pf[0].vf_defaults.qos", "3 needs a VLAN"),
                (6, "pf[0].vf_defaults.vlan_proto", "802.1ad needs a VLAN"),
                (7, "pf[0].vf_defaults.min_tx_rate", "500 Mbit/s is above max_tx_rate (100 Mbit/s)"),
                (9, "pf[0].vf_defaults.link_state", #""up" is not a link state"#),
                (13, "vf[0].mac", "all-zero"),
                (15, "vf[0].qos", "1 needs a VLAN"),
                (16, "vf[0].vlan_proto", "802.1ad needs a VLAN"),
                (20, "vf[1].mac", "not two hex digits"),
                (21, "vf[1].vlan", "-1 is outside the VLAN range"),
                (22, "vf[1].max_tx_rate", "5000000000 is outside 0-4294967295"),
            ])
    }

    @Test func rateLimitZeroMeansNoLimitSoAnyMinimumIsFine() throws {
        let c = try SRIOVConfiguration.parse(
            "[[pf]]\npci = \"0000:01:00.0\"\n[pf.vf_defaults]\nmin_tx_rate = 500\nmax_tx_rate = 0\n", fileName: "x")
        #expect(c.pfs[0].vfDefaults.minTxRate == 500)
    }

    // MARK: Pools

    @Test func poolRangesAreChecked() {
        expectErrors(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 4
            [[pf.pool]]
            name = "a"
            vfs = "3-1"
            [[pf.pool]]
            name = "b"
            vfs = "0,,1"
            [[pf.pool]]
            name = "c"
            vfs = "1,1"
            [[pf.pool]]
            name = "d"
            vfs = ""
            [[pf.pool]]
            name = "e"
            vfs = "2-9"
            """,
            [
                (6, "pf[0].pool[0].vfs", "runs backwards"),
                (9, "pf[0].pool[1].vfs", "empty item"),
                (12, "pf[0].pool[2].vfs", "lists VF 1 more than once"),
                (15, "pf[0].pool[3].vfs", "lists no VFs"),
                (18, "pf[0].pool[4].vfs", "VF 9 does not exist: the PF is given num_vfs = 4, so its VFs are 0-3"),
            ])
    }

    @Test func poolsOfOnePFMustNotShareVFs() {
        expectErrors(
            """
            [[pf]]
            pci = "0000:01:00.0"
            [[pf.pool]]
            name = "a"
            vfs = "0-3"
            [[pf.pool]]
            name = "b"
            vfs = "4-7,2"
            [[pf.pool]]
            name = "everything"

            [[pf]]
            pci = "0000:02:00.0"
            [[pf.pool]]
            name = "all"
            [[pf.pool]]
            name = "some"
            vfs = "1"
            """,
            [
                (8, "pf[0].pool[1].vfs", #"VF 2 is also in pool "a" (line 3)"#),
                (9, "pf[0].pool[2]", #"takes every VF of the PF, but pool "a" (line 3) has VFs of it too"#),
                (18, "pf[1].pool[1].vfs", #"overlaps pool "all" (line 14)"#),
            ])
    }

    @Test func poolNamesAreUniqueAndWellFormed() {
        expectErrors(
            """
            [[pf]]
            pci = "0000:01:00.0"
            [[pf.pool]]
            name = "physnet1"
            vfs = "0"
            [[pf.pool]]
            vfs = "1"
            [[pf.pool]]
            name = "-bad name"
            vfs = "2"
            [[pf]]
            pci = "0000:02:00.0"
            [[pf.pool]]
            name = "physnet1"
            """,
            [
                (6, "pf[0].pool[1]", "a pool needs a name"),
                (9, "pf[0].pool[2].name", "not a pool name"),
                (14, "pf[1].pool[0].name", #"pool "physnet1" is already defined by pf[0].pool[0] (line 3)"#),
            ])
    }

    // MARK: [[vf]]

    @Test func vfEntriesMustNameADeclaredPFAndAnExistingVF() {
        expectErrors(
            """
            [[pf]]
            pci = "0000:01:00.0"
            num_vfs = 2
            [[pf]]
            vendor_device = "8086:10c9"

            [[vf]]
            pf = "0000:01:00.0"
            index = 2
            [[vf]]
            pf = "0000:03:00.0"
            index = 0
            [[vf]]
            pci = "0000:01:00.0"
            """,
            [
                (9, "vf[0].index", "VF 2 does not exist: pf[0] (line 1) gives 0000:01:00.0 num_vfs = 2"),
                (11, "vf[1].pf", "(a PF matched by vendor_device cannot be named here)"),
                (13, "vf[2]", #"needs pf = "DDDD:BB:DD.F" and index = N"#),
                (14, "vf[2].pci", "a [[vf]] entry names its PF with pf ="),
            ])
    }

    @Test func eachVFAndEachMACIsConfiguredOnce() {
        expectErrors(
            """
            [[pf]]
            pci = "0000:01:00.0"
            [[vf]]
            pf = "0000:01:00.0"
            index = 0
            mac = "52:54:00:00:00:01"
            [[vf]]
            pf = "01:00.0"
            index = 0
            [[vf]]
            pf = "0000:01:00.0"
            index = 1
            mac = "52:54:00:00:00:01"
            """,
            [
                (9, "vf[1].index", "VF 0 of 0000:01:00.0 is already configured by vf[0] (line 3)"),
                (13, "vf[2].mac", "52:54:00:00:00:01 is already the MAC of vf[0] (line 3)"),
            ])
    }

    // MARK: Pieces

    @Test func vfIndexSetsParseMergeAndPrint() throws {
        let set = try SRIOVConfiguration.VFIndexSet.parse(" 5, 0-3 ,4", field: "vfs")
        #expect(set.ranges == [0...5])
        #expect(set.description == "0-5")
        #expect(set.contains(5) && !set.contains(6))
        let other = try SRIOVConfiguration.VFIndexSet.parse("7,9-12", field: "vfs")
        #expect(other.description == "7,9-12")
        #expect(set.firstCommonIndex(with: other) == nil)
        #expect(other.firstCommonIndex(with: .init([11...20, 8...9])) == 9)
        #expect(throws: ValidationError.self) { try SRIOVConfiguration.VFIndexSet.parse("65535", field: "vfs") }
        #expect(throws: ValidationError.self) { try SRIOVConfiguration.VFIndexSet.parse("1-2-3", field: "vfs") }
        #expect(throws: ValidationError.self) { try SRIOVConfiguration.VFIndexSet.parse("+1", field: "vfs") }
    }

    @Test func pfMatchSelectsFromAnInventory() throws {
        func pf(_ bus: UInt8, _ device: UInt16) -> PhysicalFunction {
            PhysicalFunction(
                pciAddress: PCIAddress(bus: bus, device: 0, function: 0), vendorID: 0x8086, deviceID: device,
                totalVFs: 7, numVFs: 0, driversAutoprobe: true)
        }
        let inventory = [pf(3, 0x10c9), pf(1, 0x10c9), pf(2, 0x1521)]
        typealias Match = SRIOVConfiguration.PFMatch
        #expect(
            Match.pciAddress(PCIAddress(bus: 2, device: 0, function: 0)).select(from: inventory).map(\.deviceID) == [
                0x1521
            ])
        #expect(
            Match.ids(vendorID: 0x8086, deviceID: 0x10c9, index: nil).select(from: inventory).map(\.pciAddress.bus) == [
                1, 3,
            ])
        #expect(
            Match.ids(vendorID: 0x8086, deviceID: 0x10c9, index: 1).select(from: inventory).map(\.pciAddress.bus) == [3]
        )
        #expect(Match.ids(vendorID: 0x8086, deviceID: 0x10c9, index: 2).select(from: inventory).isEmpty)
        #expect(Match.ids(vendorID: 0x8086, deviceID: 0x10c9, index: 0).description == "vendor_device 8086:10c9 #0")
    }

    @Test func suggestionsNeedAKeyToBeClose() {
        #expect(ConfigurationTable.closest(to: "numvfs", among: ConfigurationDecoder.pfKeys) == "num_vfs")
        #expect(ConfigurationTable.closest(to: "VF_DRIVER", among: ConfigurationDecoder.pfKeys) == "vf_driver")
        #expect(ConfigurationTable.closest(to: "pic", among: ConfigurationDecoder.pfKeys) == "pci")
        #expect(ConfigurationTable.closest(to: "bandwidth", among: ConfigurationDecoder.pfKeys) == nil)
    }
}
