import SRIOVCore
import SRIOVHost

/// One change the reconciler will make to bring a PF or VF to what the
/// configuration file declares. A value: it says what and where, and carries
/// what the host reported when it was planned, for the description.
public struct ReconcileChange: Sendable, Hashable, CustomStringConvertible {
    public enum Action: Sendable, Hashable {
        /// `sriov_drivers_autoprobe`.
        case setDriversAutoprobe(Bool, current: Bool)
        /// `sriov_numvfs`.
        case setNumVFs(Int, current: Int)
        /// Only the setting groups that differ are set in the config.
        case configureVF(VFConfig, current: VFSettings)
        case bindVF(VFDriverChoice, current: String?)
    }

    public var pf: PCIAddress
    /// The VF, for VF changes.
    public var vf: VFLocation?
    public var action: Action

    public init(pf: PCIAddress, vf: VFLocation? = nil, action: Action) {
        self.pf = pf
        self.vf = vf
        self.action = action
    }

    /// The operation, as log records name it: `pf.autoprobe`, `pf.numvfs`,
    /// `vf.configure`, `vf.bind`.
    public var op: String {
        switch action {
        case .setDriversAutoprobe: "pf.autoprobe"
        case .setNumVFs: "pf.numvfs"
        case .configureVF: "vf.configure"
        case .bindVF: "vf.bind"
        }
    }

    /// The setting groups a `.configureVF` change sets; empty for the others.
    public var settingGroups: [VFSettingGroup] {
        guard case .configureVF(let config, _) = action else { return [] }
        return VFSettingGroup.groups(in: config).sorted()
    }

    /// `0000:01:00.0 VF 2 (0000:01:10.4): set trust false (now true)`.
    public var description: String {
        "\(subject): \(what)"
    }

    var subject: String {
        guard let vf else { return "\(pf)" }
        return "\(pf) VF \(vf.index) (\(vf.vf))"
    }

    private var what: String {
        switch action {
        case .setDriversAutoprobe(let wanted, let current):
            return "set sriov_drivers_autoprobe to \(wanted) (now \(current))"
        case .setNumVFs(let wanted, let current):
            var s = "set num_vfs to \(wanted) (now \(current))"
            if wanted != 0 && current != 0 {
                s += "; the kernel needs 0 first, so its \(current) VF\(current == 1 ? "" : "s") are removed and created anew"
            } else if wanted < current {
                s += "; its VFs are removed"
            }
            return s
        case .configureVF(let config, let current):
            let parts = VFSettingGroup.groups(in: config).sorted().map { group in
                "\(group.summary(of: config, naming: .config, missing: nil))"
                    + " (now \(group.summary(of: current, naming: .config, missing: "unknown")))"
            }
            return "set " + parts.joined(separator: ", ")
        case .bindVF(let choice, let current):
            return "bind to \(choice.rawValue) (now \(current ?? "no driver"))"
        }
    }
}

