import SRIOVCore

/// How sriovd reaches a QEMU guest and which of its devices are the VF and
/// the standby NIC: the `failover` object of an assignment with
/// `"adapter":"qmp"`.
public struct QMPTarget: Sendable, Hashable, Codable {
    /// QEMU's `-qmp unix:PATH,server=on` socket.
    public var socket: String
    /// The id the plugged VF gets (`device_add ... id=`), and that
    /// `device_del` names.
    public var device: String
    /// The bus to plug it into: a free `pcie-root-port` (q35) or `pci.0`.
    public var bus: String
    /// The id of the virtio-net device paired with the VF.
    public var standby: String

    public init(socket: String, device: String, bus: String, standby: String) {
        self.socket = socket
        self.device = device
        self.bus = bus
        self.standby = standby
    }
}

/// Why a QMP operation on a guest failed, in words that say what to do.
public struct QMPGuestError: Error, Sendable, CustomStringConvertible {
    public enum Step: String, Sendable {
        case attach, detach, setLink = "set-link", query
    }

    public var step: Step
    public var description: String
    /// QEMU's own words, when it refused a command.
    public var qemu: String?
}

/// What attaching found and did.
public enum AttachOutcome: Sendable, Equatable {
    /// The guest had the device already (QEMU started with it, or an earlier
    /// attach): left as it is.
    case alreadyPresent
    case attached
}

/// What detaching found and did.
public enum DetachOutcome: Sendable, Equatable {
    case alreadyAbsent
    /// Gone: `DEVICE_DELETED` arrived after this long.
    case detached(after: Duration)
}

/// A QEMU guest driven through QMP: plug a VF (`device_add vfio-pci`),
/// unplug it (`device_del`, then waiting for `DEVICE_DELETED`), and set the
/// standby NIC's link (`set_link`). Each call opens its own monitor session.
public struct QMPGuest: Sendable {
    public var target: QMPTarget
    /// How long an unplug may take before it is reported as failed. Native
    /// PCIe hotplug alone waits 5 s for the attention button.
    public var unplugDeadline: Duration
    /// Between two `device_del` tries while the guest says it is busy.
    public var busyRetry: Duration = .milliseconds(500)

    public init(target: QMPTarget, unplugDeadline: Duration = .seconds(20)) {
        self.target = target
        self.unplugDeadline = unplugDeadline
    }

    /// Plugs VF `vf` into the guest as `vfio-pci` with id `target.device` on
    /// `target.bus`, unless the guest already has a device with that id.
    public func attach(vf: PCIAddress) async throws -> AttachOutcome {
        try await plug(driver: "vfio-pci", properties: ["host": .string(vf.description)])
    }

    /// `attach` for any device model (the tests plug emulated NICs: no VF
    /// can be passed through on a machine without SR-IOV hardware).
    public func plug(driver: String, properties: [String: JSONValue]) async throws -> AttachOutcome {
        try await session(.attach) { qmp in
            if try await isPresent(qmp) { return .alreadyPresent }
            var arguments = properties
            arguments["driver"] = .string(driver)
            arguments["id"] = .string(target.device)
            arguments["bus"] = .string(target.bus)
            do {
                try await qmp.execute("device_add", arguments: arguments)
            } catch let error as QMPCommandError {
                throw QMPGuestError(step: .attach, description: explainDeviceAdd(error.detail.description, driver: driver, properties: properties), qemu: error.detail.description)
            }
            return .attached
        }
    }

    /// Unplugs `target.device` and waits for QEMU's `DEVICE_DELETED`: the
    /// guest has let go of it. A device already absent is left so.
    public func detach() async throws -> DetachOutcome {
        do {
            return try await detachThroughMonitor()
        } catch let error as QMPGuestError {
            // No monitor at all (no socket, nobody listening): QEMU is not
            // running, so no guest holds the VF. A monitor that answers
            // wrongly is an error, not an absence.
            if error.description.contains("no such socket") || error.description.contains("connection refused") {
                return .alreadyAbsent
            }
            throw error
        }
    }

