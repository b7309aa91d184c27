import Foundation
import Logging
import SRIOVCore
import SRIOVHost
import Synchronization

/// An inventory that records what it reads in the state store's PFs and VFs
/// seen (`StateStore.recordPFs`, `recordVFs`), and publishes PFs and VFs
/// that appear, change or go. Reads are answered as the host inventory gives them; a listing equal
/// to the last one recorded writes nothing, and a store that cannot be
/// written is logged, never turned into a failed read.
public final class RecordingInventory: InventorySource {
    let base: any InventorySource
    let store: StateStore
    let logger: Logger
    let events: EventBus
    private let last = Mutex<Snapshot>(Snapshot())

    private struct Snapshot {
        var pfs: [PCIAddress: StateStore.SeenPF.Observed]?
        var vfs: [PCIAddress: StateStore.SeenVF.Observed] = [:]
        /// Whether `vfs` holds a complete listing (until then every listing is written).
        var vfsComplete = false
    }

    /// `events`: the daemon's bus; by default one that journals to `logger`.
    public init(_ base: any InventorySource, store: StateStore, logger: Logger, events: EventBus? = nil) {
        self.base = base
        self.store = store
        self.logger = logger
        self.events = events ?? .journaling(to: logger)
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
                events.publish(
                    .pfAppeared(PFSeen(byAddress[address]), returned: changes.returned.contains(address)), EventSubject(pf: address))
            }
            for address in changes.gone {
                events.publish(.pfGone, EventSubject(pf: address))
            }
            for address in changes.changed {
                events.publish(.pfChanged(PFSeen(byAddress[address])), EventSubject(pf: address))
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
            events.publish(
                .vfsSeen(VFsSeen(appeared: changes.appeared + changes.returned, gone: changes.gone, changed: changes.changed)),
                EventSubject(pf: pf))
        } catch {
            logger.warning("cannot record the VFs seen", metadata: ["error": "\(error)"])
        }
    }
}
