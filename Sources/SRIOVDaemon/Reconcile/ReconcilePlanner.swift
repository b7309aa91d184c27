import SRIOVCore
import SRIOVHost

/// Computes what must change for the host to match the configuration file.
/// Pure: it reads the configuration and an inventory, and touches nothing.
///
/// Planning has two phases because VFs exist only once the count is set:
/// `pfPhase` plans each managed PF's `sriov_drivers_autoprobe` (first, so new
/// VFs can be programmed before a driver binds) and then its VF count; once
/// those are applied and the inventory read again, `vfPhase` plans, for each
/// VF below the declared count, the settings that differ and then its driver.
///
/// Only what the file sets and the host does not already have is planned:
/// a setting left out of the file is left alone.
public struct ReconcilePlanner: Sendable {
    public let configuration: SRIOVConfiguration

    public init(configuration: SRIOVConfiguration) {
        self.configuration = configuration
    }

    /// One managed PF and the entry that manages it.
    struct Assignment {
        var pf: PhysicalFunctionDetail
        var entry: SRIOVConfiguration.PF
        var entryIndex: Int
    }

    /// The PFs the entries select, in PCI address order. A PF selected by
    /// several entries is reported and managed by none; an entry selecting
    /// nothing is reported.
    func assignments(_ inventory: [PhysicalFunctionDetail]) -> (assigned: [Assignment], notices: [ReconcileNotice]) {
        let pfs = inventory.map(\.pf)
        var byPF: [PCIAddress: [Int]] = [:]
        var notices: [ReconcileNotice] = []
        for (i, entry) in configuration.pfs.enumerated() {
            let selected = entry.match.select(from: pfs)
            if selected.isEmpty {
                notices.append(ReconcileNotice(.pfNotFound(entry: i, match: entry.match)))
            }
            for pf in selected { byPF[pf.pciAddress, default: []].append(i) }
        }
        var assigned: [Assignment] = []
        for detail in inventory.sorted(by: { $0.pf.pciAddress < $1.pf.pciAddress }) {
            guard let entries = byPF[detail.pf.pciAddress] else { continue }
            if entries.count > 1 {
                notices.append(ReconcileNotice(.conflictingEntries(pf: detail.pf.pciAddress, entries: entries)))
                continue
            }
            assigned.append(Assignment(pf: detail, entry: configuration.pfs[entries[0]], entryIndex: entries[0]))
        }
        return (assigned, notices)
    }

    /// The PFs of `pfs` some entry selects (conflicting ones included): the
    /// ones whose VFs the VF phase needs read.
    public func selectedPFs(from pfs: [PhysicalFunction]) -> Set<PCIAddress> {
        Set(configuration.pfs.flatMap { $0.match.select(from: pfs).map(\.pciAddress) })
    }

    // MARK: PF phase

    /// `sriov_drivers_autoprobe`, then the VF count, PF by PF. Also reports
    /// entries that select no PF and PFs that several entries select.
    public func pfPhase(_ inventory: [PhysicalFunctionDetail]) -> ReconcilePlan {
        let (assigned, notices) = assignments(inventory)
        var plan = ReconcilePlan(phase: .pf, notices: notices)
        for a in assigned {
            let pf = a.pf.pf
            if let wanted = a.entry.driversAutoprobe, wanted != pf.driversAutoprobe {
                plan.changes.append(
                    ReconcileChange(pf: pf.pciAddress, action: .setDriversAutoprobe(wanted, current: pf.driversAutoprobe)))
            }
            if let wanted = a.entry.numVFs, wanted != pf.numVFs {
                if wanted > pf.totalVFs {
                    plan.notices.append(ReconcileNotice(.numVFsAboveTotal(
                        pf: pf.pciAddress, entry: a.entryIndex, numVFs: wanted, totalVFs: pf.totalVFs)))
                } else {
                    plan.changes.append(ReconcileChange(pf: pf.pciAddress, action: .setNumVFs(wanted, current: pf.numVFs)))
                }
            }
        }
        return plan
    }

    // MARK: VF phase

