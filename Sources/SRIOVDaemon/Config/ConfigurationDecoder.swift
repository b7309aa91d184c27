import Logging
import SRIOVCore

extension SRIOVConfiguration {
    /// Reads and validates a configuration from TOML text. `fileName` is
    /// how errors name the file.
    public static func parse(_ text: String, fileName: String) throws(ConfigurationErrors) -> SRIOVConfiguration {
        try parse(utf8: Array(text.utf8), fileName: fileName)
    }

    static func parse(utf8 bytes: [UInt8], fileName: String) throws(ConfigurationErrors) -> SRIOVConfiguration {
        let document: TOMLTable
        do {
            document = try TOML.parse(utf8: bytes)
        } catch {
            throw ConfigurationErrors([
                ConfigurationError(
                    file: fileName, line: error.line, column: error.column, key: error.key, message: error.message)
            ])
        }
        let diagnostics = ConfigurationDiagnostics(file: fileName)
        let configuration = ConfigurationDecoder(diagnostics: diagnostics).decode(document)
        guard diagnostics.errors.isEmpty else { throw ConfigurationErrors(diagnostics.sortedErrors) }
        return configuration
    }
}

/// Turns the TOML document into an `SRIOVConfiguration`, reporting every
/// problem: each table's keys and values first, then what entries must agree
/// on with each other (`ConfigurationConsistency`).
struct ConfigurationDecoder {
    typealias Located<Value> = ConfigurationTable.Located<Value>

    let diagnostics: ConfigurationDiagnostics

    static let daemonKeys = [
        "socket", "socket_mode", "admin_group", "reader_group", "state_dir", "log_level", "log_target",
        "max_request_bytes", "reconcile_interval_seconds", "numvfs_timeout_seconds", "release_action", "drift",
        "unplug_timeout_seconds", "hook_timeout_seconds",
    ]
    static let pfKeys = [
        "pci", "vendor_device", "device_index", "num_vfs", "drivers_autoprobe", "vf_driver", "vf_defaults", "pool",
    ]
    static let vfSettingKeys = VFSettingField.all.map(\.configKey)
    static let poolKeys = ["name", "vfs", "labels"]

    func decode(_ document: TOMLTable) -> SRIOVConfiguration {
        let root = ConfigurationTable(table: document, path: "", diagnostics: diagnostics)
        root.rejectUnknownKeys(["daemon", "pf", "vf", "metrics"]) { key in
            if Self.daemonKeys.contains(key) { return "\(key) belongs under the [daemon] header" }
            if Self.metricsKeys.contains(key) { return "\(key) belongs under the [metrics] header" }
            if Self.pfKeys.contains(key) { return "\(key) belongs in a [[pf]] entry" }
            return nil
        }
        var configuration = SRIOVConfiguration()
        if let daemon = root.subtable("daemon") {
            configuration.daemon = decodeDaemon(daemon)
        }
        if let metrics = root.subtable("metrics") {
            configuration.metrics = decodeMetrics(metrics)
        }
        let pfs = root.tables("pf").map(decodePF)
        let vfs = root.tables("vf").map(decodeVF)
        ConfigurationConsistency(diagnostics: diagnostics).check(pfs: pfs, vfs: vfs)
        configuration.pfs = pfs.compactMap(\.pf)
        configuration.vfs = vfs.compactMap(\.vf)
        return configuration
    }

    // MARK: [daemon]

