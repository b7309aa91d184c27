import Foundation
import Logging
import Metrics
import Synchronization

/// sriovd's one account of its state changes: each change is published
/// once, as a `StateEvent` with the next sequence number and the time, and
/// every subscriber receives it.
///
/// Two kinds of subscriber:
/// - **recorders**, given at init, are called during `publish`, one after
///   the other, under the bus's lock. The journal is one: its records come
///   out in sequence order, which is the order the changes were made; none
///   is lost; and a record is written before the publisher goes on, so a
///   crash right after a change still leaves the record of it. A recorder
///   costs the publisher what a log call cost it before there was a bus.
///   It must be quick, and must not publish (the lock is not reentrant).
/// - **subscriptions** (`subscribe(buffering:)`), for readers that may be
///   slow, such as a client following the event stream: each has a bounded
///   buffer of its own. Publishing only appends to it and never waits; when
///   it is full the event is dropped for that subscriber alone, and counted
///   (on the subscription, on the bus, and in `sriovd_events_dropped_total`).
///   A subscriber sees a gap in `seq` where it lost events.
public final class EventBus: Sendable {
    public typealias Recorder = @Sendable (StateEvent) -> Void

    private let recorders: [Recorder]
    private let state = Mutex(State())
    private let droppedCounter: Counter

    private struct State {
        var lastSeq: UInt64 = 0
        var nextSubscriber = 0
        var subscribers: [Int: EventSubscription.Feed] = [:]
        var dropped = 0
    }

    /// `recorders` receive every event inline, in order. Metrics go to the
    /// task's metrics factory at the time of the call (the global one unless
    /// `withMetricsFactory` says otherwise).
    public init(recorders: [Recorder] = []) {
        self.recorders = recorders
        self.droppedCounter = Counter(label: Self.droppedLabel, factory: MetricsSystem.factory)
    }

    public static let droppedLabel = "sriovd_events_dropped_total"
    /// The `# HELP` text of each family, by name.
    public static let help = [droppedLabel: "Events dropped for subscriptions that fell behind"]

    /// A bus whose one recorder writes each event to `logger` as its journal
    /// record (`JournalRecords`).
    public static func journaling(to logger: Logger) -> EventBus {
        EventBus(recorders: [JournalRecords(logger: logger).record])
    }

    /// Publishes one change: numbers and dates it, adds the VM and NIC the
    /// task works for (`OperationContext`) when `subject` names none, hands
    /// it to the recorders, then to every subscription without waiting.
    /// `file`, `function` and `line` name the call site in the journal.
    @discardableResult
    public func publish(
        _ change: StateChange, _ subject: EventSubject = EventSubject(),
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) -> StateEvent {
        var subject = subject
        OperationContext.attribute(&subject)
        let source = EventSource(file: file, function: function, line: line)
        return state.withLock { state in
            state.lastSeq += 1
            let event = StateEvent(seq: state.lastSeq, time: Date(), change: change, subject: subject, source: source)
            for recorder in recorders { recorder(event) }
            for feed in state.subscribers.values where !feed.offer(event) {
                state.dropped += 1
                droppedCounter.increment()
            }
            return event
        }
    }

    /// A new subscription: every event published from now on, in order,
    /// through a buffer of `capacity` events. Ends when cancelled, or when
    /// the subscription and its iterators are gone.
    public func subscribe(buffering capacity: Int = 1024) -> EventSubscription {
        precondition(capacity > 0, "a subscription needs room for at least one event")
        let (stream, continuation) = AsyncStream.makeStream(of: StateEvent.self, bufferingPolicy: .bufferingOldest(capacity))
        let subscription = EventSubscription(stream: stream, continuation: continuation)
        let id = state.withLock { state in
            defer { state.nextSubscriber += 1 }
            state.subscribers[state.nextSubscriber] = subscription.feed
            return state.nextSubscriber
        }
        // Not called under the lock: finish() is only ever called outside it.
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return subscription
    }

    /// The sequence number of the last event published (0: none yet).
    public var lastSeq: UInt64 { state.withLock { $0.lastSeq } }
    /// Events dropped, over every subscription, since the bus was made.
    public var dropped: Int { state.withLock { $0.dropped } }
    /// Subscriptions currently receiving events.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }
}

/// The events of one subscriber, as an `AsyncSequence`, in publication order.
public final class EventSubscription: AsyncSequence, Sendable {
    public typealias Element = StateEvent

    private let stream: AsyncStream<StateEvent>
    let feed: Feed

    /// The publishing side: offers an event without waiting, counts what did not fit.
    final class Feed: Sendable {
        let continuation: AsyncStream<StateEvent>.Continuation
        let dropped = Atomic<Int>(0)

        init(_ continuation: AsyncStream<StateEvent>.Continuation) {
            self.continuation = continuation
        }

        /// False when the event was dropped because the buffer is full.
        func offer(_ event: StateEvent) -> Bool {
            switch continuation.yield(event) {
            case .enqueued, .terminated: return true
            case .dropped:
                dropped.add(1, ordering: .relaxed)
                return false
            @unknown default: return true
            }
        }
    }

    init(stream: AsyncStream<StateEvent>, continuation: AsyncStream<StateEvent>.Continuation) {
        self.stream = stream
        self.feed = Feed(continuation)
    }

    /// Events this subscriber lost because its buffer was full.
    public var dropped: Int { feed.dropped.load(ordering: .relaxed) }

    /// Stops the subscription: events buffered are still read, then the
    /// sequence ends.
    public func cancel() { feed.continuation.finish() }

    public func makeAsyncIterator() -> AsyncStream<StateEvent>.AsyncIterator { stream.makeAsyncIterator() }
}
