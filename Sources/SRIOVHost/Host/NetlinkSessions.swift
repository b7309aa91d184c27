import Synchronization

/// Netlink sessions (a `LinkReader`'s or a `VFSettingsWriter`'s socket) for
/// concurrent callers: each call takes one of its own, an idle one or a new
/// one, and gives it back when done. No caller waits for another's kernel
/// round trip: a write to one PF that the driver holds for seconds leaves
/// every other PF's reads and writes free. Serializing work on one PF is
/// the caller's business (the daemon's per-PF lock). The kernel still runs
/// each VF request under RTNL, its one lock for all links: what overlaps is
/// everything around it (waiting on the socket, sysfs, the caller's own
/// work), and a driver that sleeps while holding RTNL holds every PF.
///
/// A session is used by one thread at a time: taken out of the pool, used,
/// put back. Sessions not needed any more are closed (a few stay open, so a
/// call usually reuses a socket instead of opening one).
final class NetlinkSessions<Session>: Sendable {
    /// A session on its way in or out of the pool: it has one user at a
    /// time, the one that took it (or the pool, while it is idle).
    private struct Owned: @unchecked Sendable {
        let session: Session
    }

    private let idle: Mutex<[Owned]>
    private let open: @Sendable () throws -> Session
    /// Why the first session could not be opened; every call then fails with it.
    let unavailable: String?
    /// How many idle sessions are kept open.
    let keptIdle: Int

    /// Opens one session now, to learn whether netlink can be used at all.
    init(keptIdle: Int = 4, open: @escaping @Sendable () throws -> Session) {
        self.open = open
        self.keptIdle = keptIdle
        do {
            idle = Mutex([Owned(session: try open())])
            unavailable = nil
        } catch {
            idle = Mutex([])
            unavailable = "netlink unavailable: \(error)"
        }
    }

    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `body` with a session no other caller uses meanwhile (blocking:
    /// call it on `KernelThreads`).
    func with<T>(_ body: (Session) throws -> T) throws -> T {
        if let unavailable { throw Unavailable(description: unavailable) }
        let session = try idle.withLock { $0.popLast() }?.session ?? open()
        defer {
            let returned = Owned(session: session)
            idle.withLock { sessions in
                if sessions.count < keptIdle { sessions.append(returned) }
            }
        }
        return try body(session)
    }

    /// Sessions open and idle now.
    var idleCount: Int { idle.withLock { $0.count } }
}