/// Something the planner found that is not a change: a PF the file names
/// that the host lacks, entries that clash, VFs left alone and why.
public struct ReconcileNotice: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// `pf[entry]` selects no PF on this host.
        case pfNotFound(entry: Int, match: SRIOVConfiguration.PFMatch)
        /// Several entries select this PF (a `pci` entry and a
        /// `vendor_device` entry): nothing is applied to it.
        case conflictingEntries(pf: PCIAddress, entries: [Int])
        /// `num_vfs` is above the PF's `sriov_totalvfs`: the count is not set.
        case numVFsAboveTotal(pf: PCIAddress, entry: Int, numVFs: Int, totalVFs: Int)
        /// The PF does not have its declared VF count (yet, or its change
        /// failed): its VFs are planned once it has.
        case waitingForVFCount(pf: PCIAddress, numVFs: Int, current: Int)
        /// The VF was configured through the API (sriovd holds its original
        /// settings): the file's settings and driver are not applied to it.
        case vfInUse(VFLocation)
        /// The VF is bound to vfio-pci and may be held by a VM: it is not
        /// moved to another driver automatically.
        case vfHeldByVFIO(VFLocation, wanted: VFDriverChoice)
        /// VFs below the declared count that the PF does not list.
        case vfsMissing(pf: PCIAddress, indices: [Int])
        /// A `[[vf]]` entry names a VF the PF does not have and will not get
        /// (its `[[pf]]` sets no `num_vfs`).
        case vfEntryWithoutVF(pf: PCIAddress, index: Int)
        /// Merging `vf_defaults` with the `[[vf]]` entry gave settings that
        /// cannot be applied together.
        case invalidVFSettings(VFLocation, reason: String)
    }

    public var kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
    }

    /// False for what is expected and harmless (an in-use VF left alone, VFs
    /// that will be planned after the count changes).
    public var isWarning: Bool {
        switch kind {
        case .vfInUse, .waitingForVFCount: false
        default: true
        }
    }

    public var pf: PCIAddress? {
        switch kind {
        case .pfNotFound: nil
        case .conflictingEntries(let pf, _), .numVFsAboveTotal(let pf, _, _, _), .waitingForVFCount(let pf, _, _),
            .vfsMissing(let pf, _), .vfEntryWithoutVF(let pf, _):
            pf
        case .vfInUse(let vf), .vfHeldByVFIO(let vf, _), .invalidVFSettings(let vf, _): vf.pf
        }
    }

    public var vf: VFLocation? {
        switch kind {
        case .vfInUse(let vf), .vfHeldByVFIO(let vf, _), .invalidVFSettings(let vf, _): vf
        default: nil
        }
    }

    public var description: String {
        switch kind {
        case .pfNotFound(let entry, let match):
            return "pf[\(entry)] (\(match)) selects no SR-IOV PF on this host; nothing is applied for it"
        case .conflictingEntries(let pf, let entries):
            let names = entries.map { "pf[\($0)]" }.joined(separator: " and ")
            return "\(pf) is selected by \(names); nothing is applied to it until one entry is removed"
        case .numVFsAboveTotal(let pf, let entry, let numVFs, let total):
            return "pf[\(entry)] asks \(pf) for num_vfs = \(numVFs), above its sriov_totalvfs (\(total)); the count is left alone"
        case .waitingForVFCount(let pf, let numVFs, let current):
            return "\(pf) has \(current) VF\(current == 1 ? "" : "s"), not the declared \(numVFs);"
                + " its VF settings and drivers are planned once the count has changed"
        case .vfInUse(let vf):
            return "\(vf.pf) VF \(vf.index) (\(vf.vf)) is in use (configured through the API); the file's settings are not applied to it"
        case .vfHeldByVFIO(let vf, let wanted):
            return "\(vf.pf) VF \(vf.index) (\(vf.vf)) is bound to vfio-pci and may be held by a VM; it is not rebound to"
                + " \(wanted.rawValue) automatically (rebind it through the API once it is free)"
        case .vfsMissing(let pf, let indices):
            return "\(pf) does not list VF\(indices.count == 1 ? "" : "s") \(Self.ranges(indices)) although it has"
                + " the declared count; they are planned when they appear"
        case .vfEntryWithoutVF(let pf, let index):
            return "a [[vf]] entry configures VF \(index) of \(pf), which it does not have (its [[pf]] sets no num_vfs)"
        case .invalidVFSettings(let vf, let reason):
            return "\(vf.pf) VF \(vf.index) (\(vf.vf)): vf_defaults and its [[vf]] entry together are not valid (\(reason)); not applied"
        }
    }

    /// `0-3,5`.
    static func ranges(_ indices: [Int]) -> String {
        SRIOVConfiguration.VFIndexSet(indices.map { $0...$0 }).description
    }
}

/// An ordered list of changes and what the planner noticed on the way.
public struct ReconcilePlan: Sendable, Hashable {
    public enum Phase: String, Sendable, Hashable {
        /// `sriov_drivers_autoprobe` and the VF count of each managed PF.
        case pf
        /// Settings and driver of each existing VF of a managed PF.
        case vf
    }

    public var phase: Phase
    /// In the order they are to be applied.
    public var changes: [ReconcileChange]
    public var notices: [ReconcileNotice]

    public init(phase: Phase, changes: [ReconcileChange] = [], notices: [ReconcileNotice] = []) {
        self.phase = phase
        self.changes = changes
        self.notices = notices
    }

    /// Nothing to change (notices may remain).
    public var isEmpty: Bool { changes.isEmpty }
}
