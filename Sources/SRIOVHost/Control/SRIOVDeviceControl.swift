import SRIOVCore

/// Changes PFs and VFs through sysfs: the VF count, VF driver autoprobe,
/// driver binding, function-level reset. Every device is named by its PCI
/// address and every path is under `sysfs.root`, so a test can point this
/// at a folder and a simulated kernel.
///
/// Methods that wait for the kernel (`setNumVFs`, `bind`) poll sysfs every
/// `pollInterval` up to a deadline, and stop when their task is cancelled.
/// Their reads and writes run on `threads`: writing `sriov_numvfs`,
/// `drivers_probe` or `unbind` returns only when the kernel has created or
/// probed the devices (seconds), and must not hold one of the few threads
/// of Swift's cooperative pool, which serve every request. Only the waits
/// between two reads are spent on the cooperative pool (sleeping).
/// Nothing here serializes callers: give each PF and VF one owner.
public struct SRIOVDeviceControl: Sendable {
    public let sysfs: any SysfsFileAccess
    /// How often sysfs is read while waiting for the kernel.
    public var pollInterval: Duration
    /// How long `bind` waits for the `driver` link to change.
    public var bindTimeout: Duration
    /// Where the sysfs reads and writes of the async methods run.
    public let threads: KernelThreads

    let paths: SysfsPaths

    public init(
        sysfs: any SysfsFileAccess = SysfsTree(), pollInterval: Duration = .milliseconds(50),
        bindTimeout: Duration = .seconds(10), threads: KernelThreads = .shared
    ) {
        self.sysfs = sysfs
        self.threads = threads
        self.pollInterval = pollInterval
        self.bindTimeout = bindTimeout
        self.paths = SysfsPaths(root: sysfs.root)
    }

    // MARK: VF count

    /// Gives the PF `count` VFs and waits until exactly `count` `virtfnN`
    /// links exist.
    ///
    /// A count above `sriov_totalvfs` is refused before anything is written.
    /// The same count as now writes nothing (and returns as soon as the links
    /// are all there). Between two nonzero counts, 0 is
    /// written first: the kernel refuses a new count while VFs exist (EBUSY).
    /// VFs appear asynchronously on some drivers (125 VFs have taken about
    /// a minute), so `timeout` bounds the whole change, including the wait.
    public func setNumVFs(pf: PCIAddress, to count: Int, timeout: Duration) async throws(ControlError) {
        let current = try await threads.run { [self] () throws(ControlError) -> Int in
            guard sysfs.fileExists(paths.device(pf)) else { throw .noSuchDevice(pf) }
            guard let total = readInt(paths.device(pf, "sriov_totalvfs")) else { throw .notAPhysicalFunction(pf) }
            guard count >= 0, count <= total else {
                throw .vfCountOutOfRange(pf: pf, requested: count, total: total)
            }
            return readInt(paths.device(pf, "sriov_numvfs")) ?? 0
        }
        let deadline = ContinuousClock.now + timeout
        if current == count {
            // Nothing to write; VFs of an earlier change may still be appearing.
            try await waitForVFCount(pf, count, deadline: deadline, timeout: timeout)
            return
        }
        if current != 0 && count != 0 {
            try await writeNumVFs(pf, 0)
            try await waitForVFCount(pf, 0, deadline: deadline, timeout: timeout)
        }
        try await writeNumVFs(pf, count)
        try await waitForVFCount(pf, count, deadline: deadline, timeout: timeout)
    }

    /// How many `virtfnN` links the PF has now.
    public func vfLinkCount(pf: PCIAddress) -> Int {
        let names = (try? sysfs.listDirectory(paths.device(pf))) ?? []
        return names.filter { $0.hasPrefix("virtfn") && Int($0.dropFirst("virtfn".count)) != nil }.count
    }

    private func writeNumVFs(_ pf: PCIAddress, _ value: Int) async throws(ControlError) {
        if case .failure(let error) = await writeBlocking(paths.device(pf, "sriov_numvfs"), String(value)) {
            throw .vfCountRefused(pf: pf, value: value, errno: error.errno)
        }
    }

    private func waitForVFCount(
        _ pf: PCIAddress, _ count: Int, deadline: ContinuousClock.Instant, timeout: Duration
    ) async throws(ControlError) {
        let (present, reached) = try await poll(
            until: deadline, device: pf, step: "wait for \(count) VFs", observe: { vfLinkCount(pf: pf) },
            isDone: { $0 == count })
        if !reached { throw .vfCountTimedOut(pf: pf, expected: count, present: present, timeout: timeout) }
    }

    // MARK: Autoprobe

    /// Sets `sriov_drivers_autoprobe`: whether new VFs are bound to a host
    /// driver by the kernel as they appear. With it off, a VF gets a driver
    /// only through `bind` (driver_override, then drivers_probe).
    public func setDriversAutoprobe(pf: PCIAddress, enabled: Bool) throws(ControlError) {
        guard sysfs.fileExists(paths.device(pf)) else { throw .noSuchDevice(pf) }
        let path = paths.device(pf, "sriov_drivers_autoprobe")
        guard sysfs.fileExists(path) else { throw .notAPhysicalFunction(pf) }
        do {
            try sysfs.writeFile(path, enabled ? "1" : "0")
        } catch {
            throw .sysfs(error, device: pf, step: "set sriov_drivers_autoprobe to \(enabled ? 1 : 0)")
        }
    }

    // MARK: Reset

    /// What `resetFunction` did.
    public enum ResetOutcome: Sendable, Hashable {
        case reset
        /// The device has no `reset` file: the kernel knows no reset method
        /// for it (no FLR, no PM or bus reset). Not fatal; its state is as
        /// the last user left it.
        case noResetMethod
    }

    /// Resets the function (writes 1 to `reset`) when the kernel has a reset
    /// method for it, such as FLR. A VF should be reset before it is given to
    /// its next user. Throws only when the kernel refuses the reset.
    public func resetFunction(_ device: PCIAddress) throws(ControlError) -> ResetOutcome {
        guard sysfs.fileExists(paths.device(device)) else { throw .noSuchDevice(device) }
        let path = paths.device(device, "reset")
        guard sysfs.fileExists(path) else { return .noResetMethod }
        do {
            try sysfs.writeFile(path, "1")
        } catch {
            throw .sysfs(error, device: device, step: "reset")
        }
        return .reset
    }

    // MARK: Helpers

    /// Writes `value` to `path` on the kernel threads.
    func writeBlocking(_ path: String, _ value: String) async -> Result<Void, SysfsError> {
        await threads.run { [sysfs] in Result { () throws(SysfsError) in try sysfs.writeFile(path, value) } }
    }

    func readInt(_ path: String) -> Int? {
        sysfs.readTrimmed(path).flatMap { Int($0) }
    }

    /// Reads `observe()` (on the kernel threads) until `isDone` accepts it
    /// or `deadline` passes, and returns the last value read and whether it
    /// was accepted. Reads once more at the deadline, so a short timeout
    /// still sees a fast kernel.
    func poll<Value: Sendable>(
        until deadline: ContinuousClock.Instant, device: PCIAddress, step: String,
        observe: @escaping @Sendable () -> Value, isDone: (Value) -> Bool
    ) async throws(ControlError) -> (Value, Bool) {
        while true {
            let value = await threads.run(observe)
            if isDone(value) { return (value, true) }
            let now = ContinuousClock.now
            if now >= deadline { return (value, false) }
            do {
                try await Task.sleep(for: min(pollInterval, deadline - now))
            } catch {
                throw .cancelled(device: device, step: step)
            }
        }
    }
}
