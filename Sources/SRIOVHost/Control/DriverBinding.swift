import SRIOVCore

/// Which driver a PCI function should end up with.
public enum DriverChoice: Sendable, Hashable, CustomStringConvertible {
    /// vfio-pci, to hand the function to a guest.
    case vfio
    /// Whatever host driver the kernel's id match picks (igbvf for an 82576
    /// VF): driver_override is cleared. For a VF this needs its PF's
    /// `sriov_drivers_autoprobe` on; otherwise name the driver.
    case host
    /// This driver by name (`driver_override` = name), e.g. "igbvf".
    case named(String)
    /// No driver, and none later: `driver_override` is set to "none". The
    /// kernel binds a device with an override only to the driver of that
    /// name and there is no PCI driver called "none", so neither autoprobe
    /// nor a later `drivers_probe` binds it.
    case unbound

    /// What is written to `driver_override`. "\n" clears it: the kernel
    /// drops the trailing newline and treats the empty string as "unset".
    var overrideValue: String {
        switch self {
        case .vfio: "vfio-pci"
        case .host: "\n"
        case .named(let name): name
        case .unbound: "none"
        }
    }

    /// The override as `driver_override` reads back, nil for "unset".
    var expectedOverride: String? {
        switch self {
        case .host: nil
        default: overrideValue
        }
    }

    /// The driver that must be loaded before binding can work.
    var requiredDriver: String? {
        switch self {
        case .vfio: "vfio-pci"
        case .named(let name): name
        case .host, .unbound: nil
        }
    }

    /// A driver name as sysfs spells them: one path component, printable,
    /// no white space (driver_override keeps only up to the first newline).
    static func isValidDriverName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.count < 256
            && name.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0.value < 0x7F && $0 != "/" }
    }

    /// Whether a device bound to `driver` (nil: unbound) is where this choice wants it.
    func isSatisfied(by driver: String?) -> Bool {
        switch self {
        case .vfio: driver == "vfio-pci"
        case .named(let name): driver == name
        case .host: driver != nil && driver != "vfio-pci"
        case .unbound: driver == nil
        }
    }

    /// The state this choice asks for, as in "was not <goal>".
    var goal: String {
        switch self {
        case .vfio: "bound to vfio-pci"
        case .host: "bound to a host driver"
        case .named(let name): "bound to \(name)"
        case .unbound: "left unbound"
        }
    }

    public var description: String {
        switch self {
        case .vfio: "vfio-pci"
        case .host: "host driver"
        case .named(let name): name
        case .unbound: "no driver"
        }
    }
}

extension SRIOVDeviceControl {
    /// Moves a PCI function (usually a VF) to the driver `choice` asks for
    /// and waits, up to `bindTimeout`, until its `driver` link shows it.
    /// Returns the driver it ends up with (nil: unbound).
    ///
    /// Order: `driver_override` first, then unbind from the current driver
    /// when it is not the wanted one, then `drivers_probe`. The override is
    /// written before anything else so that no probe in between (udev, a
    /// rescan) can bind the old driver back; with `sriov_drivers_autoprobe`
    /// = 0, `drivers_probe` binds a VF only when it has an override. Nothing
    /// is written when the device already has the wanted driver and override.
    ///
    /// Refused before anything is written: a named driver or vfio-pci that is
    /// not loaded; for vfio, an IOMMU group with a member on a host driver,
    /// or no IOMMU group; for `.host`, a VF whose PF has autoprobe off.
    @discardableResult
    public func bind(_ device: PCIAddress, to wanted: DriverChoice) async throws(ControlError) -> String? {
        let choice: DriverChoice = wanted == .named("vfio-pci") ? .vfio : wanted
        let started = try await threads.run { [self] () throws(ControlError) in try startBinding(device, choice) }
        if case .finished(let driver) = started { return driver }

        let deadline = ContinuousClock.now + bindTimeout
        let (sysfs, paths) = (sysfs, paths)
        let (driver, done) = try await poll(
            until: deadline, device: device, step: "bind to \(choice)",
            observe: { sysfs.linkBasename(paths.device(device, "driver")) }, isDone: { choice.isSatisfied(by: $0) })
        if !done { throw .bindTimedOut(device: device, wanted: choice, current: driver, timeout: bindTimeout) }
        return driver
    }

    /// Where `startBinding` left the device.
    private enum BindingStart: Sendable {
        /// Already as asked: nothing to wait for.
        case finished(driver: String?)
        /// The wanted driver was asked to probe it.
        case probing
    }

    /// The checks and writes of `bind`, up to the probe (blocking: call it
    /// on the kernel threads).
    private func startBinding(_ device: PCIAddress, _ choice: DriverChoice) throws(ControlError) -> BindingStart {
        guard sysfs.fileExists(paths.device(device)) else { throw .noSuchDevice(device) }
        if case .named(let name) = choice, !DriverChoice.isValidDriverName(name) {
            throw .invalidDriverName(name)
        }
        if let required = choice.requiredDriver, !sysfs.fileExists(paths.driver(required)) {
            throw .driverNotLoaded(required)
        }
        if choice == .vfio, let refusal = iommuGroupViability(of: device).refusal {
            throw refusal
        }

        let current = sysfs.linkBasename(paths.device(device, "driver"))
        let overridePath = paths.device(device, "driver_override")
        let currentOverride = Self.override(fromSysfs: sysfs.readTrimmed(overridePath))
        let satisfied = choice.isSatisfied(by: current)
        if satisfied && currentOverride == choice.expectedOverride { return .finished(driver: current) }

        if choice == .host, !satisfied, let pf = sysfs.linkBasename(paths.device(device, "physfn")),
            let pfAddress = try? PCIAddress.parse(pf, field: "physfn"),
            readInt(paths.device(pfAddress, "sriov_drivers_autoprobe")) == 0
        {
            throw .autoprobeDisabled(device: device, pf: pfAddress)
        }

        if currentOverride != choice.expectedOverride {
            try write(overridePath, choice.overrideValue, device, step: "set driver_override to \(choice)")
        }
        if satisfied { return .finished(driver: current) }
        if let current {
            try write(paths.device(device, "driver/unbind"), device.description, device, step: "unbind from \(current)")
        }
        if choice != .unbound {
            try write(paths.driversProbe, device.description, device, step: "probe drivers")
        }
        return .probing
    }

    /// `driver_override` as read: the kernel prints "(null)" when none is set.
    static func override(fromSysfs text: String?) -> String? {
        guard let text, !text.isEmpty, text != "(null)" else { return nil }
        return text
    }

    private func write(_ path: String, _ value: String, _ device: PCIAddress, step: String) throws(ControlError) {
        do {
            try sysfs.writeFile(path, value)
        } catch {
            throw .sysfs(error, device: device, step: step)
        }
    }
}
