import SRIOVCore
import SRIOVHost

/// Why a VF is in use; empty when it is free. Decided here only: the
/// controller, assignments, reconciliation and `sriovd plan` all ask this.
public struct VFUse: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Assigned to a VM NIC.
    public static let assigned = VFUse(rawValue: 1 << 0)
    /// Configured through the API: sriovd holds its original settings.
    public static let configured = VFUse(rawValue: 1 << 1)
    /// Bound to vfio-pci (by sriovd or anyone else): a VM may hold it.
    public static let boundToVFIO = VFUse(rawValue: 1 << 2)

    /// A VF whose state cannot be read counts as in use.
    static func of(_ vf: PCIAddress, store: StateStore, driver: String?) -> VFUse {
        var use: VFUse = []
        if (try? store.isAssigned(vf)) != false { use.insert(.assigned) }
        if (try? store.original(of: vf)) != nil { use.insert(.configured) }
        if driver == "vfio-pci" { use.insert(.boundToVFIO) }
        return use
    }

    /// The VFs sriovd's own state holds (assigned, or configured through the
    /// API): the configuration file leaves them alone.
    static func held(in store: StateStore) throws -> Set<PCIAddress> {
        Set(try store.allOriginals().map(\.vf)).union(try store.assignments().map(\.vf))
    }

    public var description: String {
        var parts: [String] = []
        if contains(.assigned) { parts.append("assigned to a VM NIC") }
        if contains(.configured) { parts.append("configured by sriovd") }
        if contains(.boundToVFIO) { parts.append("bound to vfio-pci") }
        return parts.isEmpty ? "free" : parts.joined(separator: ", ")
    }
}