    /// For each VF below the declared count of each managed PF, in PF then VF
    /// order: the settings that differ from the declared ones, then the
    /// driver. A PF that does not have its declared count (the count change is
    /// still to come, or failed) is skipped and reported. VFs in `inUse`
    /// (configured through the API) are left alone entirely.
    public func vfPhase(_ inventory: [PhysicalFunctionDetail], inUse: Set<PCIAddress>) -> ReconcilePlan {
        var plan = ReconcilePlan(phase: .vf)
        for a in assignments(inventory).assigned {
            let pf = a.pf.pf
            if let wanted = a.entry.numVFs, wanted != pf.numVFs {
                plan.notices.append(ReconcileNotice(.waitingForVFCount(pf: pf.pciAddress, numVFs: wanted, current: pf.numVFs)))
                continue
            }
            let count = pf.numVFs
            let entries = Dictionary(
                configuration.vfs.filter { $0.pf == pf.pciAddress }.map { ($0.index, $0.config) },
                uniquingKeysWith: { first, _ in first })
            for index in entries.keys.sorted() where index >= count {
                plan.notices.append(ReconcileNotice(.vfEntryWithoutVF(pf: pf.pciAddress, index: index)))
            }
            let vfs = a.pf.vfs.filter { $0.index < count }.sorted { $0.index < $1.index }
            let missing = Set(0..<count).subtracting(vfs.map(\.index))
            if !missing.isEmpty {
                plan.notices.append(ReconcileNotice(.vfsMissing(pf: pf.pciAddress, indices: missing.sorted())))
            }
            let driver = a.entry.vfDriver
            for vf in vfs {
                let location = VFLocation(vf: vf.pciAddress, pf: pf.pciAddress, index: vf.index)
                let desired = Self.desiredSettings(defaults: a.entry.vfDefaults, entry: entries[vf.index])
                var changes: [ReconcileChange] = []
                do {
                    try desired.validate()
                    let differing = Self.differences(desired, vf.settings)
                    if !differing.isEmpty {
                        changes.append(ReconcileChange(
                            pf: pf.pciAddress, vf: location, action: .configureVF(differing, current: vf.settings)))
                    }
                } catch {
                    plan.notices.append(ReconcileNotice(.invalidVFSettings(location, reason: "\(error)")))
                }
                var heldByVFIO = false
                if let driver, !driver.isSatisfied(by: vf.driver) {
                    if vf.driver == VFDriverChoice.vfio.rawValue {
                        heldByVFIO = true
                    } else {
                        changes.append(ReconcileChange(
                            pf: pf.pciAddress, vf: location, action: .bindVF(driver, current: vf.driver)))
                    }
                }
                if inUse.contains(vf.pciAddress) {
                    // Report it only when the file would have changed it.
                    if !changes.isEmpty || heldByVFIO { plan.notices.append(ReconcileNotice(.vfInUse(location))) }
                    continue
                }
                if heldByVFIO, let driver {
                    plan.notices.append(ReconcileNotice(.vfHeldByVFIO(location, wanted: driver)))
                }
                plan.changes += changes
            }
        }
        return plan
    }

    /// A VF's declared settings: its PF's `vf_defaults` (never a MAC),
    /// overridden by its `[[vf]]` entry key by key, except that the VLAN tag
    /// (vlan, qos, vlan_proto) and the TX rates (min, max) are each one
    /// kernel attribute: an entry that sets any key of one takes all of it
    /// from the entry, as the entry was validated on its own.
    static func desiredSettings(defaults: VFConfig, entry: VFConfig?) -> VFConfig {
        var config = defaults.clearing(.mac)
        guard let entry else { return config }
        for group in VFSettingGroup.allCases where group.isSet(in: entry) { group.copy(from: entry, to: &config) }
        return config
    }

    /// `desired` without the groups `current` already shows. A value the
    /// driver does not report cannot be confirmed, so it is planned.
    static func differences(_ desired: VFConfig, _ current: VFSettings) -> VFConfig {
        var config = desired
        for group in VFSettingGroup.groups(in: desired) where group.matches(desired, reported: current) {
            config = config.clearing(group)
        }
        return config
    }
}
