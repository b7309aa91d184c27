import Foundation
import Logging
import SRIOVCore
import SRIOVHost

/// What `sriovd plan` shows: both phases planned against the host as it is
/// now, without changing anything. The VF phase covers only VFs that exist
/// now; those of a PF whose count is still to change are planned after it.
public struct ReconcilePreview: Sendable {
    public var pfPhase: ReconcilePlan
    public var vfPhase: ReconcilePlan
    /// Set when sriovd's state could not be read: VFs configured through the
    /// API could not be told apart, and may appear in the VF phase.
    public var stateWarning: String?

    /// Changes are pending in either phase.
    public var hasChanges: Bool { !pfPhase.isEmpty || !vfPhase.isEmpty }

    public init(pfPhase: ReconcilePlan, vfPhase: ReconcilePlan, stateWarning: String? = nil) {
        self.pfPhase = pfPhase
        self.vfPhase = vfPhase
        self.stateWarning = stateWarning
    }

    /// Plans both phases against `inventory`.
    public static func make(
        configuration: SRIOVConfiguration, inventory: any InventorySource, inUse: Set<PCIAddress>,
        stateWarning: String? = nil
    ) async throws -> ReconcilePreview {
        let planner = ReconcilePlanner(configuration: configuration)
        let pfs = try await inventory.physicalFunctions()
        let details = try await ReconcileExecutor.details(
            of: pfs, selected: planner.selectedPFs(from: pfs), from: inventory)
        return ReconcilePreview(
            pfPhase: planner.pfPhase(details), vfPhase: planner.vfPhase(details, inUse: inUse),
            stateWarning: stateWarning)
    }

    /// Plans both phases against this host (sysfs under `sysfsRoot`, netlink),
    /// with the in-use VFs from the state in `daemon.state_dir` when it exists.
    /// Opens nothing for writing except SQLite's own lock files.
    public static func host(
        configuration: SRIOVConfiguration, sysfsRoot: String = "/sys", logger: Logger
    ) async throws -> ReconcilePreview {
        let inventory = KernelHost(sysfs: SysfsTree(root: sysfsRoot), names: PCINames(logger: logger), logger: logger)
        var inUse: Set<PCIAddress> = []
        var warning: String?
        let directory = configuration.daemon.stateDirectory
        if FileManager.default.fileExists(atPath: directory + "/state.db") {
            do {
                inUse = try VFUse.held(in: StateStore(directory: directory))
            } catch {
                warning = "cannot read sriovd's state in \(directory) (\(error)); VFs configured through the API"
                    + " are not recognised and may be listed below, though sriovd would leave them alone"
            }
        }
        return try await make(configuration: configuration, inventory: inventory, inUse: inUse, stateWarning: warning)
    }

    /// The plan as text for a terminal.
    public func text(configPath: String?) -> String {
        var lines: [String] = []
        lines.append("Configuration: \(configPath ?? "none (defaults: no PF managed)")")
        if let stateWarning { lines.append("warning: \(stateWarning)") }
        lines.append("")
        lines.append("PF phase (sriov_drivers_autoprobe, then the VF count):")
        lines += pfPhase.changes.isEmpty ? ["  nothing to change"] : pfPhase.changes.map { "  ~ \($0)" }
        lines.append("")
        lines.append("VF phase (settings, then driver, of the VFs that exist now):")
        lines += vfPhase.changes.isEmpty ? ["  nothing to change"] : vfPhase.changes.map { "  ~ \($0)" }
        let notices = pfPhase.notices + vfPhase.notices
        if !notices.isEmpty {
            lines.append("")
            lines.append("Notes:")
            lines += notices.map { "  \($0.isWarning ? "warning" : "note"): \($0)" }
        }
        let waiting = vfPhase.notices.filter { if case .waitingForVFCount = $0.kind { true } else { false } }
        lines.append("")
        if !waiting.isEmpty {
            lines.append(
                "The VF phase of \(waiting.compactMap(\.pf).map { "\($0)" }.joined(separator: ", ")) is planned after"
                    + " its VF count changes: VFs not yet created (or created anew) cannot be planned now.")
        }
        let count = pfPhase.changes.count + vfPhase.changes.count
        lines.append(
            count == 0
                ? "No changes: the host matches the configuration."
                : "\(count) change\(count == 1 ? "" : "s") pending. sriovd applies them at start, on SIGHUP,"
                    + " and every daemon.reconcile_interval_seconds.")
        return lines.joined(separator: "\n") + "\n"
    }
}
