#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SRIOVCore

/// One line of `GET /v1/events` (newline-delimited JSON): a state change
/// sriovd made or saw, or one of the stream's own lines (`heartbeat`,
/// `resync`, `overflow`).
///
/// - An event: its `seq` (1, 2, 3... per daemon run), `time`, dotted `type`
///   (`assignment.created`, `vf.configured`, `pf.numvfs`...), the PF, VF,
///   VM and NIC it concerns where they apply, and its `details`.
/// - `heartbeat`: nothing happened that the reader asked for; `seq` is where
///   the stream is (resume with `?since=` it).
/// - `resync`: the first line when `?since=` is older than sriovd still
///   holds (or is from an earlier run): events were lost, read the state
///   again; `seq` is where the replay starts after.
/// - `overflow`: the last line when the reader fell too far behind; `seq`
///   is the last event sent, `details.since` says how to resume.
public struct EventLine: Hashable, Sendable, Codable {
    public var seq: UInt64
    public var time: Date
    public var type: String
    public var pf: PCIAddress?
    public var vf: PCIAddress?
    public var vfIndex: Int?
    public var vm: String?
    public var nic: String?
    /// What changed, by type (an object); absent on a heartbeat.
    public var details: JSONValue?

    public init(
        seq: UInt64, time: Date, type: String, pf: PCIAddress? = nil, vf: PCIAddress? = nil, vfIndex: Int? = nil,
        vm: String? = nil, nic: String? = nil, details: JSONValue? = nil
    ) {
        self.seq = seq
        self.time = time
        self.type = type
        self.pf = pf
        self.vf = vf
        self.vfIndex = vfIndex
        self.vm = vm
        self.nic = nic
        self.details = details
    }

    /// The stream's own line types; every other type is a state change.
    public static let heartbeat = "heartbeat"
    public static let resync = "resync"
    public static let overflow = "overflow"

    /// A state change, not one of the stream's own lines.
    public var isEvent: Bool { ![Self.heartbeat, Self.resync, Self.overflow].contains(type) }

    /// A type or type prefix as a reader may ask for it (`?type=`,
    /// `sriovctl events --type`): 1-64 lowercase letters, digits, '.', '_'
    /// and '-' (`assignment.`, `vf.configured`). The one rule for both ends.
    public static func checkedTypePrefix(_ text: String, field: String) throws(ValidationError) -> String {
        let allowed = text.unicodeScalars.allSatisfy { c in
            ("a"..."z").contains(c) || ("0"..."9").contains(c) || "._-".unicodeScalars.contains(c)
        }
        guard !text.isEmpty, text.utf8.count <= 64, allowed else {
            throw ValidationError(
                field: field, value: text,
                reason: "is not an event type or prefix: 1-64 lowercase letters, digits, '.', '_' and '-' (e.g. assignment.)")
        }
        return text
    }
}
