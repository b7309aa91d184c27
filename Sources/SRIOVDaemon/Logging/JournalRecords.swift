import Foundation
import Logging
import SRIOVAPI
import SRIOVCore

/// The journal's view of the event bus: each `StateEvent` becomes one log
/// record, with the event's `MESSAGE_ID`, its subject as fields (`pf`, `vf`,
/// `vfIndex`, `vm`, `nic`; SRIOVD_PF... in the journal), what was done
/// (`op`) and its details, at a priority that says how it went. The record
/// names the code that published the event (CODE_FILE, CODE_LINE, CODE_FUNC).
///
/// A recorder of the bus (`EventBus.journaling(to:)`): it writes during
/// `publish`, so records come out in the order the changes were made.
public struct JournalRecords: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func record(_ event: StateEvent) {
        let record = Self.record(for: event)
        logger.log(
            level: record.level, "\(record.message)", metadata: record.metadata,
            file: event.source.file, function: event.source.function, line: event.source.line)
    }

    /// What is written for `event`.
    struct Record {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    static func record(for event: StateEvent) -> Record {
        var fields = subjectFields(event.subject)
        func record(_ level: Logger.Level, _ message: String, _ id: MessageID?, _ own: Logger.Metadata) -> Record {
            fields.merge(own) { _, new in new }
            return Record(level: level, message: message, metadata: id.map { Logger.Metadata.event($0, fields) } ?? fields)
        }
        switch event.change {
        case .daemonStarted(let start):
            return record(
                .info, "sriovd ready", .sriovdStarted,
                [
                    "socket": "\(start.socket)", "activated": "\(start.activated)", "pfs": "\(start.pfCount)",
                    "version": "\(start.version)",
                ])
        case .daemonStopping:
            return record(.info, "shutting down", .sriovdStopping, [:])
        case .pfNumVFs(let count, let previous):
            return record(
                .info, "VF count changed", .pfNumVFs, ["op": "pf.numvfs", "numVFs": "\(count)", "previous": "\(previous)"])
        case .pfAppeared(let pf, let returned):
            return record(
                .info, returned ? "PF is back" : "PF seen for the first time", .pfAppeared,
                [
                    "op": "pf.appeared", "driver": "\(pf.driver ?? "none")", "numVFs": "\(pf.numVFs)",
                    "totalVFs": "\(pf.totalVFs)",
                ])
        case .pfGone:
            return record(.warning, "PF seen before is gone (device removed, or its driver unbound)", .pfGone, ["op": "pf.gone"])
        case .pfChanged(let pf):
            return record(
                .info, "PF changed", nil,
                [
                    "op": "pf.seen", "driver": "\(pf.driver ?? "none")", "netdev": "\(pf.netdev ?? "none")",
                    "numVFs": "\(pf.numVFs)",
                ])
        case .vfsSeen(let seen):
            var own: Logger.Metadata = ["op": "vf.seen"]
            for (key, list) in [("appeared", seen.appeared), ("gone", seen.gone), ("changed", seen.changed)] where !list.isEmpty {
                own[key] = .string(list.map(\.description).joined(separator: " "))
            }
            return record(.debug, "VFs seen changed", nil, own)
        case .vfSettings(let change):
            let results = change.results.map { "\($0.setting.rawValue)=\($0.outcome.rawValue)" }.joined(separator: ",")
            let own: Logger.Metadata = ["op": "\(change.action.operation)", "results": "\(results)"]
            // A failed change has no MESSAGE_ID: it is not the event its kind names.
            if change.failed { return record(.error, "VF change failed", nil, own) }
            return record(.info, "VF changed", messageID(change.action), own)
        case .vfBound(let driver, let previous):
            return record(
                .info, "VF driver changed", .vfBound,
                ["op": "vf.bind", "driver": "\(driver ?? "none")", "previousDriver": "\(previous ?? "none")"])
        case .assignmentCreated(let a):
            return record(.info, "VF assigned", .assignmentCreated, assignmentFields(a, op: "assignment.create"))
        case .assignmentChanged(let a):
            return record(.info, "assignment changed", .assignmentChanged, assignmentFields(a, op: "assignment.update"))
        case .assignmentReleased(let a):
            return record(.info, "VF released", .assignmentReleased, assignmentFields(a, op: "assignment.release"))
        case .reconcilePass(let pass):
            return record(
                pass.failed ? .warning : pass.changed ? .info : .debug, "reconcile pass done", .reconcilePass,
                ["op": "reconcile", "trigger": "\(pass.trigger)", "outcome": "\(pass.summary)"])
        case .migrationState(let change):
            var own: Logger.Metadata = [
                "op": "migration", "migration": "\(change.id)", "role": "\(change.role.rawValue)",
                "state": "\(change.state)", "previousState": "\(change.previous?.rawValue ?? "none")",
            ]
            // SRIOVD_NIC once per NIC the migration moves.
            if !change.nics.isEmpty { own["nic"] = .array(change.nics.map { .string($0) }) }
            if let error = change.error {
                own["failedStep"] = "\(error.step)"
                own["error"] = "\(error.reason)"
            }
            return record(
                change.state == .failed ? .error : .notice, "migration \(change.state)", .migrationState, own)
        case .migrationStep(let step):
            var own: Logger.Metadata = [
                "op": "migration.\(step.operation)", "step": "\(step.step)", "result": "\(step.result)",
                "durationMs": "\(step.durationMs.map { String(format: "%.1f", $0) } ?? "none")",
            ]
            if let lever = step.lever { own["lever"] = "\(lever)" }
            if let detail = step.detail { own["detail"] = "\(detail)" }
            return record(
                step.result == "failed" ? .warning : .info, "migration step \(step.step): \(step.result)", .migrationStep, own)
        case .pfLost(let loss):
            return record(
                .warning, "PF lost: \(loss.reason); its VFs are gone", .pfLost,
                ["op": "pf.lost", "reason": "\(loss.reason)", "driver": "\(loss.driver ?? "none")", "numVFs": "\(loss.numVFs)"])
        case .pfBack(let pf):
            return record(
                .notice, "PF back", .pfBack,
                ["op": "pf.back", "driver": "\(pf.driver ?? "none")", "netdev": "\(pf.netdev ?? "none")", "numVFs": "\(pf.numVFs)"])
        case .assignmentDegraded(let a):
            var own = assignmentFields(a, op: "assignment.degrade")
            own["reason"] = "\(a.reason ?? "unknown")"
            return record(.warning, "assignment degraded: \(a.reason ?? "its VF is gone")", .assignmentDegraded, own)
        case .assignmentHealed(let a, let report):
            var own = assignmentFields(a, op: "assignment.heal")
            own["attempt"] = "\(report.attempt)"
            own["durationMs"] = "\(String(format: "%.1f", report.totalMs))"
            for step in report.steps { own["\(step.name)Ms"] = "\(String(format: "%.1f", step.ms))" }
            if let since = report.sinceLossMs { own["sinceLossMs"] = "\(String(format: "%.1f", since))" }
            return record(.notice, "assignment healed", .assignmentHealed, own)
        case .assignmentFailed(let a, let attempts):
            var own = assignmentFields(a, op: "assignment.heal")
            own["reason"] = "\(a.reason ?? "unknown")"
            own["attempts"] = "\(attempts)"
            return record(.error, "assignment could not be healed: \(a.reason ?? "")", .assignmentFailed, own)
        case .vfDrift(let drift):
            var own: Logger.Metadata = [
                "op": "vf.drift", "setting": "\(drift.setting.rawValue)", "expected": "\(drift.expected)",
                "found": "\(drift.found)", "source": "\(drift.source.rawValue)", "action": "\(drift.action.rawValue)",
                "trigger": "\(drift.trigger)",
            ]
            if let detail = drift.detail { own["detail"] = "\(detail)" }
            return record(
                drift.action == .failed ? .error : .warning,
                "VF \(drift.setting.name) drifted: expected \(drift.expected), found \(drift.found) (\(drift.action.rawValue))",
                .vfDrift, own)
        }
    }

    static func subjectFields(_ subject: EventSubject) -> Logger.Metadata {
        var fields: Logger.Metadata = [:]
        if let pf = subject.pf { fields["pf"] = "\(pf)" }
        if let vf = subject.vf { fields["vf"] = "\(vf)" }
        if let index = subject.vfIndex { fields["vfIndex"] = "\(index)" }
        if let vm = subject.vm { fields["vm"] = "\(vm)" }
        if let nic = subject.nic { fields["nic"] = "\(nic)" }
        return fields
    }

    static func assignmentFields(_ a: Assignment, op: String) -> Logger.Metadata {
        ["op": "\(op)", "driver": "\(a.driver.rawValue)"]
    }

    static func messageID(_ action: VFSettingsChange.Action) -> MessageID {
        switch action {
        case .configure, .declare: .vfConfigured
        case .restore: .vfRestored
        case .scrub: .vfScrubbed
        }
    }
}
