import SRIOVCore

/// What `attach` plugs into the guest for a VF: `vfio-pci` with the VF as
/// its host device. The tests choose an emulated NIC instead (a machine
/// without SR-IOV has no VF to pass through).
public struct QMPDeviceChoice: Sendable {
    public var device: @Sendable (FailoverVF) -> (driver: String, properties: [String: JSONValue])

    public init(_ device: @escaping @Sendable (FailoverVF) -> (driver: String, properties: [String: JSONValue])) {
        self.device = device
    }

    public static let vfio = QMPDeviceChoice { vf in ("vfio-pci", ["host": .string(vf.pci.description)]) }
}

/// A QEMU guest: the VF is plugged as vfio-pci, the standby is virtio-net
/// (its link set with `set_link`). QMP alone has no lever inside the
/// guest: its bond or net_failover switches when the VF goes. With the
/// guest's agent (`agent`), the bond's active slave is the lever, and the
/// adapter can see whether the plugged VF is ready in the guest.
public struct QMPFailover: FailoverAdapter {
    public let guest: QMPGuest
    public let agent: QGABond?
    public let plugging: QMPDeviceChoice
    public var name: String { "qmp" }
    /// How often readiness is polled through the agent.
    public var pollInterval: Duration = .milliseconds(50)

    public init(guest: QMPGuest, agent: QGABond? = nil, plugging: QMPDeviceChoice = .vfio) {
        self.guest = guest
        self.agent = agent
        self.plugging = plugging
    }

    private func run<T>(_ action: String, _ body: () async throws -> T) async throws(FailoverError) -> T {
        do { return try await body() } catch let error as FailoverError {
            throw error
        } catch {
            throw FailoverError(adapter: "qmp", action: action, reason: "\(error)")
        }
    }

    public func attach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        let (driver, properties) = plugging.device(vf)
        return try await run("attach") { try await guest.plug(driver: driver, properties: properties) == .attached }
    }

    public func detach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        try await run("detach") {
            if case .detached = try await guest.detach() { return true }
            return false
        }
    }

    public func isAttached(_ vf: FailoverVF) async throws(FailoverError) -> Bool? {
        try await run("query") { try await guest.isPresent() }
    }

    public func standbyIsUp() async throws(FailoverError) -> Bool? { nil }

    public func setStandby(up: Bool, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        try await run("standby link") { try await guest.setStandbyLink(up: up) }
        return LeverOutcome(lever: "set_link \(guest.target.standby) \(up ? "on" : "off")")
    }

    public func steer(to target: SteerTarget, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        guard let agent else {
            return .none("QMP reaches no switch inside the guest; its bond or net_failover follows the VF's presence (give the failover an agent and bond for a lever)")
        }
        return try await run("steer") {
            let pci = try await guestAddress(of: target)
            let (slave, changed) = try await agent.makeActive(slaveAt: pci, role: target == .vf ? "VF" : "standby")
            return LeverOutcome(lever: "agent \(agent.bond) active_slave \(slave)", note: changed ? nil : "already active")
        }
    }

    public func waitUntilReady(_ vf: FailoverVF, deadline: Duration) async throws(FailoverError) -> String {
        guard let agent else { return "QMP cannot see the guest's link; the device is present" }
        let pollInterval = pollInterval
        return try await run("wait") {
            let pci = try await guestAddress(of: .vf)
            return try await agent.waitUntilSlaveIsUp(at: pci, deadline: deadline, pollInterval: pollInterval)
        }
    }

    /// With an agent, before anything is reserved or programmed: the bond
    /// exists in the guest and is active-backup, the standby (the device
    /// QEMU knows as `standby`) is its slave, and the bond's MAC is `mac`.
    /// A guest that is not running here (QEMU not started yet, or waiting
    /// for an incoming migration: the guest still runs on the source)
    /// cannot be looked at, and neither can one without an agent: both
    /// pass without a word.
    public func preflight(mac: MACAddress?) async throws(FailoverError) {
        guard let agent else { return }
        let standby = guest.target.standby
        try await run("preflight") {
            let found: (running: Bool, address: String?)
            do { found = try await guest.runningGuestAddress(of: standby) } catch let error as QMPGuestError {
                // No monitor to ask yet (QEMU not started): attach will say so.
                if error.description.hasPrefix("cannot connect to QEMU's monitor") { return }
                throw error
            }
            guard found.running else { return }
            try await agent.preflight(standbyAt: found.address, standbyID: standby, mac: mac)
        }
    }

    /// Where the guest sees the VF's device or the standby.
    private func guestAddress(of target: SteerTarget) async throws -> String {
        let found = try await guest.guestAddresses()
        switch target {
        case .vf:
            guard let pci = found.device else {
                throw QGABondError("the guest has no device \(guest.target.device) (the VF is not plugged)")
            }
            return pci
        case .standby:
            guard let pci = found.standby else {
                throw QGABondError("the guest has no PCI device \(guest.target.standby) (is it the id of its virtio-net standby?)")
            }
            return pci
        }
    }
}

