import Foundation
import Synchronization
import Logging
import SRIOVCore

/// Changes VFs and PFs safely: validates first, remembers a VF's original
/// settings before the first change, writes each setting group on its own,
/// reads every write back, undoes a request that failed half-way, and
/// serializes work per VF and per PF (never one lock across all hardware).
public final class VFController: Sendable {
    let host: any VFHost
    let store: StateStore
    let logger: Logger
    let numVFsTimeout: Duration
    /// Drivers such as iavf apply a MAC asynchronously: a readback is retried
    /// this often before a write counts as not taken (sriov-cni: 20 x 100 ms).
    let verifyAttempts: Int
    let verifyInterval: Duration
    /// Where the changes made are published (and so journaled).
    let events: EventBus
    /// Times each operation (and its host calls) into swift-metrics.
    let timers: OperationTimers

    private let vfLocks = KeyedLock<PCIAddress>()
    private let pfLocks = KeyedLock<PCIAddress>()

    /// `events`: the daemon's bus; by default one that journals to `logger`.
    /// Timings go to the task's metrics factory at the time of the call.
    public init(
        host: any VFHost, store: StateStore, logger: Logger, numVFsTimeout: Duration = .seconds(120),
        verifyAttempts: Int = 20, verifyInterval: Duration = .milliseconds(100), events: EventBus? = nil
    ) {
        self.host = host
        self.store = store
        self.logger = logger
        self.events = events ?? .journaling(to: logger)
        self.timers = OperationTimers()
        self.numVFsTimeout = numVFsTimeout
        self.verifyAttempts = verifyAttempts
        self.verifyInterval = verifyInterval
    }

    // MARK: Results

    /// What happened to one group of settings.
    public struct SettingResult: Codable, Sendable, Equatable {
        public enum Outcome: String, Codable, Sendable {
            /// Written and read back as asked.
            case applied
            /// Already as asked; nothing written.
            case unchanged
            /// The driver cannot do it (e.g. link state on igb); the others went on.
            case unsupported
            case failed
            /// Written, then undone because another setting of the request failed.
            case rolledBack
            /// Not attempted (nothing known to restore it to).
            case skipped
        }
        public var setting: VFSettingGroup
        public var outcome: Outcome
        public var detail: String?
    }

    public struct VFReport: Sendable {
        public var location: VFLocation
        public var results: [SettingResult]
        /// The VF's settings after the operation, as its PF reports them.
        public var settings: VFSettings
        /// Time spent in the host (netlink reads and writes) for this operation.
        public var hostTime: Duration = .zero
        /// The whole operation, as `sriovd_operation_duration_seconds` recorded it.
        public var duration: Duration = .zero
        public var failed: Bool { results.contains { $0.outcome == .failed } }
    }

    // MARK: VF settings

    /// Applies the settings set in `config` to a VF. Bad input is refused
    /// before anything is touched; if any setting fails, the ones this
    /// request applied are put back and the report says so.
    public func configure(vf address: PCIAddress, _ config: VFConfig) async throws(ControllerError) -> VFReport {
        try await apply(config, to: address, mode: .request)
    }

    /// Applies the configuration file's settings to a VF that is not in use.
    /// Declared settings are the VF's baseline, not a change to undo: no
    /// original is recorded (else the VF would look in use from then on),
    /// and each setting stands on its own (no rollback). A VF configured
    /// through the API is refused with `.conflict`, under the VF's lock.
    public func applyDeclared(vf address: PCIAddress, _ config: VFConfig) async throws(ControllerError) -> VFReport {
        try await apply(config, to: address, mode: .declared)
    }

    enum ApplyMode {
        /// An API request: original recorded, rolled back on failure.
        case request
        /// The configuration file: refused on an in-use VF, no original, no rollback.
        case declared
    }

