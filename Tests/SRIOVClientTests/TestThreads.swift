#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Threads for the tests' own blocking work (the fake daemon's accept loop,
// waiting for a child process), kept off the concurrency pool.

/// Runs blocking `work` on a new thread of its own and waits for it without
/// holding a thread of the concurrency pool.
func runOnOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        let started = startThread { continuation.resume(returning: work()) }
        // No thread to be had (EAGAIN): doing the work here beats failing it.
        if !started { continuation.resume(returning: work()) }
    }
}

/// Runs `body` on a new detached thread; false when none could be started.
@discardableResult
func startThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    let job = Unmanaged.passRetained(ThreadJob(body))
    var thread = pthread_t()
    let result = pthread_create(
        &thread, nil,
        { context in
            Unmanaged<ThreadJob>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, job.toOpaque())
    guard result == 0 else {
        job.release()
        return false
    }
    pthread_detach(thread)
    return true
}

private final class ThreadJob: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}