    private func decodeDaemon(_ t: ConfigurationTable) -> SRIOVConfiguration.Daemon {
        t.rejectUnknownKeys(Self.daemonKeys)
        var d = SRIOVConfiguration.Daemon()
        if let socket = t.string("socket"), checkAbsolutePath(socket, in: t, "socket") {
            // sun_path holds 108 bytes, the last a NUL.
            if socket.value.utf8.count > 107 {
                t.report(
                    "socket", at: socket.position,
                    "the path is \(socket.value.utf8.count) bytes long; a Unix socket path can have at most 107")
            } else {
                d.socket = socket.value
            }
        }
        if let mode = t.string("socket_mode", hint: "write the mode as an octal string such as \"0660\"") {
            if let bits = Self.octalMode(mode.value) {
                d.socketMode = bits
            } else {
                t.report(
                    "socket_mode", at: mode.position,
                    "\(TOMLValue.quoted(mode.value)) is not a file mode; write three octal digits, optionally after a 0,"
                        + " such as \"0660\"")
            }
        }
        if let group = t.string("admin_group"), checkGroup(group, in: t, "admin_group") {
            d.adminGroup = group.value.isEmpty ? nil : group.value
        }
        if let group = t.string("reader_group"), checkGroup(group, in: t, "reader_group") {
            d.readerGroup = group.value.isEmpty ? nil : group.value
        }
        if let dir = t.string("state_dir"), checkAbsolutePath(dir, in: t, "state_dir") {
            d.stateDirectory = dir.value
        }
        if let level = t.string("log_level") {
            if let l = Logger.Level(rawValue: level.value) {
                d.logLevel = l
            } else {
                t.report(
                    "log_level", at: level.position,
                    "\(TOMLValue.quoted(level.value)) is not a log level; use one of "
                        + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
            }
        }
        if let target: SRIOVConfiguration.LogTarget = t.choice("log_target", "log target") { d.logTarget = target }
        if let bytes = t.integer("max_request_bytes", in: 1024...16_777_216, meaning: "bytes") {
            d.maxRequestBytes = bytes.value
        }
        if let s = t.integer("reconcile_interval_seconds", in: 0...86_400, meaning: "seconds; 0 turns it off") {
            d.reconcileInterval = .seconds(s.value)
        }
        if let s = t.integer("numvfs_timeout_seconds", in: 1...3600, meaning: "seconds") {
            d.numVFsTimeout = .seconds(s.value)
        }
        if let action: SRIOVConfiguration.ReleaseAction = t.choice("release_action", "release action") {
            d.releaseAction = action
        }
        if let drift: SRIOVConfiguration.DriftAction = t.choice("drift", "drift action") { d.drift = drift }
        if let s = t.integer("unplug_timeout_seconds", in: 1...3600, meaning: "seconds") {
            d.unplugTimeout = .seconds(s.value)
        }
        if let s = t.integer("hook_timeout_seconds", in: 1...3600, meaning: "seconds") {
            d.hookTimeout = .seconds(s.value)
        }
        return d
    }

    /// `"0660"` or `"660"`: permission bits only, no setuid/setgid/sticky.
    static func octalMode(_ text: String) -> UInt32? {
        var digits = Substring(text)
        if digits.count == 4, digits.first == "0" { digits = digits.dropFirst() }
        guard digits.count == 3 else { return nil }
        var bits: UInt32 = 0
        for c in digits {
            guard let d = c.wholeNumberValue, c.isASCII, d < 8 else { return nil }
            bits = bits << 3 | UInt32(d)
        }
        return bits
    }

    private func checkAbsolutePath(_ path: Located<String>, in t: ConfigurationTable, _ name: String) -> Bool {
        let p = path.value
        let problem: String?
        if !p.hasPrefix("/") {
            problem = "is a relative path; sriovd needs an absolute one"
        } else if p.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            problem = "contains a control character"
        } else if p.split(separator: "/").contains("..") {
            problem = "contains a \"..\" component; write the path it leads to"
        } else {
            problem = nil
        }
        if let problem {
            t.report(name, at: path.position, "\(TOMLValue.quoted(p)) \(problem)")
            return false
        }
        return true
    }

    /// A group name as shadow-utils accepts it; `""` means "none".
    private func checkGroup(_ group: Located<String>, in t: ConfigurationTable, _ name: String) -> Bool {
        let g = group.value
        if g.isEmpty { return true }
        let allowed = g.unicodeScalars.allSatisfy { c in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" || c == ".")
        }
        let problem: String?
        if !allowed || g.hasPrefix("-") || g.utf8.count > 32 {
            problem = "is not a group name (letters, digits, _ . -, at most 32 characters, not starting with -)"
        } else if g.allSatisfy(\.isNumber) {
            problem = "is a number; give the group's name"
        } else {
            problem = nil
        }
        if let problem {
            t.report(name, at: group.position, "\(TOMLValue.quoted(g)) \(problem)")
            return false
        }
        return true
    }

    // MARK: [[pf]]

