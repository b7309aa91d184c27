import SRIOVAPI
import SRIOVCore

/// Which events a reader of the event stream wants: by type (any of
/// `typePrefixes`, each matching a type that starts with it, such as
/// `assignment.`), by PF and by VM. Every part given must match; an empty
/// part matches everything.
public struct EventFilter: Sendable, Hashable {
    public var typePrefixes: [String]
    public var pf: PCIAddress?
    public var vm: String?

    public init(typePrefixes: [String] = [], pf: PCIAddress? = nil, vm: String? = nil) {
        self.typePrefixes = typePrefixes
        self.pf = pf
        self.vm = vm
    }

    public func matches(_ event: StateEvent) -> Bool {
        if !typePrefixes.isEmpty, !typePrefixes.contains(where: { event.kind.hasPrefix($0) }) { return false }
        if let pf, event.subject.pf != pf { return false }
        if let vm, event.subject.vm != vm { return false }
        return true
    }
}