/// A refusal found in the guest, in words that say what to fix.
public struct QGABondError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A QEMU guest's active-backup bond, read and steered through the guest's
/// agent (`guest-file-*` on the bond's sysfs files). The guest's interfaces
/// are found by PCI address (the one QEMU reports for a device id), never
/// by name: both slaves carry the bond's MAC.
public struct QGABond: Sendable {
    /// The agent's socket (QEMU's end of the guest's virtio-serial port).
    public var socket: String
    /// The bond's name in the guest.
    public var bond: String
    /// How long both slaves deliver around a switch.
    public var bothSlavesGrace: Duration = .milliseconds(200)

    public init(socket: String, bond: String) {
        self.socket = socket
        self.bond = bond
    }

    private var bonding: String { "/sys/class/net/\(bond)/bonding" }

    /// Makes the bond's slave at `pci` its active slave; its name, and
    /// whether it changed anything (false: it was active already).
    public func makeActive(slaveAt pci: String, role: String) async throws -> (String, Bool) {
        try await QGAConnection.with(socket: socket) { qga in
            let name = try await slave(at: pci, role: role, qga)
            if try await activeSlave(qga) == name { return (name, false) }
            // A frame the peer sent before the switch reaches both slaves'
            // queues: taken on neither when the new one drops it as backup
            // just before the switch and the old one just after. Both
            // deliver for a moment around the switch (all_slaves_active 1),
            // then it is put back.
            let allSlaves = "\(bonding)/all_slaves_active"
            let holdBoth = try await qga.readFile(allSlaves).trimmingCharacters(in: .whitespacesAndNewlines) == "0"
            if holdBoth { try await qga.writeFile(allSlaves, "1\n") }
            var switchError: (any Error)?
            do {
                try await qga.writeFile("\(bonding)/active_slave", name + "\n")
            } catch let error as QGAError {
                if case .refused = error {
                    switchError = QGABondError("\(bond) in the guest refused \(name) as its active slave (is the bond active-backup, and \(name)'s link up?): \(error)")
                } else {
                    switchError = error
                }
            }
            if holdBoth {
                if switchError == nil { try await Task.sleep(for: bothSlavesGrace) }
                do { try await qga.writeFile(allSlaves, "0\n") } catch {
                    throw QGABondError("\(switchError.map { "\($0); " } ?? "")putting \(allSlaves) back to 0 failed: \(error)")
                }
            }
            if let switchError { throw switchError }
            let now = try await activeSlave(qga)
            guard now == name else {
                throw QGABondError("\(bond) in the guest did not take \(name) as its active slave (active: \(now ?? "none"))")
            }
            return (name, true)
        }
    }

    /// Waits until the bond's slave at `pci` has its MII status up (the
    /// bond may switch to it); says what it saw.
    public func waitUntilSlaveIsUp(at pci: String, deadline: Duration, pollInterval: Duration) async throws -> String {
        let clock = ContinuousClock()
        let start = clock.now
        return try await QGAConnection.with(socket: socket) { qga in
            var last = "the VF at \(pci) is not a slave of \(bond) yet"
            while true {
                if let name = try await slave(at: pci, qga) {
                    let status = try await qga.readFile("/sys/class/net/\(name)/bonding_slave/mii_status")
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    if status == "up" {
                        return "\(name) is a slave of \(bond) with MII up after \(NetnsGuest.milliseconds(clock.now - start)) ms"
                    }
                    last = "\(name) is a slave of \(bond) with MII \(status)"
                }
                if clock.now - start > deadline {
                    throw QGABondError("after \(NetnsGuest.milliseconds(deadline)) ms: \(last)")
                }
                try await Task.sleep(for: pollInterval)
            }
        }
    }