    private func decodePF(_ t: ConfigurationTable) -> PFEntry {
        t.rejectUnknownKeys(Self.pfKeys) { key in
            if Self.vfSettingKeys.contains(key) {
                return "VF settings belong under [pf.vf_defaults] or in a [[vf]] entry"
            }
            return nil
        }
        var entry = PFEntry(table: t)
        let pci = t.parsed("pci", PCIAddress.parse)
        let ids = t.parsed("vendor_device", Self.parseVendorDevice)
        let index = t.integer("device_index", in: 0...1023, meaning: "the Nth PF with these ids, counting from 0")
        switch (t.value("pci"), t.value("vendor_device")) {
        case (nil, nil):
            t.reportTable(
                "a [[pf]] entry needs pci = \"DDDD:BB:DD.F\" or vendor_device = \"VVVV:DDDD\" to say which PF it manages"
            )
        case (.some, .some(let v)):
            t.report("vendor_device", at: v.position, "give either pci or vendor_device, not both")
        case (.some, nil):
            if let i = t.value("device_index") {
                t.report("device_index", at: i.position, "only applies with vendor_device, not with pci")
            }
            if let pci {
                entry.match = Located(value: .pciAddress(pci.value), position: pci.position, key: pci.key)
            }
        case (nil, .some):
            if let ids, t.value("device_index") == nil || index != nil {
                entry.match = Located(
                    value: .ids(vendorID: ids.value.vendor, deviceID: ids.value.device, index: index?.value),
                    position: ids.position, key: ids.key)
            }
        }
        entry.numVFs = t.integer("num_vfs", in: 0...(SRIOVConfiguration.VFIndexSet.maxIndex + 1))
        entry.driversAutoprobe = t.boolean("drivers_autoprobe")?.value
        if let driver = t.string("vf_driver") {
            if let v = VFDriverChoice(rawValue: driver.value) {
                entry.vfDriver = v
            } else {
                t.report(
                    "vf_driver", at: driver.position,
                    "\(TOMLValue.quoted(driver.value)) is not a VF driver choice; use vfio-pci, host or none")
            }
        }
        if let defaults = t.subtable("vf_defaults") {
            defaults.rejectUnknownKeys(Self.vfSettingKeys)
            if let mac = defaults.value("mac") {
                defaults.report(
                    "mac", at: mac.position,
                    "a MAC is not allowed in vf_defaults: each VF needs its own; set it in a [[vf]] entry")
            }
            entry.vfDefaults = decodeVFSettings(defaults, mac: false)
        }
        entry.pools = t.tables("pool").map(decodePool)
        return entry
    }

