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

    /// The keys held or waited for now: empty when nothing is locked.
    var busyKeys: Set<Key> { held.union(waiters.keys) }

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

/// A reader/writer lock per key (one PF): shared holders run together, an
/// exclusive holder runs alone. Waiters are served in arrival order, so an
/// exclusive request waits for the shared holders before it and holds off
/// every request after it (no starvation either way).
actor KeyedSharedLock<Key: Hashable & Sendable> {
    private struct Entry {
        var readers = 0
        var writer = false
        var queue: [(exclusive: Bool, resume: CheckedContinuation<Void, Never>)] = []
    }
    private var entries: [Key: Entry] = [:]

    /// Runs `body` while holding `key` shared with other shared holders.
    func withShared<T: Sendable>(_ key: Key, _ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire(key, exclusive: false)
        defer { release(key, exclusive: false) }
        return try await body()
    }

    /// The keys held or waited for now: empty when nothing is locked.
    var busyKeys: Set<Key> { Set(entries.keys) }

    /// Runs `body` while holding `key` alone.
    func withExclusive<T: Sendable>(_ key: Key, _ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire(key, exclusive: true)
        defer { release(key, exclusive: true) }
        return try await body()
    }

    private func acquire(_ key: Key, exclusive: Bool) async {
        var entry = entries[key] ?? Entry()
        let free = exclusive ? (!entry.writer && entry.readers == 0) : !entry.writer
        if free && entry.queue.isEmpty {
            if exclusive { entry.writer = true } else { entry.readers += 1 }
            entries[key] = entry
            return
        }
        await withCheckedContinuation { continuation in
            entry.queue.append((exclusive, continuation))
            entries[key] = entry
        }
    }

    private func release(_ key: Key, exclusive: Bool) {
        guard var entry = entries[key] else { return }
        if exclusive { entry.writer = false } else { entry.readers -= 1 }
        // Hand over in arrival order: one exclusive waiter once nobody
        // holds the key, or every shared waiter up to the next exclusive one.
        while let next = entry.queue.first {
            if next.exclusive {
                guard !entry.writer && entry.readers == 0 else { break }
                entry.writer = true
            } else {
                guard !entry.writer else { break }
                entry.readers += 1
            }
            entry.queue.removeFirst()
            next.resume.resume()
            if next.exclusive { break }
        }
        entries[key] = entry.readers == 0 && !entry.writer && entry.queue.isEmpty ? nil : entry
    }
}
