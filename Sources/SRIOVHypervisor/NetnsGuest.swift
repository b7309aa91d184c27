import Glibc
import NIOPosix
import SRIOVCore
import SRIOVHost

/// A guest that is a network namespace holding an active-backup bond
/// (container guests, and the tests): attaching moves the VF's netdev into
/// the namespace and enslaves it to the bond; steering picks the bond's
/// active slave; detaching returns the netdev to the daemon's namespace.
/// All by rtnetlink (`NamespaceLinks`), on NIO's blocking pool.
public struct NetnsGuest: FailoverAdapter {
    public var namespace: String
    public var bond: String
    public var standby: String
    /// How often readiness is polled.
    public var pollInterval: Duration = .milliseconds(10)

    public var name: String { "netns" }

    public init(namespace: String, bond: String, standby: String) {
        self.namespace = namespace
        self.bond = bond
        self.standby = standby
    }

    private func inGuest<T: Sendable>(
        _ action: String, _ body: @escaping @Sendable (NamespaceLinks) throws -> T
    ) async throws(FailoverError) -> T {
        let namespace = namespace
        do {
            return try await NIOThreadPool.singleton.runIfActive {
                let links = try NamespaceLinks(namespace: namespace)
                return try body(links)
            }
        } catch let error as FailoverError {
            throw error
        } catch let error as NetlinkError {
            if case .system(let call, let errno) = error, call.hasPrefix("open "), errno == ENOENT {
                var missing = fail(action, "there is no network namespace \"\(namespace)\" (ip netns list)")
                missing.field = "failover.namespace"
                throw missing
            }
            throw fail(action, error.description)
        } catch {
            throw fail(action, "\(error)")
        }
    }

    private func fail(_ action: String, _ reason: String) -> FailoverError {
        FailoverError(adapter: "netns", action: action, reason: reason)
    }

    private func named(_ links: NamespaceLinks, _ name: String, _ action: String, what: String) throws -> LinkInfo {
        guard let link = try links.link(named: name) else {
            throw fail(action, "namespace \(namespace) has no \(what) \"\(name)\"")
        }
        return link
    }

