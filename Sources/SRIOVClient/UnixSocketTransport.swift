import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One HTTP exchange on a fresh Unix stream connection: connect, send the
/// request, read until the response is complete. Blocking; bounded by
/// `timeout` as a whole and by `maxResponseSize`.
struct UnixSocketTransport: Sendable {
    var socketPath: String
    var timeout: Duration
    var maxResponseSize: Int

    static let readSize = 64 * 1024

    func exchange(
        _ request: SRIOVClient.Request, cancellation: ExchangeCancellation
    ) throws(ClientError) -> SRIOVClient.Response {
        let bytes = try request.serialized()
        let deadline = ContinuousClock.now + timeout
        let socket: UnixStreamSocket
        do {
            socket = try UnixStreamSocket()
        } catch {
            throw ClientError(error, socketPath: socketPath, timeout: timeout)
        }
        guard cancellation.register(socket.descriptor) else {
            socket.close()
            throw .cancelled
        }
        // In this order: once unregistered, cancel() no longer touches the
        // descriptor, so closing it cannot race with a shutdown.
        defer {
            cancellation.unregister()
            socket.close()
        }
        do throws(SyscallError) {
            // SO_SNDTIMEO also bounds a connect that waits on a full backlog.
            try socket.setTimeout(SO_SNDTIMEO, to: timeout)
            try socket.connect(to: socketPath)
        } catch {
            throw cancellation.isCancelled ? .cancelled : ClientError(error, socketPath: socketPath, timeout: timeout)
        }
        // The daemon may refuse a request before reading all of it (413) and
        // close: sending then fails with EPIPE, but its answer is there to read.
        var refusedSend: SyscallError?
        do throws(SyscallError) {
            try socket.setTimeout(SO_SNDTIMEO, to: deadline - .now)
            try socket.send(bytes)
        } catch {
            guard !cancellation.isCancelled else { throw .cancelled }
            guard error.code == EPIPE || error.code == ECONNRESET else {
                throw ClientError(error, socketPath: socketPath, timeout: timeout)
            }
            refusedSend = error
        }
        do {
            return try receive(from: socket, method: request.method, deadline: deadline, cancellation: cancellation)
        } catch {
            // A shutdown by cancel() looks like an early close; say what it was.
            if cancellation.isCancelled { throw .cancelled }
            if let refusedSend { throw ClientError(refusedSend, socketPath: socketPath, timeout: timeout) }
            throw error
        }
    }

    private func receive(
        from socket: UnixStreamSocket, method: SRIOVClient.Method, deadline: ContinuousClock.Instant,
        cancellation: ExchangeCancellation
    ) throws(ClientError) -> SRIOVClient.Response {
        var parser = ResponseParser(requestMethod: method, maxResponseSize: maxResponseSize)
        var chunk = [UInt8](repeating: 0, count: Self.readSize)
        while true {
            // Each receive waits only for what is left of the whole timeout.
            let remaining = deadline - .now
            guard remaining > .zero else { throw .timedOut(socketPath: socketPath, after: timeout) }
            let count: Int
            do throws(SyscallError) {
                try socket.setTimeout(SO_RCVTIMEO, to: remaining)
                count = try socket.receive(into: &chunk)
            } catch {
                throw ClientError(error, socketPath: socketPath, timeout: timeout)
            }
            if count == 0 { return try parser.finish() }
            if let response = try parser.consume(chunk[..<count]) { return response }
        }
    }
}

/// Lets a task's cancellation handler, on another thread, interrupt a blocking
/// exchange by shutting its socket down.
final class ExchangeCancellation: Sendable {
    private struct State {
        var descriptor: Int32?
        var isCancelled = false
    }

    private let state = Mutex(State())

    /// Registers the socket a later `cancel()` shuts down. false when the
    /// exchange was cancelled before it started.
    func register(_ descriptor: Int32) -> Bool {
        state.withLock { state in
            guard !state.isCancelled else { return false }
            state.descriptor = descriptor
            return true
        }
    }

    /// Call before closing the registered socket.
    func unregister() {
        state.withLock { $0.descriptor = nil }
    }

    func cancel() {
        state.withLock { state in
            state.isCancelled = true
            // Wakes a blocked connect, send or recv; the owner still closes the descriptor.
            if let descriptor = state.descriptor { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    var isCancelled: Bool { state.withLock { $0.isCancelled } }
}

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