    private func detachThroughMonitor() async throws -> DetachOutcome {
        try await session(.detach) { qmp in
            if !(try await isPresent(qmp)) { return .alreadyAbsent }
            let start = ContinuousClock.now
            let deadline = start + unplugDeadline
            _ = qmp.takeEvents()
            askToUnplug: while true {
                do {
                    try await qmp.execute("device_del", arguments: ["id": .string(target.device)])
                    break askToUnplug
                } catch let error as QMPCommandError {
                    let text = error.detail.description
                    if text.contains("in the process of unplug") {
                        // Asked before (by us or someone else): asking again
                        // on native PCIe would cancel it. Wait for it instead.
                        break askToUnplug
                    }
                    if text.contains("not found") || error.detail.errorClass == "DeviceNotFound" {
                        return .alreadyAbsent
                    }
                    if text.contains("busy"), ContinuousClock.now + busyRetry < deadline {
                        try await Task.sleep(for: busyRetry)
                        continue askToUnplug
                    }
                    throw QMPGuestError(step: .detach, description: explainDeviceDel(text), qemu: text)
                }
            }
            let device = target.device
            let event = try await qmp.waitForEvent(timeout: max(deadline - .now, .zero)) { event in
                event.name == "DEVICE_DELETED" && event.data["device"]?.stringValue == device
            }
            if event != nil { return .detached(after: .now - start) }
            // No event: the guest has not answered. Say why when QEMU knows.
            let status = (try? await qmp.execute("query-status"))?["status"]?.stringValue
            var why = "the guest did not complete the unplug of \(device) within \(unplugDeadline)"
            switch status {
            case "paused", "suspended", "prelaunch", "inmigrate", "postmigrate", "finish-migrate":
                why += ": the VM is \(status!), and a guest that is not running cannot answer an unplug request; resume it (cont), or stop the VM, then retry"
            case let status?:
                why += " (VM \(status)): the guest OS may lack PCI hotplug support or be hung; the unplug stays pending in QEMU"
            case nil:
                why += "; the unplug stays pending in QEMU"
            }
            throw QMPGuestError(step: .detach, description: why, qemu: nil)
        }
    }

    /// Sets the link of the standby (virtio-net) device up or down.
    public func setStandbyLink(up: Bool) async throws {
        try await session(.setLink) { qmp in
            do {
                try await qmp.execute("set_link", arguments: ["name": .string(target.standby), "up": .bool(up)])
            } catch let error as QMPCommandError {
                throw QMPGuestError(
                    step: .setLink,
                    description: "cannot set the link of standby \(target.standby): \(error.detail.description) (is it the id of the guest's virtio-net device?)",
                    qemu: error.detail.description)
            }
        }
    }

    /// Whether the guest has a PCI device with id `target.device`.
    public func isPresent() async throws -> Bool {
        try await session(.query) { try await isPresent($0) }
    }

    private func session<T: Sendable>(
        _ step: QMPGuestError.Step, _ body: (QMPConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await QMPConnection.with(socket: target.socket, body)
        } catch let error as QMPGuestError {
            throw error
        } catch {
            throw QMPGuestError(step: step, description: "\(error)", qemu: nil)
        }
    }

    private func isPresent(_ qmp: QMPConnection) async throws -> Bool {
        let buses = try await qmp.execute("query-pci")
        return Self.deviceIDs(inQueryPCI: buses).contains(target.device)
    }

    /// Every `qdev_id` in a `query-pci` answer, under bridges too.
    static func deviceIDs(inQueryPCI value: JSONValue) -> Set<String> {
        Set(addresses(inQueryPCI: value).keys)
    }