    static func parseVendorDevice(_ text: String, field: String) throws(ValidationError) -> (
        vendor: UInt16, device: UInt16
    ) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let vendor = hex16(parts[0]), let device = hex16(parts[1]) else {
            throw ValidationError(
                field: field, value: text,
                reason: "is not a vendor:device pair; expected two 4-digit hex ids such as 8086:10c9")
        }
        return (vendor, device)
    }

    private static func hex16(_ s: Substring) -> UInt16? {
        guard s.count == 4, s.allSatisfy(\.isHexDigit) else { return nil }
        return UInt16(s, radix: 16)
    }

    private func decodePool(_ t: ConfigurationTable) -> PoolEntry {
        t.rejectUnknownKeys(Self.poolKeys)
        var entry = PoolEntry(table: t)
        if let name = t.string("name") {
            if PoolName.isValid(name.value) {
                entry.name = name
            } else {
                t.report(
                    "name", at: name.position,
                    "\(TOMLValue.quoted(name.value)) is not a pool name: use 1-64 letters, digits, _ . -,"
                        + " starting with a letter or digit")
            }
        } else if t.value("name") == nil {
            t.reportTable("a pool needs a name")
        }
        entry.vfs = t.parsed("vfs", SRIOVConfiguration.VFIndexSet.parse)
        if let labels = t.subtable("labels") {
            for label in labels.table.entries {
                if let s = label.value.string {
                    entry.labels[label.key] = s
                } else {
                    labels.report(
                        label.key, at: label.value.position, "expected a string, found \(label.value.summary)")
                }
            }
        }
        return entry
    }

    // MARK: [[vf]]

    private func decodeVF(_ t: ConfigurationTable) -> VFEntry {
        t.rejectUnknownKeys(["pf", "index"] + Self.vfSettingKeys) { key in
            key == "pci" ? "a [[vf]] entry names its PF with pf = \"DDDD:BB:DD.F\" and the VF with index = N" : nil
        }
        var entry = VFEntry(table: t)
        entry.pf = t.parsed("pf", PCIAddress.parse)
        entry.index = t.integer("index", in: 0...SRIOVConfiguration.VFIndexSet.maxIndex)
        var missing: [String] = []
        if t.value("pf") == nil { missing.append("pf = \"DDDD:BB:DD.F\"") }
        if t.value("index") == nil { missing.append("index = N") }
        if !missing.isEmpty {
            t.reportTable("a [[vf]] entry needs " + missing.joined(separator: " and "))
        }
        entry.config = decodeVFSettings(t, mac: true)
        if let mac = t.value("mac") { entry.macPosition = mac.position }
        return entry
    }

    // MARK: VF settings

    /// The VF settings of `[pf.vf_defaults]` or a `[[vf]]`, each checked on
    /// its own and against the others of the same table.
    private func decodeVFSettings(_ t: ConfigurationTable, mac allowMAC: Bool) -> VFConfig {
        var c = VFConfig()
        if allowMAC, let mac = t.parsed("mac", MACAddress.parse) {
            do {
                c.mac = try mac.value.validatedAsUnicast(field: mac.key)
            } catch {
                t.report("mac", at: mac.position, "\(TOMLValue.quoted(error.value)) \(error.reason)")
            }
        }
        for field in VFSettingField.all where field.group != .mac { read(field, from: t, into: &c) }

        // An invalid vlan was reported already; nothing to check it against.
        let untagged = t.value("vlan") == nil || c.vlan == VLANID.none
        if let qos = c.qos, qos != VLANQoS.zero, untagged, let at = t.value("qos")?.position {
            t.report(
                "qos", at: at, "\(qos) needs a VLAN: the priority travels in the VLAN tag, so set vlan to 1-4094 too")
        }
        if let proto = c.vlanProto, proto != .dot1Q, untagged, let at = t.value("vlan_proto")?.position {
            t.report("vlan_proto", at: at, "\(proto) needs a VLAN: set vlan to 1-4094 too")
        }
        if let minRate = c.minTxRate, let maxRate = c.maxTxRate, maxRate != 0, minRate > maxRate,
            let at = t.value("min_tx_rate")?.position
        {
            t.report("min_tx_rate", at: at, "\(minRate) Mbit/s is above max_tx_rate (\(maxRate) Mbit/s)")
        }
        return c
    }

    /// Reads one VF setting in the form its field says; a refusal is reported
    /// and leaves the field unset.
    private func read(_ field: VFSettingField, from t: ConfigurationTable, into c: inout VFConfig) {
        let name = field.configKey
        switch field.configForm {
        case .boolean:
            // A boolean is every switch's value: nothing to refuse.
            if let b = t.boolean(name) { try? field.set(.boolean(b.value), field: b.key, in: &c) }
        case .integer(let range, let meaning):
            // In range, so the field's type holds it.
            if let i = t.integer(name, in: range, meaning: meaning) { try? field.set(.integer(i.value), field: i.key, in: &c) }
        case .checkedInteger:
            _ = t.integerValue(name) { v, key throws(ValidationError) in try field.set(.integer(v), field: key, in: &c) }
        case .string:
            _ = t.parsed(name) { text, key throws(ValidationError) in try field.set(.text(text), field: key, in: &c) }
        }
    }
}

// MARK: Entries while checking

extension ConfigurationDecoder {
    /// A `[[pf]]` as read, with where each part was written, for the checks
    /// across entries. `match` is nil when the entry could not say which PF.
    struct PFEntry {
        let table: ConfigurationTable
        var match: Located<SRIOVConfiguration.PFMatch>?
        var numVFs: Located<Int>?
        var driversAutoprobe: Bool?
        var vfDriver: VFDriverChoice?
        var vfDefaults = VFConfig()
        var pools: [PoolEntry] = []

        init(table: ConfigurationTable) { self.table = table }

        var pf: SRIOVConfiguration.PF? {
            guard let match else { return nil }
            return SRIOVConfiguration.PF(
                match: match.value, numVFs: numVFs?.value, driversAutoprobe: driversAutoprobe, vfDriver: vfDriver,
                vfDefaults: vfDefaults, pools: pools.compactMap(\.pool))
        }
    }

    struct PoolEntry {
        let table: ConfigurationTable
        var name: Located<String>?
        var vfs: Located<SRIOVConfiguration.VFIndexSet>?
        var labels: [String: String] = [:]

        init(table: ConfigurationTable) { self.table = table }

        var pool: SRIOVConfiguration.Pool? {
            name.map { SRIOVConfiguration.Pool(name: $0.value, vfs: vfs?.value, labels: labels) }
        }
    }

    struct VFEntry {
        let table: ConfigurationTable
        var pf: Located<PCIAddress>?
        var index: Located<Int>?
        var config = VFConfig()
        var macPosition: TOMLPosition?

        init(table: ConfigurationTable) { self.table = table }

        var vf: SRIOVConfiguration.VF? {
            guard let pf, let index else { return nil }
            return SRIOVConfiguration.VF(pf: pf.value, index: index.value, config: config)
        }
    }
}
