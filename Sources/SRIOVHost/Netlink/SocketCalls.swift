import Glibc

/// One wrapper per system call the netlink socket makes. Each retries EINTR
/// and reads errno straight after the call, before anything can change it.
enum SocketCalls {
    /// socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE).
    static func openRouteSocket() throws(NetlinkError) -> Int32 {
        try openNetlinkSocket(protocol: NetlinkABI.netlinkRoute)
    }

    /// socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol): any netlink family.
    static func openNetlinkSocket(protocol family: Int32) throws(NetlinkError) -> Int32 {
        let type = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        return try retryingInterrupts("socket") { Glibc.socket(AF_NETLINK, type, family) }
    }

    /// Binds to a port id the kernel picks (nl_pid 0), so several sockets in
    /// one process never collide, and joins the multicast groups of the
    /// `groups` bit mask (none by default).
    static func bindToKernelAssignedPort(_ descriptor: Int32, groups: UInt32 = 0) throws(NetlinkError) {
        // struct sockaddr_nl { sa_family_t nl_family; u16 nl_pad; u32 nl_pid; u32 nl_groups; }:
        // a zeroed sockaddr_storage with the family and groups set is exactly that.
        var address = sockaddr_storage()
        address.ss_family = sa_family_t(AF_NETLINK)
        withUnsafeMutableBytes(of: &address) { $0.storeBytes(of: groups, toByteOffset: 8, as: UInt32.self) }
        let sockaddrNetlinkSize: socklen_t = 12
        _ = try retryingInterrupts("bind") {
            withUnsafePointer(to: address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(descriptor, $0, sockaddrNetlinkSize)
                }
            }
        }
    }

    /// The kernel-side receive queue: SO_RCVBUFFORCE with CAP_NET_ADMIN,
    /// else SO_RCVBUF (capped by net.core.rmem_max).
    static func setReceiveQueue(_ descriptor: Int32, bytes: Int32) throws(NetlinkError) {
        do {
            try setOption(descriptor, level: SOL_SOCKET, option: SO_RCVBUFFORCE, bytes, name: "SO_RCVBUFFORCE")
        } catch .system(call: _, errno: EPERM) {
            try setOption(descriptor, level: SOL_SOCKET, option: SO_RCVBUF, bytes, name: "SO_RCVBUF")
        }
    }

    /// How long recv(2) waits before failing with EAGAIN (SO_RCVTIMEO).
    static func setReceiveTimeout(_ descriptor: Int32, _ timeout: Duration) throws(NetlinkError) {
        let (seconds, attoseconds) = timeout.components
        let value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        try setOption(descriptor, level: SOL_SOCKET, option: SO_RCVTIMEO, value, name: "SO_RCVTIMEO")
    }

    /// setsockopt(2) with a fixed-size value; `name` labels errors.
    static func setOption<Value: BitwiseCopyable>(
        _ descriptor: Int32, level: Int32, option: Int32, _ value: Value, name: String
    ) throws(NetlinkError) {
        _ = try retryingInterrupts("setsockopt(\(name))") {
            withUnsafePointer(to: value) {
                Glibc.setsockopt(descriptor, level, option, $0, socklen_t(MemoryLayout<Value>.size))
            }
        }
    }

    static func send(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(NetlinkError) -> Int {
        try retryingInterrupts("send") { Glibc.send(descriptor, bytes.baseAddress, bytes.count, 0) }
    }

    static func receive(
        _ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: Int32
    ) throws(NetlinkError) -> Int {
        try retryingInterrupts("recv") { Glibc.recv(descriptor, buffer.baseAddress, buffer.count, flags) }
    }

    /// close(2), not retried: on Linux the descriptor is released even when
    /// close reports EINTR, and a retry could close a descriptor reused by now.
    static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }

    /// Runs `body` until it does not fail with EINTR; -1 with any other errno throws.
    private static func retryingInterrupts<Result: BinaryInteger>(
        _ call: String, _ body: () -> Result
    ) throws(NetlinkError) -> Result {
        while true {
            let result = body()
            guard result == -1 else { return result }
            let code = errno
            guard code == EINTR else { throw .system(call: call, errno: code) }
        }
    }
}