    /// The PCI address the guest sees for each device with a `qdev_id`
    /// (`0000:BB:SS.F`: bus numbers are the ones the guest's firmware or
    /// kernel gave the bridges, as QEMU reads them back), under bridges too.
    static func addresses(inQueryPCI value: JSONValue) -> [String: String] {
        var found: [String: String] = [:]
        func visit(_ devices: [JSONValue]) {
            for device in devices {
                if let id = device["qdev_id"]?.stringValue, !id.isEmpty,
                    let bus = device["bus"]?.intValue, let slot = device["slot"]?.intValue, let function = device["function"]?.intValue
                {
                    found[id] = String(format: "0000:%02x:%02x.%x", bus, slot, function)
                }
                visit(device["pci_bridge"]?["devices"]?.arrayValue ?? [])
            }
        }
        for bus in value.arrayValue ?? [] { visit(bus["devices"]?.arrayValue ?? []) }
        return found
    }

    /// Whether the guest runs (QMP `query-status`: `running`), and where it
    /// sees device `id` (nil: it has none).
    public func runningGuestAddress(of id: String) async throws -> (running: Bool, address: String?) {
        try await session(.query) { qmp in
            let status = try await qmp.execute("query-status")["status"]?.stringValue
            guard status == "running" else { return (false, nil) }
            return (true, Self.addresses(inQueryPCI: try await qmp.execute("query-pci"))[id])
        }
    }

    /// The PCI addresses the guest sees for the VF's device and the standby
    /// (nil for one the guest does not have).
    public func guestAddresses() async throws -> (device: String?, standby: String?) {
        try await session(.query) { qmp in
            let found = Self.addresses(inQueryPCI: try await qmp.execute("query-pci"))
            return (found[target.device], found[target.standby])
        }
    }

    /// QEMU's `device_add` error in words that say what to do (QEMU's own
    /// hints are not sent over QMP).
    func explainDeviceAdd(_ text: String, driver: String, properties: [String: JSONValue]) -> String {
        let host = properties["host"]?.stringValue ?? "the device"
        let lower = text.lowercased()
        if lower.contains("not viable") {
            return "QEMU cannot take VF \(host): its IOMMU group is not viable. Every device in the group must be bound to vfio-pci or have no driver; bind the others to vfio-pci (sriovctl vf driver PCI vfio-pci) or unbind them, then retry. QEMU said: \(text)"
        }
        if lower.contains("failed to set iommu") || lower.contains("operation not permitted") {
            return "QEMU cannot map VF \(host) into the guest: the host's IOMMU refuses (no interrupt remapping, or QEMU lacks access to /dev/vfio). Enable interrupt remapping, or accept the risk with vfio_iommu_type1 allow_unsafe_interrupts=Y, and check QEMU may open /dev/vfio/N. QEMU said: \(text)"
        }
        if lower.contains("no such host device") || (lower.contains("no such file") && driver == "vfio-pci") {
            return "QEMU cannot open VF \(host): is it bound to vfio-pci (sriovd binds it when the assignment asks for driver vfio-pci)? QEMU said: \(text)"
        }
        if lower.contains("duplicate") {
            return "the guest already has a device with id \(target.device) that is not a PCI device: choose another id. QEMU said: \(text)"
        }
        if lower.contains("bus") && lower.contains("not found") {
            return "the guest has no bus \(target.bus): give the id of a free pcie-root-port (q35) or pci.0. QEMU said: \(text)"
        }
        if lower.contains("occupied") || lower.contains("slot") {
            return "bus \(target.bus) has no free slot: give the id of an empty pcie-root-port. QEMU said: \(text)"
        }
        if lower.contains("migrat") {
            return "QEMU is migrating the VM and refuses hot-plug now: plug the VF after the migration. QEMU said: \(text)"
        }
        return "QEMU refused device_add of \(driver) \(host) as \(target.device) on \(target.bus): \(text)"
    }

    func explainDeviceDel(_ text: String) -> String {
        if text.lowercased().contains("migrat") {
            return "QEMU is migrating the VM and refuses to unplug \(target.device) now: unplug it before starting the migration. QEMU said: \(text)"
        }
        return "QEMU refused to unplug \(target.device): \(text)"
    }
}
