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
            ]
            if let error = change.error { details["error"] = .encoding(error) }
            return details
        case .migrationStep(let step):
            return ["step": .encoding(step)]
        }
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