    private func apply(_ config: VFConfig, to address: PCIAddress, mode: ApplyMode) async throws(ControllerError) -> VFReport {
        let action: VFSettingsChange.Action = mode == .request ? .configure : .declare
        return try await measured(action) { () throws(ControllerError) in
            do throws(ValidationError) { try config.validate() } catch { throw .invalid(error) }
            let location = try await self.locate(address)
            return try await self.serialize(vf: address) { () throws(ControllerError) in
                if mode == .declared, try self.loadOriginal(address) != nil {
                    throw .conflict("\(address) is in use (configured through the API); the configuration file does not change it")
                }
                let report = try await self.applyLocked(config, location, mode: mode)
                self.publish(action, location, report)
                return report
            }
        }
    }

    /// Runs one VF settings operation as a timed operation; its report
    /// carries the times recorded.
    private func measured(
        _ action: VFSettingsChange.Action, _ body: () async throws(ControllerError) -> VFReport
    ) async throws(ControllerError) -> VFReport {
        let measured = try await timers.measure(action.operation, result: { $0.failed ? .failure : .success }, body)
        var report = measured.value
        report.duration = measured.timing.duration
        report.hostTime = measured.timing.hostTime
        return report
    }

    private func applyLocked(
        _ config: VFConfig, _ location: VFLocation, mode: ApplyMode
    ) async throws(ControllerError) -> VFReport {
        let before = try await readSettings(location)
        var results: [VFSettingGroup: SettingResult] = [:]
        var toWrite = config
        // Min and max rate are one kernel attribute: a rate not given keeps
        // its current value instead of being reset to 0.
        if toWrite.minTxRate != nil || toWrite.maxTxRate != nil {
            toWrite.minTxRate = toWrite.minTxRate ?? before.minTxRate ?? 0
            toWrite.maxTxRate = toWrite.maxTxRate ?? before.maxTxRate ?? 0
        }
        for group in VFSettingGroup.groups(in: toWrite) where Self.matches(toWrite, before, group) {
            results[group] = SettingResult(setting: group, outcome: .unchanged)
            toWrite = toWrite.clearing(group)
        }
        let groups = VFSettingGroup.groups(in: toWrite)
        var after: VFSettings? = groups.isEmpty ? before : nil
        if !groups.isEmpty {
            let hadOriginal = mode == .request ? try loadOriginal(location.vf) != nil : true
            if mode == .request {
                // The original is on disk before the first write: a crash
                // between here and the end still knows what to restore.
                try recordOriginal(location, before: before, changed: groups)
            }
            let (written, lastRead) = try await writeAndVerify(toWrite, to: location)
            // Nothing took (all unsupported, or failed): the VF is not changed,
            // so it must not look configured by sriovd.
            if !hadOriginal, !written.values.contains(where: { $0.outcome == .applied }) {
                try forgetOriginal(location.vf)
            }
            after = lastRead
            results.merge(written) { $1 }
            if mode == .request, written.values.contains(where: { $0.outcome == .failed }) {
                after = nil
                let applied = written.filter { $0.value.outcome == .applied }.map(\.key)
                let undone = await OperationTiming.host("netlink.write") {
                    await host.write(before.asConfig(only: Set(applied)), to: location)
                }
                for group in applied {
                    if case .applied = undone[group] {
                        results[group]?.outcome = .rolledBack
                    } else {
                        results[group]?.detail =
                            "applied, and could not be undone: \(undone[group].map { "\($0)" } ?? "not attempted")"
                    }
                }
            }
        }
        var settings = before
        if let after {
            settings = after
        } else if let fresh = try? await readSettings(location) {
            settings = fresh
        }
        return VFReport(location: location, results: results.values.sorted { $0.setting < $1.setting }, settings: settings)
    }

    /// Puts back exactly the settings sriovd changed on this VF since it
    /// first touched it, and forgets the original once they are back.
    public func restore(vf address: PCIAddress) async throws(ControllerError) -> VFReport {
        try await measured(.restore) { () throws(ControllerError) in
            let location = try await self.locate(address)
            return try await self.serialize(vf: address) { () throws(ControllerError) in
                guard let original = try self.loadOriginal(address) else {
                    let settings = try await self.readSettings(location)
                    return VFReport(location: location, results: [], settings: settings)
                }
                let report = try await self.restoreLocked(location, original)
                self.publish(.restore, location, report)
                return report
            }
        }
    }

