import Foundation
import Synchronization
import Logging
import SRIOVCore
import SRIOVHost

/// Changes VFs and PFs safely: validates first, remembers a VF's original
/// settings before the first change, writes each setting group on its own,
/// reads every write back, undoes a request that failed half-way, and
/// serializes work per VF and per PF (never one lock across all hardware):
/// work on a VF holds its PF shared, a VF-count change holds the PF alone.
/// The host and the store are its own: callers ask it intent-level questions.
public final class VFController: Sendable {
    private let host: any VFHost
    private let store: StateStore
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
    private let pfLocks = KeyedSharedLock<PCIAddress>()

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
        /// The failed settings and why: `vlan: Invalid argument; trust: ...`.
        public var failures: String {
            results.filter { $0.outcome == .failed }.map { "\($0.setting.rawValue): \($0.detail ?? "failed")" }
                .joined(separator: "; ")
        }
    }

    // MARK: VF settings

    /// Applies the settings set in `config` to a VF. Bad input is refused
    /// before anything is touched; if any setting fails, the ones this
    /// request applied are put back and the report says so.
    public func configure(vf address: PCIAddress, _ config: VFConfig) async throws(ControllerError) -> VFReport {
        try await apply(config, to: address, mode: .request)
    }

    /// Sets the VF's MAC to 00:00:00:00:00:00 in the PF's embedded switch,
    /// so frames for the guest's MAC stop going to the VF (before a
    /// migration pulls it). Recorded like any change: restore puts the
    /// original back.
    public func clearMAC(vf address: PCIAddress) async throws(ControllerError) -> VFReport {
        try await apply(VFConfig(mac: .zero), to: address, mode: .request, validating: false)
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

    private func apply(
        _ config: VFConfig, to address: PCIAddress, mode: ApplyMode, validating: Bool = true
    ) async throws(ControllerError) -> VFReport {
        let action: VFSettingsChange.Action = mode == .request ? .configure : .declare
        return try await measured(action) { () throws(ControllerError) in
            if validating {
                do throws(ValidationError) { try config.validate() } catch { throw .invalid(error) }
            }
            return try await self.serialize(vf: address) { (location) throws(ControllerError) in
                if mode == .declared, case let use = await self.use(of: address), !use.isDisjoint(with: [.configured, .assigned]) {
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
        // A group is one kernel attribute: a part not given keeps its current
        // value where the model says so (a rate), instead of being reset.
        var toWrite = config
        for group in VFSettingGroup.allCases { toWrite = group.completing(toWrite, from: before) }
        for group in VFSettingGroup.groups(in: toWrite) where group.matches(toWrite, reported: before) {
            results[group] = SettingResult(setting: group, outcome: .unchanged)
            toWrite = toWrite.clearing(group)
        }
        let groups = VFSettingGroup.groups(in: toWrite)
        var after: VFSettings? = groups.isEmpty ? before : nil
        if !groups.isEmpty {
            let original = mode == .request ? try loadOriginal(location.vf) : nil
            let hadOriginal = mode == .request ? original != nil : true
            // The original is on disk before the first write: a crash between
            // here and the end still knows what to restore. One that already
            // covers every group changed here is not written again (a change
            // of a configured VF costs no SQLite commit).
            if mode == .request, !(original.map { groups.isSubset(of: $0.changed) } ?? false) {
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
                let undone = Self.outcomes(
                    await OperationTiming.host("netlink.write") {
                        await host.write(Self.writingBack(before, applied), to: location)
                    })
                for group in applied {
                    if case .applied = undone[group] {
                        results[group]?.outcome = .rolledBack
                    } else {
                        results[group]?.detail =
                            "applied, and could not be undone: \(undone[group].map(Self.text) ?? "not attempted")"
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

    /// Records the settings `report` read as the VF's original unless one is
    /// recorded already: a VF handed over as it was (nothing written) still
    /// has its original from then on, and what sriovd changes later (a
    /// drift corrected) is put back to it, not to what the drift left.
    func keepOriginal(_ report: VFReport) throws(ControllerError) {
        try recordOriginal(report.location, before: report.settings, changed: [])
    }

    /// Puts back exactly the settings sriovd changed on this VF since it
    /// first touched it, and forgets the original once they are back.
    public func restore(vf address: PCIAddress) async throws(ControllerError) -> VFReport {
        try await measured(.restore) { () throws(ControllerError) in
            try await self.serialize(vf: address) { (location) throws(ControllerError) in
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
            try await self.serialize(vf: address) { (location) throws(ControllerError) in
                if !releasing, await self.use(of: address).contains(.assigned) {
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

    /// Each field's `scrubbed` value: no MAC, untagged, spoof check on, trust
    /// and RSS query off, link disabled; the rates are left alone.
    static let scrubbed: VFConfig = {
        var config = VFConfig()
        for field in VFSettingField.all { field.setScrubbed(in: &config) }
        return config
    }()

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
        try await serialize(vf: address) { (location) throws(ControllerError) in
            if declared, !(await self.use(of: address)).isDisjoint(with: [.configured, .assigned]) {
                throw .conflict("\(address) is in use (configured through the API); the configuration file does not rebind it")
            }
            let current = await self.host.driver(of: address)
            if choice.isSatisfied(by: current) { return current }
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
        try await serializeExclusive(pf: pf) { () throws(ControllerError) in
            // Everything that can refuse is decided before anything changes:
            // a refused request leaves autoprobe as it was, too.
            let current = await self.host.numVFs(pf: pf) ?? 0
            // Between two nonzero counts the kernel goes through 0: every VF
            // is removed and recreated, not only those above the new count.
            var leaving: [(index: Int, address: PCIAddress)] = []
            if let count, count != current {
                leaving = await self.host.vfAddresses(pf: pf).filter { current != 0 || $0.index >= count }
            }
            if let count, !leaving.isEmpty && !force {
                var busy: [String] = []
                for vf in leaving {
                    let use = await self.use(of: vf.address)
                    if !use.isEmpty { busy.append("VF \(vf.index) (\(vf.address), \(use))") }
                }
                if !busy.isEmpty {
                    throw .conflict(
                        "changing \(pf) from \(current) to \(count) VFs would remove \(busy.joined(separator: ", ")); release them first or set force")
                }
            }
            if let driversAutoprobe {
                do { try await self.host.setDriversAutoprobe(pf: pf, enabled: driversAutoprobe) } catch {
                    throw .hostFailure("setting sriov_drivers_autoprobe of \(pf): \(error)")
                }
            }
            guard let count, count != current else { return }
            do {
                try await self.host.setNumVFs(pf: pf, to: count, timeout: self.numVFsTimeout)
            } catch {
                throw .hostFailure("setting sriov_numvfs of \(pf) to \(count): \(error)")
            }
            for vf in leaving { try? self.store.forgetOriginal(of: vf.address) }
            self.events.publish(.pfNumVFs(count: count, previous: current), EventSubject(pf: pf))
        }
    }

    // MARK: Questions

    /// Why the VF is in use (assigned, configured through the API, bound to
    /// vfio-pci); empty when it is free. The one place this is decided.
    public func use(of vf: PCIAddress) async -> VFUse {
        VFUse.of(vf, store: store, driver: await host.driver(of: vf))
    }

    /// The VFs sriovd's own state holds (assigned, or configured through the
    /// API), which the configuration file leaves alone.
    public func heldVFs() throws -> Set<PCIAddress> {
        try VFUse.held(in: store)
    }

    /// The VF at `address` now; nil when there is none (its PF's count changed).
    public func location(of address: PCIAddress) async -> VFLocation? {
        await host.locate(vf: address)
    }

    /// Whether `pf` is an SR-IOV PF of this host.
    public func isSRIOVPF(_ pf: PCIAddress) async -> Bool {
        await totalVFs(pf: pf) != nil
    }

    /// The VFs `pf` has now, index → address.
    public func vfAddresses(of pf: PCIAddress) async -> [(index: Int, address: PCIAddress)] {
        await host.vfAddresses(pf: pf)
    }

    /// The driver the device is bound to now.
    public func driver(of device: PCIAddress) async -> String? {
        await host.driver(of: device)
    }

    /// Whether the VF's driver is what `choice` asks for.
    public func driverMatches(_ vf: PCIAddress, _ choice: VFDriverChoice) async -> Bool {
        choice.isSatisfied(by: await host.driver(of: vf))
    }

    /// The VF as the API shows it, with `settings`.
    public func describe(_ location: VFLocation, settings: VFSettings = VFSettings()) async -> VirtualFunction {
        await host.describe(location, settings: settings)
    }

    /// Whether the PF can carry VFs now (driver and netdev).
    public func presence(of pf: PCIAddress) async -> PFPresence {
        await host.presence(of: pf)
    }

    /// Every VF's settings on `pf`, from one read of the PF's link.
    public func vfSettings(pf: PCIAddress) async throws(ControllerError) -> [Int: VFSettings] {
        do { return try await host.vfSettings(pf: pf) } catch { throw .hostFailure("reading the VFs of \(pf): \(error)") }
    }

    /// The PF's `sriov_totalvfs` (nil: not an SR-IOV PF).
    public func totalVFs(pf: PCIAddress) async -> Int? {
        await host.totalVFs(pf: pf)
    }

    /// The PF's VF count now (nil: not an SR-IOV PF).
    public func numVFs(pf: PCIAddress) async -> Int? {
        await host.numVFs(pf: pf)
    }

    /// The VFs and PFs locked now, named (empty when no work runs).
    func heldLocks() async -> [String] {
        (await vfLocks.busyKeys).map { "vf \($0)" }.sorted() + (await pfLocks.busyKeys).map { "pf \($0)" }.sorted()
    }

    /// Forgets the original settings of a VF that no longer exists.
    public func forgetGone(vf: PCIAddress) {
        try? store.forgetOriginal(of: vf)
    }

    // MARK: Internals

    private static func text(_ outcome: VFAttributeResult.Outcome) -> String {
        switch outcome {
        case .applied: "applied"
        case .unsupported(let reason): "unsupported(\"\(reason)\")"
        case .failed(_, let message): "failed(\"\(message)\")"
        }
    }

    private func locate(_ address: PCIAddress) async throws(ControllerError) -> VFLocation {
        guard let location = await host.locate(vf: address) else {
            throw .notFound("no SR-IOV virtual function at \(address)")
        }
        return location
    }

    /// Runs `body` on the VF at `vf` while holding its PF shared (a VF-count
    /// change waits for it, and it waits for one in progress) and the VF
    /// alone. The VF is located again once the PF is held: a count change
    /// that ran meanwhile may have removed it.
    private func serialize<T: Sendable>(
        vf: PCIAddress, _ body: @Sendable (VFLocation) async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        let pf = try await locate(vf).pf
        do {
            return try await pfLocks.withShared(pf) {
                let location = try await self.locate(vf)
                guard location.pf == pf else { throw ControllerError.notFound("no SR-IOV virtual function at \(vf)") }
                return try await self.vfLocks.withLock(vf) { try await body(location) }
            }
        } catch let error as ControllerError {
            throw error
        } catch {
            throw .hostFailure("\(error)")
        }
    }

    /// Runs `body` holding the PF alone: no work on its VFs runs meanwhile.
    private func serializeExclusive<T: Sendable>(
        pf: PCIAddress, _ body: @Sendable () async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        do {
            return try await pfLocks.withExclusive(pf) { try await body() }
        } catch let error as ControllerError {
            throw error
        } catch {
            throw .hostFailure("\(error)")
        }
    }

    /// The host's per-attribute results as per-group outcomes.
    private static func outcomes(_ results: [VFAttributeResult]) -> [VFSettingGroup: VFAttributeResult.Outcome] {
        Dictionary(results.map { ($0.group, $0.outcome) }, uniquingKeysWith: { $1 })
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
        var config = Self.writingBack(original.settings, original.changed)
        var results: [SettingResult] = []
        // A group whose original the driver never reported cannot be put back.
        for group in original.changed where !VFSettingGroup.groups(in: config).contains(group) {
            results.append(SettingResult(setting: group, outcome: .skipped, detail: "the original value was not reported by the driver"))
        }
        // Only what differs now is written: a setting whose change never took
        // (or was rolled back) is already as it was.
        let current = try await readSettings(location)
        for group in VFSettingGroup.groups(in: config) where group.matches(config, reported: current) {
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
        let outcomes = Self.outcomes(await OperationTiming.host("netlink.write") { await host.write(config, to: location) })
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
            case .failed(_, let why):
                results[group] = SettingResult(setting: group, outcome: .failed, detail: why)
            }
        }
        var attempt = 0
        var last = VFSettings()
        var lastRead: VFSettings?
        while !pending.isEmpty {
            last = try await readSettings(location)
            lastRead = last
            pending = pending.filter { !$0.matches(config, reported: last) }
            attempt += 1
            if pending.isEmpty || attempt >= verifyAttempts { break }
            try? await Task.sleep(for: verifyInterval)
        }
        for group in pending {
            results[group] = SettingResult(
                setting: group, outcome: .failed,
                detail: "written, but the PF still reports \(group.summary(of: last, naming: .api, missing: "nothing"))"
                    + " after \(attempt) reads")
        }
        return (results, lastRead)
    }

    /// What `reported` had in `groups`, as a config that writes it back
    /// (rollback, restore); a group the driver did not report is left out.
    static func writingBack(_ reported: VFSettings, _ groups: some Sequence<VFSettingGroup>) -> VFConfig {
        var config = VFConfig()
        for group in groups { group.copy(from: group.writingBack(reported), to: &config) }
        return config
    }

    /// One event per change: what was asked and each setting's outcome.
    private func publish(_ action: VFSettingsChange.Action, _ location: VFLocation, _ report: VFReport) {
        events.publish(.vfSettings(VFSettingsChange(action: action, results: report.results)), EventSubject(location))
    }
}
