import SRIOVCore

/// How sriovctl shows the event stream to a person: one line per event,
/// `time  #seq  type  subject  detail`; heartbeats are not shown. Scripts use
/// the JSON lines instead (`--json`).
public enum EventText {
    /// The line for `event`, or nil for a heartbeat.
    public static func line(_ event: JSONValue) -> String? {
        let type = event["type"]?.stringValue ?? "?"
        let details = event["details"] ?? .object([:])
        switch type {
        case "heartbeat":
            return nil
        case "resync", "overflow":
            return "-- \(type): \(details["detail"]?.stringValue ?? "")"
        default:
            let time = event["time"]?.stringValue ?? "-"
            let seq = event["seq"]?.intValue.map { "#\($0)" } ?? "#?"
            return [time, seq, type, subject(event), detail(type, details)].filter { !$0.isEmpty }.joined(separator: "  ")
        }
    }

    /// `vm/nic VF (VF n of PF)`, or whichever of them the event names.
    static func subject(_ event: JSONValue) -> String {
        var parts: [String] = []
        if let vm = event["vm"]?.stringValue {
            parts.append(event["nic"]?.stringValue.map { "\(vm)/\($0)" } ?? vm)
        }
        let pf = event["pf"]?.stringValue
        if let vf = event["vf"]?.stringValue {
            let index = event["vfIndex"]?.intValue
            switch (index, pf) {
            case (let i?, let pf?): parts.append("\(vf) (VF \(i) of \(pf))")
            default: parts.append(vf)
            }
        } else if let pf {
            parts.append("PF \(pf)")
        }
        return parts.joined(separator: " ")
    }

    /// A short account of what changed, by type; unknown types show their
    /// details' plain members, `key=value`.
    static func detail(_ type: String, _ d: JSONValue) -> String {
        func text(_ key: String) -> String { d[key].map(plain) ?? "-" }
        switch type {
        case "pf.numvfs":
            return "VFs \(text("previous")) -> \(text("numVFs"))"
        case "vf.bound":
            return "driver \(text("previous")) -> \(text("driver"))"
        case "vf.configured", "vf.restored", "vf.scrubbed":
            let results = (d["results"]?.arrayValue ?? []).map { "\(plainOf($0["setting"]))=\(plainOf($0["outcome"]))" }
            return (d["failed"]?.boolValue == true ? "FAILED " : "") + results.joined(separator: ",")
        case "assignment.created", "assignment.changed", "assignment.released":
            let a = d["assignment"] ?? .object([:])
            return "driver \(plainOf(a["driver"])), state \(plainOf(a["state"]))"
        case "pf.appeared", "pf.changed":
            return "driver \(text("driver")), \(text("numVFs"))/\(text("totalVFs")) VFs"
        case "reconcile.pass":
            return "\(text("trigger")): \(text("summary"))"
        case "pf.lost":
            return "\(text("reason")) (had \(text("numVFs")) VFs)"
        case "pf.back":
            return "driver \(text("driver")), \(text("netdev")), \(text("numVFs"))/\(text("totalVFs")) VFs"
        case "assignment.degraded", "assignment.failed":
            return text("reason")
        case "assignment.healed":
            let stepsMs = d["stepsMs"] ?? .object([:])
            let steps = ["numvfs", "program", "bind", "attach"].compactMap { name in
                stepsMs[name].map { "\(name) \(plain($0)) ms" }
            }
            return "attempt \(text("attempt")), \(text("totalMs")) ms (\(steps.joined(separator: ", ")))"
        case "vf.drift":
            return "\(text("setting")) \(text("action")): expected \(text("expected")), found \(text("found")) (\(text("source")), \(text("trigger")))"
        case "sriovd.started":
            return "version \(text("version")), \(text("pfCount")) PF(s)"
        default:
            guard case .object(let members) = d else { return "" }
            return members.keys.sorted().compactMap { key in
                switch members[key]! {
                case .array, .object: nil
                case let value: "\(key)=\(plain(value))"
                }
            }.joined(separator: " ")
        }
    }

    private static func plainOf(_ value: JSONValue?) -> String { value.map(plain) ?? "-" }

    private static func plain(_ value: JSONValue) -> String {
        switch value {
        case .null: "none"
        case .bool(let b): b ? "yes" : "no"
        case .integer(let i): String(i)
        case .number(let n): String(n)
        case .string(let s): s
        case .array(let items): items.map(plain).joined(separator: ",")
        case .object: "{...}"
        }
    }
}