    /// Clears a free VF of its last user's traces: no MAC, no VLAN, spoof
    /// check on, trust and RSS query off, link disabled where the driver
    /// supports it. Refused (409) for a VF assigned to a VM NIC: its VM
    /// would lose its MAC and VLAN under it. The recorded original is
    /// forgotten: the scrubbed state is the VF's state from now on.
    /// `releasing`: the caller is releasing the VF's assignment, so its
    /// assignment row is expected.
    public func scrub(vf address: PCIAddress, releasing: Bool = false) async throws(ControllerError) -> VFReport {
        try await measured(.scrub) { () throws(ControllerError) in
            let location = try await self.locate(address)
            return try await self.serialize(vf: address) { () throws(ControllerError) in
                if !releasing, (try? self.store.isAssigned(address)) ?? true {
                    throw .conflict("\(address) is assigned to a VM NIC (or its assignment cannot be read); release it first")
                }
                let (written, _) = try await self.writeAndVerify(Self.scrubbed, to: location)
                if !written.values.contains(where: { $0.outcome == .failed }) {
                    try self.forgetOriginal(address)
                }
                let report = VFReport(
                    location: location, results: written.values.sorted { $0.setting < $1.setting },
                    settings: try await self.readSettings(location))
                self.publish(.scrub, location, report)
                return report
            }
        }
    }

    static let scrubbed = VFConfig(
        mac: .zero, vlan: VLANID.none, qos: VLANQoS.zero, vlanProto: .dot1Q, spoofCheck: true, trust: false,
        linkState: .disable, rssQuery: false)

    // MARK: Drivers

    /// Binds a VF to vfio-pci (after checking its IOMMU group and resetting
    /// it), to its host driver, or to none.
    public func bind(vf address: PCIAddress, to choice: VFDriverChoice) async throws(ControllerError) -> String? {
        try await bind(vf: address, to: choice, declared: false)
    }

    /// The configuration file's driver for a VF; refused with `.conflict`
    /// (under the VF's lock) when the VF is configured through the API.
    public func bindDeclared(vf address: PCIAddress, to choice: VFDriverChoice) async throws(ControllerError) -> String? {
        try await bind(vf: address, to: choice, declared: true)
    }

    private func bind(vf address: PCIAddress, to choice: VFDriverChoice, declared: Bool) async throws(ControllerError) -> String? {
        try await timers.measure("vf.bind") { () throws(ControllerError) in
            try await self.bindMeasured(vf: address, to: choice, declared: declared)
        }.value
    }

    private func bindMeasured(vf address: PCIAddress, to choice: VFDriverChoice, declared: Bool) async throws(ControllerError) -> String? {
        let location = try await locate(address)
        return try await serialize(vf: address) { () throws(ControllerError) in
            if declared, try self.loadOriginal(address) != nil {
                throw .conflict("\(address) is in use (configured through the API); the configuration file does not rebind it")
            }
            let current = await self.host.driver(of: address)
            if Self.driverMatches(current, choice) { return current }
            do {
                if choice == .vfio {
                    // A VF handed to a new user starts from a clean function.
                    if current != nil { try await self.host.bind(address, to: .none) }
                    if try await !self.host.reset(address) {
                        self.logger.notice("no function reset available", metadata: ["vf": "\(address)"])
                    }
                }
                try await self.host.bind(address, to: choice)
            } catch let refusal as HostRefusal {
                throw .conflict("cannot bind \(address) to \(choice.rawValue): \(refusal)")
            } catch {
                throw .hostFailure("binding \(address) to \(choice.rawValue): \(error)")
            }
            let now = await self.host.driver(of: address)
            self.events.publish(.vfBound(driver: now, previous: current), EventSubject(location))
            return now
        }
    }