    public func attach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        let (namespace, bond) = (namespace, self.bond)
        return try await inGuest("attach") { guest in
            let bondLink = try named(guest, bond, "attach", what: "bond")
            guard bondLink.kind == "bond" else { throw fail("attach", "\"\(bond)\" in \(namespace) is not a bond") }
            var moved = false
            if try guest.link(of: vf.pci) == nil {
                let host = try NamespaceLinks(namespace: nil)
                guard let link = try host.link(of: vf.pci) else {
                    throw fail("attach", "VF \(vf.pci) has no netdev on the host (is it bound to its host driver?)")
                }
                let target = try NamespaceLinks.openNamespace(namespace)
                defer { close(target) }
                try host.move(ifindex: link.ifindex, toNamespaceFD: target)
                moved = true
            }
            guard let link = try guest.link(of: vf.pci) else {
                throw fail("attach", "VF \(vf.pci)'s netdev did not arrive in \(namespace)")
            }
            guard link.master != bondLink.ifindex else { return moved }
            if link.master != nil { try guest.setMaster(ifindex: link.ifindex, master: 0) }
            // A bond enslaves a link that is down and brings it up itself.
            if link.isAdminUp { try guest.setUp(ifindex: link.ifindex, false) }
            do {
                try guest.setMaster(ifindex: link.ifindex, master: bondLink.ifindex)
            } catch let error as NetlinkError {
                // The bond gives its slaves its own MAC; a VF whose MAC the PF
                // pins refuses another one (igbvf, iavf: EADDRNOTAVAIL).
                if case .request(_, _, let errno, _) = error, errno == EADDRNOTAVAIL {
                    throw Self.pinnedMAC(
                        bond: bond, bondMAC: bondLink.mac, vfMAC: vf.mac ?? link.mac, vf: vf.pci, kernel: error.description)
                }
                throw error
            }
            return true
        }
    }

    /// Before anything is reserved: the bond exists in the namespace and is
    /// active-backup, the standby is its slave, and the bond's MAC is `mac`
    /// (the bond gives its MAC to the VF it enslaves, and the PF pins `mac`
    /// on the VF: another MAC is refused at enslave).
    public func preflight(mac: MACAddress?) async throws(FailoverError) {
        let (namespace, bond, standby) = (namespace, self.bond, self.standby)
        try await inGuest("preflight") { guest in
            func refuse(_ field: String, _ found: String) -> FailoverError {
                .refusal(adapter: "netns", field: field, found: found)
            }
            guard let bondLink = try guest.link(named: bond) else {
                throw refuse("failover.bond", "namespace \(namespace) has no link \"\(bond)\"")
            }
            guard bondLink.kind == "bond" else {
                throw refuse("failover.bond", "\"\(bond)\" in \(namespace) is \(bondLink.kind.map { "a \($0)" } ?? "a device"), not a bond")
            }
            if let mode = bondLink.bondMode, mode != Self.activeBackup {
                throw refuse("failover.bond", "bond \(bond) in \(namespace) is in mode \(Self.bondModeName(mode)), not active-backup")
            }
            guard let standbyLink = try guest.link(named: standby) else {
                throw refuse("failover.standby", "namespace \(namespace) has no link \"\(standby)\"")
            }
            guard standbyLink.master == bondLink.ifindex else {
                let master = try standbyLink.master.flatMap { index in try guest.links().first { $0.ifindex == index }?.name }
                throw refuse(
                    "failover.standby",
                    "\(standby) in \(namespace) is not a slave of \(bond) (\(master.map { "its master is \($0)" } ?? "it has no master"))")
            }
            if let mac, bondLink.mac != mac {
                throw refuse(
                    "mac",
                    "the bond \(bond)'s MAC \(bondLink.mac?.description ?? "(none)") differs from \(mac), the MAC the PF will pin on the VF; the bond could not enslave it (ip -n \(namespace) link set \(bond) address \(mac))")
            }
        }
    }

    /// EADDRNOTAVAIL when a bond enslaves a VF, said as what to fix: the
    /// bond gives its slaves its own MAC, and a VF whose MAC the PF pins
    /// refuses any other (igbvf, iavf).
    static func pinnedMAC(bond: String, bondMAC: MACAddress?, vfMAC: MACAddress?, vf: PCIAddress, kernel: String) -> FailoverError {
        FailoverError(
            adapter: "netns", action: "attach",
            reason: "the bond \(bond)'s MAC \(bondMAC?.description ?? "?") differs from the MAC \(vfMAC?.description ?? "?") "
                + "the PF pins on the VF \(vf), which refuses any other (\(kernel)); give the bond the NIC's MAC",
            field: "mac")
    }

    /// IFLA_BOND_MODE of active-backup (BOND_MODE_ACTIVEBACKUP).
    static let activeBackup: UInt8 = 1

    static func bondModeName(_ mode: UInt8) -> String {
        let names = ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"]
        return Int(mode) < names.count ? names[Int(mode)] : "\(mode)"
    }

    public func detach(_ vf: FailoverVF) async throws(FailoverError) -> Bool {
        let (bond, standby) = (self.bond, self.standby)
        return try await inGuest("detach") { guest in
            guard let link = try guest.link(of: vf.pci) else { return false }
            if let bondLink = try guest.link(named: bond), bondLink.bondActiveSlave == link.ifindex,
                let standbyLink = try guest.link(named: standby), standbyLink.master == bondLink.ifindex
            {
                // Never pull the slave carrying traffic while another can take it.
                try guest.setActiveSlave(bond: bondLink.ifindex, slave: standbyLink.ifindex)
            }
            if link.master != nil { try guest.setMaster(ifindex: link.ifindex, master: 0) }
            let home = try NamespaceLinks.openNamespace(nil)
            defer { close(home) }
            try guest.move(ifindex: link.ifindex, toNamespaceFD: home)
            return true
        }
    }

    public func isAttached(_ vf: FailoverVF) async throws(FailoverError) -> Bool? {
        let bond = self.bond
        return try await inGuest("query") { guest in
            guard let link = try guest.link(of: vf.pci) else { return false }
            let bondIndex = try guest.link(named: bond)?.ifindex
            return link.master != nil && link.master == bondIndex
        }
    }

    public func standbyIsUp() async throws(FailoverError) -> Bool? {
        let standby = self.standby
        return try await inGuest("query") { guest in try named(guest, standby, "query", what: "standby").isAdminUp }
    }

    public func setStandby(up: Bool, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        let standby = self.standby
        return try await inGuest("standby link") { guest in
            let link = try named(guest, standby, "standby link", what: "standby")
            if link.isAdminUp == up { return LeverOutcome(lever: "link \(standby) \(up ? "up" : "down")", note: "already so") }
            try guest.setUp(ifindex: link.ifindex, up)
            return LeverOutcome(lever: "link \(standby) \(up ? "up" : "down")")
        }
    }

    public func steer(to target: SteerTarget, vf: FailoverVF) async throws(FailoverError) -> LeverOutcome {
        let (bond, standby, namespace) = (self.bond, self.standby, self.namespace)
        return try await inGuest("steer") { guest in
            let bondLink = try named(guest, bond, "steer", what: "bond")
            let slave: LinkInfo
            switch target {
            case .standby: slave = try named(guest, standby, "steer", what: "standby")
            case .vf:
                guard let link = try guest.link(of: vf.pci) else {
                    throw fail("steer", "VF \(vf.pci) is not in \(namespace)")
                }
                slave = link
            }
            guard slave.master == bondLink.ifindex else {
                throw fail("steer", "\(slave.name) is not a slave of \(bond)")
            }
            let lever = "bond \(bond) active_slave \(slave.name)"
            if bondLink.bondActiveSlave == slave.ifindex { return LeverOutcome(lever: lever, note: "already active") }
            try Self.setActiveSlave(guest, bond: bondLink.ifindex, slave: slave.ifindex)
            let now = try named(guest, bond, "steer", what: "bond")
            guard now.bondActiveSlave == slave.ifindex else {
                throw fail("steer", "\(bond) did not take \(slave.name) as its active slave (is it in active-backup mode, and the slave up?)")
            }
            return LeverOutcome(lever: lever)
        }
    }

    public func waitUntilReady(_ vf: FailoverVF, deadline: Duration) async throws(FailoverError) -> String {
        let clock = ContinuousClock()
        let start = clock.now
        while true {
            let state = try await inGuest("wait") { guest -> (carrier: Bool, name: String)? in
                guard let link = try guest.link(of: vf.pci) else { return nil }
                return (link.hasCarrier == true && link.operState == "up", link.name)
            }
            guard let state else { throw fail("wait", "VF \(vf.pci) is not in \(namespace)") }
            if state.carrier {
                return "\(state.name) has carrier after \(Self.milliseconds(clock.now - start)) ms"
            }
            if clock.now - start > deadline {
                throw fail("wait", "\(state.name) has no carrier after \(Self.milliseconds(deadline)) ms")
            }
            try? await Task.sleep(for: pollInterval)
        }
    }

    /// How long a bond may take to see a new slave's link (its MII monitor
    /// runs every miimon ms) before it takes that slave as active.
    static let slaveLinkDeadline: Duration = .seconds(3)

    /// Sets the bond's active slave. The bond refuses (EINVAL, "either the
    /// slave is down or the link is down") a slave whose link its MII
    /// monitor has not seen up yet, though the slave's netdev already has
    /// carrier: that refusal is retried every 20 ms, within
    /// `slaveLinkDeadline`; any other error, or the same one after it, is
    /// thrown.
    static func setActiveSlave(_ guest: NamespaceLinks, bond: Int32, slave: Int32) throws(NetlinkError) {
        let clock = ContinuousClock()
        let start = clock.now
        while true {
            do {
                return try guest.setActiveSlave(bond: bond, slave: slave)
            } catch {
                guard case .request(_, _, let errno, _) = error, errno == EINVAL, clock.now - start < slaveLinkDeadline else {
                    throw error
                }
                usleep(20_000)
            }
        }
    }

    public static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }
}
