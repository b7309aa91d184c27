import NIOPosix

/// Threads of their own for calls that block in the kernel: netlink round
/// trips, sysfs reads and writes, function resets, driver binds. Swift's
/// cooperative pool has one thread per core (two on small hosts) and serves
/// every request; a call parked there for a slow driver would stall them all.
///
/// The pool is wider than the cooperative pool, so that calls held by one
/// slow PF leave threads for the others (a PF holds as many as it has calls
/// in flight: one per VF being changed at most, under the daemon's locks).
/// A call is never cancelled once submitted: a kernel write asked for is made.
public final class KernelThreads: Sendable {
    /// The process's pool (started at first use, never stopped).
    public static let shared = KernelThreads(threads: 16)

    public let count: Int
    private let pool: NIOThreadPool

    /// Starts `threads` threads.
    public init(threads: Int) {
        count = max(threads, 1)
        pool = NIOThreadPool(numberOfThreads: count)
        pool.start()
    }

    deinit {
        // Threads finish the calls they run, then exit; nothing waits here.
        pool.shutdownGracefully { _ in }
    }

    /// Runs `body` on one of the pool's threads and returns what it returned
    /// or threw. Once the pool is stopped (only as the process ends), runs
    /// `body` on the caller's thread.
    public func run<T: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> T
    ) async throws(Failure) -> T {
        let result: Result<T, Failure> = await withCheckedContinuation { continuation in
            pool.submit { _ in
                continuation.resume(returning: Result { () throws(Failure) in try body() })
            }
        }
        return try result.get()
    }
}
