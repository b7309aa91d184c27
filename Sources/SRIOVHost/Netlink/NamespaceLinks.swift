import CSRIOVShim
import Glibc
import SRIOVCore

/// The links of one network namespace, read and changed over rtnetlink: a
/// socket opened inside the namespace (the calling thread enters it only
/// for the `socket()` call), so every request reaches that namespace's links
/// without running `ip`. What a guest namespace's failover needs: find a
/// VF's netdev by its PCI address, move it between namespaces, enslave it
/// to a bond, pick the bond's active slave, set a link up.
///
/// Blocking; one owner at a time (like `LinkReader`).
public final class NamespaceLinks {
    /// nil: the process's own namespace.
    public let namespace: String?
    private let reader: LinkReader

    /// Where `ip netns add` keeps named namespaces.
    public static let namespaceFolders = ["/run/netns", "/var/run/netns"]

    /// Links of the named namespace (nil: the process's own).
    /// - Throws: `.system(call: "open /run/netns/NAME", errno:)` when there is no such namespace.
    public init(namespace: String?) throws(NetlinkError) {
        self.namespace = namespace
        guard let namespace else {
            reader = try LinkReader()
            return
        }
        let target = try Self.openNamespace(namespace)
        defer { close(target) }
        reader = LinkReader(transport: try Self.socket(inNamespace: target))
    }

    /// Opens a namespace's file (for `setns` or IFLA_NET_NS_FD); the caller closes it.
    public static func openNamespace(_ name: String?) throws(NetlinkError) -> Int32 {
        guard let name else {
            let fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .system(call: "open /proc/self/ns/net", errno: errno) }
            return fd
        }
        var lastErrno: Int32 = ENOENT
        for folder in namespaceFolders {
            let fd = open("\(folder)/\(name)", O_RDONLY | O_CLOEXEC)
            if fd >= 0 { return fd }
            lastErrno = errno
        }
        throw .system(call: "open \(namespaceFolders[0])/\(name)", errno: lastErrno)
    }

    /// A route socket created inside the namespace `target`: this thread
    /// enters it, opens the socket (which stays bound to that namespace)
    /// and returns to its own at once.
    private static func socket(inNamespace target: Int32) throws(NetlinkError) -> RouteNetlinkSocket {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else { throw .system(call: "open /proc/thread-self/ns/net", errno: errno) }
        defer { close(original) }
        let entered = sriov_shim_enter_net_namespace(target)
        guard entered == 0 else { throw .system(call: "setns", errno: -entered) }
        let made = Result { () throws(NetlinkError) in try RouteNetlinkSocket() }
        // A thread left in the guest's namespace would send later requests there.
        let back = sriov_shim_enter_net_namespace(original)
        guard back == 0 else {
            fatalError("cannot return this thread to its network namespace (errno \(-back))")
        }
        return try made.get()
    }

    // MARK: Reading

    public func links() throws(NetlinkError) -> [LinkInfo] {
        try reader.links()
    }

    public func link(named name: String) throws(NetlinkError) -> LinkInfo? {
        try links().first { $0.name == name }
    }

    /// The netdev whose device is the PCI function `address` (IFLA_PARENT_DEV_NAME).
    public func link(of address: PCIAddress) throws(NetlinkError) -> LinkInfo? {
        try links().first { $0.parentDevice == address.description }
    }

    // MARK: Changing

    /// Moves a link of this namespace into the namespace open at `namespaceFD`.
    /// The link arrives there down.
    public func move(ifindex: Int32, toNamespaceFD namespaceFD: Int32) throws(NetlinkError) {
        try reader.change(type: NetlinkABI.rtmSetLink, op: "RTM_SETLINK (IFLA_NET_NS_FD)", ifindex: ifindex) { request in
            request.appendAttribute(type: NetlinkABI.iflaNetNSFD, UInt32(bitPattern: namespaceFD))
        }
    }

    /// Enslaves a link to `master` (a bond); 0 releases it from its master.
    public func setMaster(ifindex: Int32, master: Int32) throws(NetlinkError) {
        try reader.change(type: NetlinkABI.rtmSetLink, op: "RTM_SETLINK (IFLA_MASTER)", ifindex: ifindex) { request in
            request.appendAttribute(type: NetlinkABI.iflaMaster, int32: master)
        }
    }

    /// Makes `slave` the active slave of an active-backup bond
    /// (RTM_NEWLINK on the bond with IFLA_LINKINFO/IFLA_INFO_DATA/IFLA_BOND_ACTIVE_SLAVE,
    /// what `ip link set BOND type bond active_slave X` sends).
    public func setActiveSlave(bond: Int32, slave: Int32) throws(NetlinkError) {
        try reader.change(type: NetlinkABI.rtmNewLink, op: "RTM_NEWLINK (IFLA_BOND_ACTIVE_SLAVE)", ifindex: bond) { request in
            let info = request.beginNest(type: NetlinkABI.iflaLinkInfo)
            request.appendAttribute(type: NetlinkABI.iflaInfoKind, string: "bond")
            let data = request.beginNest(type: NetlinkABI.iflaInfoData)
            request.appendAttribute(type: NetlinkABI.iflaBondActiveSlave, int32: slave)
            request.endNest(data)
            request.endNest(info)
        }
    }

    public func setUp(ifindex: Int32, _ up: Bool) throws(NetlinkError) {
        try reader.setAdminState(ifindex: ifindex, up: up)
    }
}