    static func driverMatches(_ driver: String?, _ choice: VFDriverChoice) -> Bool {
        switch choice {
        case .vfio: driver == "vfio-pci"
        case .none: driver == nil
        case .host: driver != nil && driver != "vfio-pci"
        }
    }

    // MARK: PF

    /// Sets a PF's VF count (and autoprobe first, so new VFs can be programmed
    /// before any driver binds). Lowering the count refuses while a VF that
    /// would go is in use (configured by sriovd, or bound to vfio-pci), unless `force`.
    public func setNumVFs(pf: PCIAddress, count: Int?, driversAutoprobe: Bool?, force: Bool) async throws(ControllerError) {
        _ = try await timers.measure("pf.numvfs") { () throws(ControllerError) in
            try await self.setNumVFsMeasured(pf: pf, count: count, driversAutoprobe: driversAutoprobe, force: force)
        }
    }

    private func setNumVFsMeasured(pf: PCIAddress, count: Int?, driversAutoprobe: Bool?, force: Bool) async throws(ControllerError) {
        guard let total = await host.totalVFs(pf: pf) else {
            throw .notFound("no SR-IOV physical function at \(pf)")
        }
        if let count, count < 0 || count > total {
            throw .invalid(ValidationError(
                field: "numVFs", value: String(count), reason: "is outside 0-\(total) (sriov_totalvfs of \(pf))"))
        }
        try await serialize(pf: pf) { () throws(ControllerError) in
            if let driversAutoprobe {
                do { try await self.host.setDriversAutoprobe(pf: pf, enabled: driversAutoprobe) } catch {
                    throw .hostFailure("setting sriov_drivers_autoprobe of \(pf): \(error)")
                }
            }
            guard let count else { return }
            let current = await self.host.numVFs(pf: pf) ?? 0
            guard count != current else { return }
            // Between two nonzero counts the kernel goes through 0: every VF
            // is removed and recreated, not only those above the new count.
            let leaving = await self.host.virtualFunctions(pf: pf).filter { current != 0 || $0.index >= count }
            if !leaving.isEmpty && !force {
                var busy: [String] = []
                for vf in leaving {
                    let driver = await self.host.driver(of: vf.address)
                    let touched = (try? self.store.original(of: vf.address)) != nil
                    if driver == "vfio-pci" || touched {
                        busy.append("VF \(vf.index) (\(vf.address)\(driver == "vfio-pci" ? ", bound to vfio-pci" : ", configured by sriovd"))")
                    }
                }
                if !busy.isEmpty {
                    throw .conflict(
                        "changing \(pf) from \(current) to \(count) VFs would remove \(busy.joined(separator: ", ")); release them first or set force")
                }
            }
            do {
                try await self.host.setNumVFs(pf: pf, to: count, timeout: self.numVFsTimeout)
            } catch {
                throw .hostFailure("setting sriov_numvfs of \(pf) to \(count): \(error)")
            }
            for vf in leaving { try? self.store.forgetOriginal(of: vf.address) }
            self.events.publish(.pfNumVFs(count: count, previous: current), EventSubject(pf: pf))
        }
    }

    // MARK: Internals

    private func locate(_ address: PCIAddress) async throws(ControllerError) -> VFLocation {
        guard let location = await host.locate(vf: address) else {
            throw .notFound("no SR-IOV virtual function at \(address)")
        }
        return location
    }

    private func serialize<T: Sendable>(
        vf: PCIAddress, _ body: @Sendable () async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        do {
            return try await vfLocks.withLock(vf) { try await body() }
        } catch let error as ControllerError {
            throw error
        } catch {
            throw .hostFailure("\(error)")
        }
    }

    private func serialize<T: Sendable>(
        pf: PCIAddress, _ body: @Sendable () async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        do {
            return try await pfLocks.withLock(pf) { try await body() }
        } catch let error as ControllerError {
            throw error
        } catch {
            throw .hostFailure("\(error)")
        }
    }

