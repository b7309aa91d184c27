import Foundation
import Logging
import SRIOVCore
import SRIOVHost
import Synchronization

/// An inventory that records what it reads in the state store's PFs and VFs
/// seen (`StateStore.recordPFs`, `recordVFs`), and logs PFs that appear or
/// go. Reads are answered as the host inventory gives them; a listing equal
/// to the last one recorded writes nothing, and a store that cannot be
/// written is logged, never turned into a failed read.
public final class RecordingInventory: InventorySource {
    let base: any InventorySource
    let store: StateStore
    let logger: Logger
    private let last = Mutex<Snapshot>(Snapshot())

    private struct Snapshot {
        var pfs: [PCIAddress: StateStore.SeenPF.Observed]?
        var vfs: [PCIAddress: StateStore.SeenVF.Observed] = [:]
        /// Whether `vfs` holds a complete listing (until then every listing is written).
        var vfsComplete = false
    }

    public init(_ base: any InventorySource, store: StateStore, logger: Logger) {
        self.base = base
        self.store = store
        self.logger = logger
    }

    public func physicalFunctions() async throws -> [PhysicalFunction] {
        let pfs = try await base.physicalFunctions()
        record(pfs: pfs)
        return pfs
    }

    public func physicalFunction(_ address: PCIAddress) async throws -> PhysicalFunctionDetail? {
        let detail = try await base.physicalFunction(address)
        if let detail { record(vfs: detail.vfs, of: address) }
        return detail
    }

    public func virtualFunctions(pf: PCIAddress?) async throws -> [VirtualFunction] {
        let vfs = try await base.virtualFunctions(pf: pf)
        // One PF's listing is empty both when it has no VFs and when it is no
        // PF at all: only a PF known to the store scopes a listing.
        record(vfs: vfs, of: pf)
        return vfs
    }

    /// Reads every PF and every VF once and records them: at start, so what
    /// changed while sriovd was down is logged before it serves. Returns the
    /// number of PFs (0 when the inventory cannot be read).
    @discardableResult
    public func recordAll() async -> Int {
        do {
            let pfs = try await physicalFunctions()
            _ = try await virtualFunctions(pf: nil)
            return pfs.count
        } catch {
            logger.warning("cannot read the inventory to record it", metadata: ["error": "\(error)"])
            return 0
        }
    }

    private func record(pfs: [PhysicalFunction]) {
        let observed = Dictionary(pfs.map { ($0.pciAddress, StateStore.SeenPF.Observed($0)) }, uniquingKeysWith: { a, _ in a })
        guard last.withLock({ $0.pfs != observed }) else { return }
        do {
            let changes = try store.recordPFs(pfs)
            last.withLock { $0.pfs = observed }
            let byAddress = Dictionary(pfs.map { ($0.pciAddress, $0) }, uniquingKeysWith: { a, _ in a })
            for address in changes.appeared + changes.returned {
                let pf = byAddress[address]
                logger.info(
                    changes.returned.contains(address) ? "PF is back" : "PF seen for the first time",
                    metadata: .event(
                        .pfAppeared,
                        [
                            "op": "pf.appeared", "pf": "\(address)", "driver": "\(pf?.driver ?? "none")",
                            "numVFs": "\(pf?.numVFs ?? 0)", "totalVFs": "\(pf?.totalVFs ?? 0)",
                        ]))
            }
            for address in changes.gone {
                logger.warning(
                    "PF seen before is gone (device removed, or its driver unbound)",
                    metadata: .event(.pfGone, ["op": "pf.gone", "pf": "\(address)"]))
            }
            for address in changes.changed {
                let pf = byAddress[address]
                logger.info(
                    "PF changed", metadata: [
                        "op": "pf.seen", "pf": "\(address)", "driver": "\(pf?.driver ?? "none")",
                        "netdev": "\(pf?.netdev ?? "none")", "numVFs": "\(pf?.numVFs ?? 0)",
                    ])
            }
        } catch {
            logger.warning("cannot record the PFs seen", metadata: ["error": "\(error)"])
        }
    }

    private func record(vfs: [VirtualFunction], of pf: PCIAddress?) {
        let observed = Dictionary(vfs.map { ($0.pciAddress, StateStore.SeenVF.Observed($0)) }, uniquingKeysWith: { a, _ in a })
        let unchanged = last.withLock { snapshot in
            let before = pf.map { pf in snapshot.vfs.filter { $0.value.pf == pf } } ?? snapshot.vfs
            return snapshot.vfsComplete && before == observed
        }
        if unchanged { return }
        do {
            let changes = try store.recordVFs(vfs, of: pf)
            last.withLock { snapshot in
                if let pf {
                    snapshot.vfs = snapshot.vfs.filter { $0.value.pf != pf }
                } else {
                    snapshot.vfs = [:]
                    snapshot.vfsComplete = true
                }
                snapshot.vfs.merge(observed) { _, new in new }
            }
            guard !changes.isEmpty else { return }
            func list(_ addresses: [PCIAddress]) -> Logger.MetadataValue {
                .string(addresses.map(\.description).joined(separator: " "))
            }
            var metadata: Logger.Metadata = ["op": "vf.seen"]
            if let pf { metadata["pf"] = "\(pf)" }
            if !changes.appeared.isEmpty || !changes.returned.isEmpty { metadata["appeared"] = list(changes.appeared + changes.returned) }
            if !changes.gone.isEmpty { metadata["gone"] = list(changes.gone) }
            if !changes.changed.isEmpty { metadata["changed"] = list(changes.changed) }
            logger.debug("VFs seen changed", metadata: metadata)
        } catch {
            logger.warning("cannot record the VFs seen", metadata: ["error": "\(error)"])
        }
    }
}
