import Logging
import ServiceLifecycle
import SRIOVCore
import SRIOVHost

/// What became of one planned change.
public struct ReconcileResult: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case applied
        /// The host already had it when the change was made.
        case unchanged
        /// Applied, except these setting groups, which the driver cannot do
        /// (e.g. link state on igb).
        case unsupported([VFSettingGroup])
        case failed(String)
        /// Not attempted.
        case skipped(String)

        /// As log records name it.
        public var name: String {
            switch self {
            case .applied: "applied"
            case .unchanged: "unchanged"
            case .unsupported: "unsupported"
            case .failed: "failed"
            case .skipped: "skipped"
            }
        }
    }

    public var change: ReconcileChange
    public var outcome: Outcome
    /// One result per setting group, for `vf.configure`.
    public var settings: [VFController.SettingResult]

    public init(change: ReconcileChange, outcome: Outcome, settings: [VFController.SettingResult] = []) {
        self.change = change
        self.outcome = outcome
        self.settings = settings
    }
}

/// One reconciliation pass: what was done and what was noticed.
public struct ReconcileReport: Sendable, Equatable {
    /// PF phase first, then VF phase, in the order applied.
    public var results: [ReconcileResult]
    public var notices: [ReconcileNotice]
    /// Why (part of) the pass could not be planned: the inventory or the
    /// state could not be read.
    public var errors: [String]

    public init(results: [ReconcileResult] = [], notices: [ReconcileNotice] = [], errors: [String] = []) {
        self.results = results
        self.notices = notices
        self.errors = errors
    }

    public func count(_ name: String) -> Int { results.filter { $0.outcome.name == name }.count }

    public var failed: Bool { !errors.isEmpty || results.contains { if case .failed = $0.outcome { true } else { false } } }

    /// `2 applied, 1 failed` or `nothing to change`.
    public var summary: String {
        let parts = ["applied", "unchanged", "unsupported", "failed", "skipped"].compactMap { name in
            let n = count(name)
            return n == 0 ? nil : "\(n) \(name)"
        } + (errors.isEmpty ? [] : ["\(errors.count) error\(errors.count == 1 ? "" : "s")"])
        return parts.isEmpty ? "nothing to change" : parts.joined(separator: ", ")
    }
}

/// Applies plans through the controller (never the host directly), one
/// change at a time, each logged as one record with its outcome. A change
/// that fails does not stop the others; the VFs of a PF whose count change
/// failed are not planned (the PF does not have its declared count).
public struct ReconcileExecutor: Sendable {
    let controller: VFController
    let inventory: any InventorySource
    let logger: Logger
    /// Drift already reported (shared with the watcher).
    let reported: DriftMemory

    public init(controller: VFController, inventory: any InventorySource, logger: Logger) {
        self.init(controller: controller, inventory: inventory, logger: logger, reported: DriftMemory())
    }

    init(controller: VFController, inventory: any InventorySource, logger: Logger, reported: DriftMemory) {
        self.controller = controller
        self.inventory = inventory
        self.logger = logger
        self.reported = reported
    }

    /// Both phases: plans and applies the PF phase, reads the host again,
    /// then plans and applies the VF phase.
    public func reconcile(_ configuration: SRIOVConfiguration) async -> ReconcileReport {
        let planner = ReconcilePlanner(configuration: configuration)
        var report = ReconcileReport()
        guard !configuration.pfs.isEmpty else { return report }

        let pfs: [PhysicalFunction]
        do {
            pfs = try await inventory.physicalFunctions()
        } catch {
            report.errors.append("cannot read the host's PFs: \(error)")
            return report
        }
        let pfPlan = planner.pfPhase(pfs.map { PhysicalFunctionDetail(pf: $0, vfs: []) })
        report.notices += pfPlan.notices
        report.results += await apply(pfPlan)
        if Self.isStopping { return report }

        let details: [PhysicalFunctionDetail]
        do {
            details = try await Self.details(of: pfs, selected: planner.selectedPFs(from: pfs), from: inventory)
        } catch {
            report.errors.append("cannot read the VFs of the managed PFs: \(error)")
            return report
        }
        let inUse: Set<PCIAddress>
        do {
            inUse = try controller.heldVFs()
        } catch {
            report.errors.append("cannot read which VFs are in use; VFs left alone: \(error)")
            return report
        }
        var vfPlan = planner.vfPhase(details, inUse: inUse)
        report.notices += vfPlan.notices
        // What a timer pass finds different from the declaration changed
        // behind sriovd's back: drift, corrected or only reported.
        let drift = ReconcileTrigger.current == "interval"
        if drift, configuration.daemon.drift == .report {
            var kept: [ReconcileChange] = []
            for change in vfPlan.changes {
                guard case .configureVF(let config, let current) = change.action, let vf = change.vf else {
                    kept.append(change)
                    continue
                }
                let differences = DriftComparison.differences(expected: config, reported: current)
                for d in reported.update(vf: vf.vf, current: differences) {
                    controller.events.publishDrift(d, subject: EventSubject(vf), source: .declared, action: .reported, trigger: "timer")
                }
                report.results.append(
                    ReconcileResult(change: change, outcome: .skipped("drift reported, not corrected (daemon.drift = report)")))
            }
            vfPlan.changes = kept
        }
        let results = await apply(vfPlan)
        if drift, configuration.daemon.drift == .correct {
            for result in results {
                guard case .configureVF(let config, let current) = result.change.action, let vf = result.change.vf else { continue }
                let action: VFDrift.Action
                switch result.outcome {
                case .applied: action = .corrected
                case .failed: action = .failed
                default: continue
                }
                for d in DriftComparison.differences(expected: config, reported: current) {
                    controller.events.publishDrift(d, subject: EventSubject(vf), source: .declared, action: action, trigger: "timer")
                }
            }
        }
        report.results += results
        return report
    }