    private func readSettings(_ location: VFLocation) async throws(ControllerError) -> VFSettings {
        do {
            return try await OperationTiming.host("netlink.read") { try await host.settings(of: location) }
        } catch {
            throw .hostFailure("reading the settings of VF \(location.index) of \(location.pf): \(error)")
        }
    }

    private func recordOriginal(_ location: VFLocation, before: VFSettings, changed: Set<VFSettingGroup>) throws(ControllerError) {
        do {
            try store.recordChange(vf: location.vf, pf: location.pf, index: location.index, before: before, changed: changed)
        } catch {
            throw .hostFailure("recording the original settings of \(location.vf): \(error)")
        }
    }

    private func loadOriginal(_ vf: PCIAddress) throws(ControllerError) -> StateStore.VFOriginal? {
        do { return try store.original(of: vf) } catch { throw .hostFailure("reading state of \(vf): \(error)") }
    }

    private func forgetOriginal(_ vf: PCIAddress) throws(ControllerError) {
        do { try store.forgetOriginal(of: vf) } catch { throw .hostFailure("updating state of \(vf): \(error)") }
    }

    private func restoreLocked(_ location: VFLocation, _ original: StateStore.VFOriginal) async throws(ControllerError) -> VFReport {
        // An all-zero original MAC is written back as is: it means "no admin MAC".
        var config = original.settings.asConfig(only: original.changed)
        var results: [SettingResult] = []
        // A group whose original the driver never reported cannot be put back.
        for group in original.changed where !VFSettingGroup.groups(in: config).contains(group) {
            results.append(SettingResult(setting: group, outcome: .skipped, detail: "the original value was not reported by the driver"))
        }
        // Only what differs now is written: a setting whose change never took
        // (or was rolled back) is already as it was.
        let current = try await readSettings(location)
        for group in VFSettingGroup.groups(in: config) where Self.matches(config, current, group) {
            results.append(SettingResult(setting: group, outcome: .unchanged))
            config = config.clearing(group)
        }
        let (written, _) = try await writeAndVerify(config, to: location)
        results += written.values
        if !written.values.contains(where: { $0.outcome == .failed }) {
            try forgetOriginal(location.vf)
        }
        return VFReport(
            location: location, results: results.sorted { $0.setting < $1.setting },
            settings: try await readSettings(location))
    }

    /// Writes each group, then reads back until every applied group reads as
    /// asked, or the retries run out (then it is a failure).
    private func writeAndVerify(
        _ config: VFConfig, to location: VFLocation
    ) async throws(ControllerError) -> (results: [VFSettingGroup: SettingResult], lastRead: VFSettings?) {
        let outcomes = await OperationTiming.host("netlink.write") { await host.write(config, to: location) }
        var results: [VFSettingGroup: SettingResult] = [:]
        var pending: Set<VFSettingGroup> = []
        for (group, outcome) in outcomes {
            switch outcome {
            case .applied:
                pending.insert(group)
                results[group] = SettingResult(setting: group, outcome: .applied)
            case .unsupported(let why):
                results[group] = SettingResult(setting: group, outcome: .unsupported, detail: why)
                logger.notice(
                    "VF setting not supported by the driver",
                    metadata: ["pf": "\(location.pf)", "vf": "\(location.vf)", "setting": "\(group.rawValue)", "detail": "\(why)"])
            case .failed(let why):
                results[group] = SettingResult(setting: group, outcome: .failed, detail: why)
            }
        }
        var attempt = 0
        var last = VFSettings()
        var lastRead: VFSettings?
        while !pending.isEmpty {
            last = try await readSettings(location)
            lastRead = last
            pending = pending.filter { !Self.matches(config, last, $0) }
            attempt += 1
            if pending.isEmpty || attempt >= verifyAttempts { break }
            try? await Task.sleep(for: verifyInterval)
        }
        for group in pending {
            results[group] = SettingResult(
                setting: group, outcome: .failed,
                detail: "written, but the PF still reports \(Self.describe(last, group)) after \(attempt) reads")
        }
        return (results, lastRead)
    }

