/// Serializes work per key (one VF, one PF) without one global lock: work on
/// different keys runs concurrently; work on one key runs in arrival order.
actor KeyedLock<Key: Hashable & Sendable> {
    private var held: Set<Key> = []
    private var waiters: [Key: [CheckedContinuation<Void, Never>]] = [:]

    func withLock<T: Sendable>(_ key: Key, _ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire(key)
        defer { release(key) }
        return try await body()
    }

    private func acquire(_ key: Key) async {
        if !held.contains(key) {
            held.insert(key)
            return
        }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
    }

    private func release(_ key: Key) {
        if var queue = waiters[key], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[key] = queue.isEmpty ? nil : queue
            next.resume()  // ownership passes to the next waiter
        } else {
            held.remove(key)
        }
    }
}