    /// Applies `plan`'s changes in order, one at a time. Once graceful
    /// shutdown has begun (or the task is cancelled), the remaining changes
    /// are skipped; the one in progress completes.
    public func apply(_ plan: ReconcilePlan) async -> [ReconcileResult] {
        var results: [ReconcileResult] = []
        for change in plan.changes {
            let result: ReconcileResult
            if Self.isStopping {
                result = ReconcileResult(change: change, outcome: .skipped("sriovd is shutting down"))
            } else {
                result = await apply(change)
            }
            log(result)
            results.append(result)
        }
        return results
    }

    /// Applies one change and says how it went; never throws.
    public func apply(_ change: ReconcileChange) async -> ReconcileResult {
        do throws(ControllerError) {
            switch change.action {
            case .setDriversAutoprobe(let wanted, _):
                try await controller.setNumVFs(pf: change.pf, count: nil, driversAutoprobe: wanted, force: false)
                return ReconcileResult(change: change, outcome: .applied)
            case .setNumVFs(let wanted, _):
                // Never forced: a count that would remove a VF in use is refused.
                try await controller.setNumVFs(pf: change.pf, count: wanted, driversAutoprobe: nil, force: false)
                return ReconcileResult(change: change, outcome: .applied)
            case .configureVF(let config, _):
                guard let vf = change.vf else { return ReconcileResult(change: change, outcome: .failed("no VF given")) }
                let report = try await controller.applyDeclared(vf: vf.vf, config)
                return ReconcileResult(change: change, outcome: Self.outcome(of: report), settings: report.results)
            case .bindVF(let choice, _):
                guard let vf = change.vf else { return ReconcileResult(change: change, outcome: .failed("no VF given")) }
                // The API may have taken the VF since the plan was made.
                if !(await controller.use(of: vf.vf)).isDisjoint(with: [.configured, .assigned]) {
                    return ReconcileResult(change: change, outcome: .skipped("in use (configured through the API)"))
                }
                let now = try await controller.bindDeclared(vf: vf.vf, to: choice)
                if choice.isSatisfied(by: now) {
                    return ReconcileResult(change: change, outcome: .applied)
                }
                return ReconcileResult(change: change, outcome: .failed("bound to \(now ?? "no driver") after binding"))
            }
        } catch .conflict(let why) where change.vf != nil {
            return ReconcileResult(change: change, outcome: .skipped(why))
        } catch {
            return ReconcileResult(change: change, outcome: .failed(error.description))
        }
    }

    static func outcome(of report: VFController.VFReport) -> ReconcileResult.Outcome {
        let failed = report.results.filter { $0.outcome == .failed || $0.outcome == .rolledBack }
        if !failed.isEmpty {
            return .failed(
                failed.map { "\($0.setting.rawValue) \($0.outcome.rawValue)\($0.detail.map { ": \($0)" } ?? "")" }
                    .joined(separator: "; "))
        }
        let unsupported = report.results.filter { $0.outcome == .unsupported }.map(\.setting)
        if !unsupported.isEmpty { return .unsupported(unsupported) }
        return report.results.contains { $0.outcome == .applied } ? .applied : .unchanged
    }

    /// The PFs with the VFs of the `selected` ones read afresh; the others
    /// as listed, without VFs (the planner does not look at them).
    static func details(
        of pfs: [PhysicalFunction], selected: Set<PCIAddress>, from inventory: any InventorySource
    ) async throws -> [PhysicalFunctionDetail] {
        var details: [PhysicalFunctionDetail] = []
        for pf in pfs {
            if selected.contains(pf.pciAddress), let detail = try await inventory.physicalFunction(pf.pciAddress) {
                details.append(detail)
            } else {
                details.append(PhysicalFunctionDetail(pf: pf, vfs: []))
            }
        }
        return details
    }

    static var isStopping: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    private func log(_ result: ReconcileResult) {
        let change = result.change
        var metadata: Logger.Metadata = [
            "op": "\(change.op)", "pf": "\(change.pf)", "outcome": "\(result.outcome.name)", "change": "\(change)",
        ]
        if let vf = change.vf {
            metadata["vf"] = "\(vf.vf)"
            metadata["vfIndex"] = "\(vf.index)"
        }
        if !result.settings.isEmpty {
            metadata["settings"] = "\(result.settings.map { "\($0.setting.rawValue)=\($0.outcome.rawValue)" }.joined(separator: ","))"
        }
        let level: Logger.Level
        switch result.outcome {
        case .applied:
            level = .info
        case .unchanged:
            level = .debug
        case .unsupported(let groups):
            level = .notice
            metadata["unsupported"] = "\(groups.map(\.rawValue).joined(separator: ","))"
        case .failed(let reason):
            level = .error
            metadata["reason"] = "\(reason)"
        case .skipped(let reason):
            level = .warning
            metadata["reason"] = "\(reason)"
        }
        logger.log(level: level, "declared change \(result.outcome.name)", metadata: metadata)
    }
}
