import Synchronization

/// The last `capacity` events of the bus, for readers that resume the event
/// stream from a `seq` (`GET /v1/events?since=`). A recorder of the bus
/// (`record` runs during `publish`, under the bus's lock), so it holds every
/// event up to the bus's `lastSeq`, in order, with no gap.
public final class EventHistory: Sendable {
    public let capacity: Int
    private let ring: Mutex<Ring>

    /// A fixed-size ring: `events[start]` is the oldest held.
    private struct Ring {
        var events: [StateEvent] = []
        var start = 0
    }

    public init(capacity: Int = 2048) {
        precondition(capacity > 0, "a history holds at least one event")
        self.capacity = capacity
        self.ring = Mutex(Ring())
    }

    /// Keeps `event`, forgetting the oldest when full.
    public func record(_ event: StateEvent) {
        ring.withLock { ring in
            if ring.events.count < capacity {
                ring.events.append(event)
            } else {
                ring.events[ring.start] = event
                ring.start = (ring.start + 1) % capacity
            }
        }
    }

    /// What a reader that has seen every event up to `seq` missed since.
    public struct Replay: Sendable {
        /// The events after `seq` still held, in order.
        public var events: [StateEvent]
        /// Events after `seq` are no longer held (or `seq` is from an
        /// earlier run of the daemon): the reader must read the state again.
        public var isIncomplete: Bool
        /// The oldest event held (nil: none yet).
        public var oldest: UInt64?
        /// The newest event held (0: none yet).
        public var newest: UInt64
    }

    /// The events after `seq`. `seq` newer than the newest event can only
    /// come from an earlier run (seq starts at 1 with each run): that is
    /// incomplete too, and every event held is replayed.
    public func events(after seq: UInt64) -> Replay {
        ring.withLock { ring in
            let ordered = Array(ring.events[ring.start...] + ring.events[..<ring.start])
            let oldest = ordered.first?.seq
            let newest = ordered.last?.seq ?? 0
            let missing = oldest.map { seq + 1 < $0 } ?? false
            let fromAnotherRun = seq > newest
            // From another run: every event held is news to the reader.
            let after = fromAnotherRun ? 0 : seq
            return Replay(
                events: ordered.filter { $0.seq > after }, isIncomplete: missing || fromAnotherRun, oldest: oldest,
                newest: newest)
        }
    }

    /// The number of events held.
    public var count: Int { ring.withLock { $0.events.count } }
}