    /// See `QMPFailover.preflight`: refusals name the field to fix and
    /// what the guest has.
    func preflight(standbyAt pci: String?, standbyID: String, mac: MACAddress?) async throws {
        func refuse(_ field: String, _ found: String) -> FailoverError {
            .refusal(adapter: "qmp", field: field, found: found)
        }
        let work = { (qga: QGAConnection) async throws -> Void in
            let interfaces = try await qga.interfaces()
            guard let bondInterface = interfaces.first(where: { $0.name == bond }) else {
                throw refuse("failover.bond", "the guest has no interface \(bond) (it has \(interfaces.map(\.name).joined(separator: ", ")))")
            }
            let mode: String
            do { mode = try await qga.readFile("\(bonding)/mode") } catch QGAError.refused {
                throw refuse("failover.bond", "\(bond) in the guest is not a bond (it has no \(bonding))")
            }
            let modeName = mode.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
            guard modeName == "active-backup" else {
                throw refuse("failover.bond", "the guest's bond \(bond) is in mode \(modeName), not active-backup")
            }
            guard let pci else {
                throw refuse("failover.standby", "the guest has no PCI device \(standbyID) (QEMU's query-pci lists no device with that id)")
            }
            guard try await slave(at: pci, qga) != nil else {
                let slaves = try await slaves(qga)
                throw refuse(
                    "failover.standby",
                    "the standby \(standbyID) (PCI \(pci) in the guest) is not a slave of \(bond) (its slaves: \(slaves.isEmpty ? "none" : slaves.joined(separator: ", ")))")
            }
            if let mac, bondInterface.mac != mac.description {
                throw refuse(
                    "mac",
                    "the guest's bond \(bond) has MAC \(bondInterface.mac ?? "(none)"), not \(mac): the VF, pinned to \(mac) by the PF, could not take the bond's MAC (give the bond \(mac), or assign with the bond's MAC)")
            }
        }
        do {
            try await QGAConnection.with(socket: socket, work)
        } catch let error as QGAError {
            switch error {
            case .cannotConnect, .notAnswering:
                throw refuse("failover.agent", "no guest agent answers at \(socket): \(error)")
            default: throw error
            }
        }
    }

    // MARK: Reading the guest

    /// The bond's slaves, as the guest names them.
    func slaves(_ qga: QGAConnection) async throws -> [String] {
        do {
            return try await qga.readFile("\(bonding)/slaves").split(whereSeparator: \.isWhitespace).map(String.init)
        } catch QGAError.refused {
            let names = try await qga.interfaces().map(\.name)
            if !names.contains(bond) {
                throw QGABondError("the guest has no interface \(bond) (it has \(names.joined(separator: ", ")))")
            }
            throw QGABondError("\(bond) in the guest is not a bond (it has no \(bonding))")
        }
    }

    /// The bond's active slave, nil when it has none.
    func activeSlave(_ qga: QGAConnection) async throws -> String? {
        let name = try await qga.readFile("\(bonding)/active_slave").trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// The bond's slave whose device is at `pci`; nil when none is.
    func slave(at pci: String, _ qga: QGAConnection) async throws -> String? {
        for name in try await slaves(qga) where try await pciAddress(of: name, qga) == pci { return name }
        return nil
    }

    /// `slave(at:)`, refused with what the guest has when there is none.
    func slave(at pci: String, role: String, _ qga: QGAConnection) async throws -> String {
        if let name = try await slave(at: pci, qga) { return name }
        let slaves = try await slaves(qga)
        throw QGABondError(
            "the guest's \(role) (PCI \(pci) in the guest) is not a slave of \(bond) (its slaves: \(slaves.isEmpty ? "none" : slaves.joined(separator: ", ")))")
    }

    /// The PCI address of a guest interface's device: its own (a PCI NIC)
    /// or its parent's (virtio-net sits on a virtio device under the PCI
    /// function); nil for one without a PCI device.
    func pciAddress(of name: String, _ qga: QGAConnection) async throws -> String? {
        for path in ["/sys/class/net/\(name)/device/uevent", "/sys/class/net/\(name)/device/../uevent"] {
            let text: String
            do { text = try await qga.readFile(path) } catch QGAError.refused { continue }
            for line in text.split(separator: "\n") where line.hasPrefix("PCI_SLOT_NAME=") {
                return String(line.dropFirst("PCI_SLOT_NAME=".count)).lowercased()
            }
        }
        return nil
    }
}