    /// Whether `settings` shows what `config` asks for in `group`. A value the
    /// driver does not report cannot be confirmed and does not match.
    static func matches(_ config: VFConfig, _ settings: VFSettings, _ group: VFSettingGroup) -> Bool {
        switch group {
        case .mac: return config.mac == nil || settings.mac == config.mac
        case .vlan:
            let vlan = config.vlan ?? VLANID.none
            let qos = config.qos ?? VLANQoS.zero
            let proto = config.vlanProto ?? .dot1Q
            guard settings.vlan == vlan, (settings.qos ?? .zero) == qos else { return false }
            // Untagged has no protocol to compare.
            return vlan == VLANID.none || (settings.vlanProto ?? .dot1Q) == proto
        case .spoofCheck: return config.spoofCheck == nil || settings.spoofCheck == config.spoofCheck
        case .trust: return config.trust == nil || settings.trust == config.trust
        case .rssQuery: return config.rssQuery == nil || settings.rssQuery == config.rssQuery
        case .linkState: return config.linkState == nil || settings.linkState == config.linkState
        case .txRate:
            return (config.minTxRate == nil || settings.minTxRate == config.minTxRate)
                && (config.maxTxRate == nil || settings.maxTxRate == config.maxTxRate)
        }
    }

    static func describe(_ s: VFSettings, _ group: VFSettingGroup) -> String {
        func show<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "nothing" }
        switch group {
        case .mac: return "mac \(show(s.mac))"
        case .vlan: return "vlan \(show(s.vlan)) qos \(show(s.qos)) proto \(show(s.vlanProto))"
        case .spoofCheck: return "spoofCheck \(show(s.spoofCheck))"
        case .trust: return "trust \(show(s.trust))"
        case .rssQuery: return "rssQuery \(show(s.rssQuery))"
        case .linkState: return "linkState \(show(s.linkState))"
        case .txRate: return "minTxRate \(show(s.minTxRate)) maxTxRate \(show(s.maxTxRate))"
        }
    }

    /// One event per change: what was asked and each setting's outcome.
    private func publish(_ action: VFSettingsChange.Action, _ location: VFLocation, _ report: VFReport) {
        events.publish(.vfSettings(VFSettingsChange(action: action, results: report.results)), EventSubject(location))
    }
}

extension VFConfig {
    /// The same config without `group`'s fields.
    func clearing(_ group: VFSettingGroup) -> VFConfig {
        var c = self
        switch group {
        case .mac: c.mac = nil
        case .vlan: c.vlan = nil; c.qos = nil; c.vlanProto = nil
        case .spoofCheck: c.spoofCheck = nil
        case .trust: c.trust = nil
        case .rssQuery: c.rssQuery = nil
        case .linkState: c.linkState = nil
        case .txRate: c.minTxRate = nil; c.maxTxRate = nil
        }
        return c
    }
}

extension VFSettings {
    /// These settings as a config that sets only `groups` (and only what was reported).
    func asConfig(only groups: Set<VFSettingGroup>) -> VFConfig {
        var c = VFConfig()
        if groups.contains(.mac) { c.mac = mac }
        if groups.contains(.vlan), let vlan {
            c.vlan = vlan
            c.qos = qos ?? .zero
            c.vlanProto = vlan == VLANID.none ? nil : (vlanProto ?? .dot1Q)
        }
        if groups.contains(.spoofCheck) { c.spoofCheck = spoofCheck }
        if groups.contains(.trust) { c.trust = trust }
        if groups.contains(.rssQuery) { c.rssQuery = rssQuery }
        if groups.contains(.linkState) { c.linkState = linkState }
        if groups.contains(.txRate) {
            c.minTxRate = minTxRate
            c.maxTxRate = maxTxRate
        }
        return c
    }
}
