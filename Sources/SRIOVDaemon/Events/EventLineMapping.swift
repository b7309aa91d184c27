import Foundation
import SRIOVAPI
import SRIOVCore

extension EventLine {
    /// A state event as the event stream writes it: `type` is the event's
    /// `kind` (the one switch that names kinds, `StateChange.kind`), its
    /// subject as `pf`, `vf`, `vfIndex`, `vm`, `nic`, and `details` by change.
    init(_ event: StateEvent) {
        self.init(
            seq: event.seq, time: event.time, type: event.kind, pf: event.subject.pf, vf: event.subject.vf,
            vfIndex: event.subject.vfIndex, vm: event.subject.vm, nic: event.subject.nic,
            details: .object(event.change.details))
    }
}

extension StateChange {
    /// What changed, as the event stream's `details` object. A new case
    /// gets its `kind` in `StateChange.kind` and its details here.
    var details: [String: JSONValue] {
        switch self {
        case .daemonStarted(let start):
            return [
                "socket": .string(start.socket), "activated": .bool(start.activated),
                "pfCount": .integer(Int64(start.pfCount)), "version": .string(start.version),
            ]
        case .daemonStopping:
            return [:]
        case .pfNumVFs(let count, let previous):
            return ["numVFs": .integer(Int64(count)), "previous": .integer(Int64(previous))]
        case .pfAppeared(let pf, let returned):
            return pf.details.merging(["returned": .bool(returned)]) { _, new in new }
        case .pfGone:
            return [:]
        case .pfChanged(let pf):
            return pf.details
        case .vfsSeen(let seen):
            return [
                "appeared": .addresses(seen.appeared), "gone": .addresses(seen.gone), "changed": .addresses(seen.changed),
            ]
        case .vfSettings(let change):
            return [
                "action": .string(change.action.rawValue), "failed": .bool(change.failed),
                "results": .array(
                    change.results.map { result in
                        var member: [String: JSONValue] = [
                            "setting": .string(result.setting.rawValue), "outcome": .string(result.outcome.rawValue),
                        ]
                        if let detail = result.detail { member["detail"] = .string(detail) }
                        return .object(member)
                    }),
            ]
        case .vfBound(let driver, let previous):
            return ["driver": .optional(driver), "previous": .optional(previous)]
        case .assignmentCreated(let a), .assignmentChanged(let a), .assignmentReleased(let a):
            return ["assignment": .encoding(a)]
        case .reconcilePass(let pass):
            return [
                "trigger": .string(pass.trigger), "summary": .string(pass.summary), "changed": .bool(pass.changed),
                "failed": .bool(pass.failed),
            ]
        case .migrationState(let change):
            var details: [String: JSONValue] = [
                "migration": .integer(Int64(change.id)), "role": .string(change.role.rawValue),
                "state": .string(change.state.rawValue), "previous": .optional(change.previous?.rawValue),
                "nics": .array(change.nics.map { .string($0) }),
            ]
            if let error = change.error { details["error"] = .encoding(error) }
            return details
        case .migrationStep(let step):
            return ["step": .encoding(step)]
        case .pfLost(let loss):
            return ["reason": .string(loss.reason), "driver": .optional(loss.driver), "numVFs": .integer(Int64(loss.numVFs))]
        case .pfBack(let pf):
            return pf.details
        case .assignmentDegraded(let a):
            return ["assignment": .encoding(a), "reason": .optional(a.reason)]
        case .assignmentHealed(let a, let report):
            var steps: [String: JSONValue] = [:]
            for step in report.steps { steps[step.name] = .number(step.ms.rounded(toPlaces: 1)) }
            var details: [String: JSONValue] = [
                "assignment": .encoding(a), "attempt": .integer(Int64(report.attempt)), "stepsMs": .object(steps),
                "totalMs": .number(report.totalMs.rounded(toPlaces: 1)),
            ]
            if let since = report.sinceLossMs { details["sinceLossMs"] = .number(since.rounded(toPlaces: 1)) }
            return details
        case .assignmentFailed(let a, let attempts):
            return ["assignment": .encoding(a), "reason": .optional(a.reason), "attempts": .integer(Int64(attempts))]
        case .vfDrift(let drift):
            var details: [String: JSONValue] = [
                "setting": .string(drift.setting.rawValue), "expected": .string(drift.expected),
                "found": .string(drift.found), "source": .string(drift.source.rawValue),
                "action": .string(drift.action.rawValue), "trigger": .string(drift.trigger),
            ]
            if let detail = drift.detail { details["detail"] = .string(detail) }
            return details
        }
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        let scale = (0..<places).reduce(1.0) { r, _ in r * 10 }
        return (self * scale).rounded() / scale
    }
}

extension PFSeen {
    fileprivate var details: [String: JSONValue] {
        [
            "driver": .optional(driver), "netdev": .optional(netdev), "numVFs": .integer(Int64(numVFs)),
            "totalVFs": .integer(Int64(totalVFs)),
        ]
    }
}

extension JSONValue {
    fileprivate static func optional(_ text: String?) -> JSONValue { text.map { .string($0) } ?? .null }

    fileprivate static func addresses(_ list: [PCIAddress]) -> JSONValue { .array(list.map { .string($0.description) }) }

    /// A body as the API encodes it (`APIJSON`), as a value.
    fileprivate static func encoding(_ value: some Encodable) -> JSONValue {
        guard let data = try? APIJSON.encoder().encode(value),
            let json = try? APIJSON.decoder().decode(JSONValue.self, from: data)
        else { return .null }
        return json
    }
}
