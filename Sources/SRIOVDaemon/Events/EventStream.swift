import AsyncAlgorithms
import Foundation
import SRIOVAPI
import SRIOVCore
import ServiceLifecycle

/// The event stream of one reader (`GET /v1/events`), apart from HTTP:
/// lines (`EventLine`) written as things happen, through a bounded buffer of
/// its own, so a slow reader never slows the daemon.
///
/// What a reader gets, in order:
/// 1. with `since`: a `resync` line when events after it are no longer held
///    (or `since` is from an earlier run), then the held events after it;
/// 2. a `heartbeat` saying where the stream is (its `seq`), at once and then
///    every `heartbeat` interval;
/// 3. every event published from then on that its filter lets through.
///
/// When its buffer overflows (it read too slowly), the stream ends with an
/// `overflow` line that says how to resume (`?since=`); the events it missed
/// are then replayed from the history, as far as it still holds them.
public final class EventStream: Sendable {
    public struct Settings: Sendable {
        /// The longest time without a line.
        public var heartbeat: Duration
        /// Events buffered for one reader before it is cut off.
        public var buffer: Int

        public init(heartbeat: Duration = .seconds(15), buffer: Int = 512) {
            self.heartbeat = heartbeat
            self.buffer = buffer
        }
    }

    public let bus: EventBus
    public let history: EventHistory
    public let settings: Settings

    public init(bus: EventBus, history: EventHistory, settings: Settings = Settings()) {
        self.bus = bus
        self.history = history
        self.settings = settings
    }

    /// Writes one reader's lines through `write` until the reader goes
    /// (`write` throws), the task is cancelled, the service group shuts
    /// down gracefully, or the reader falls behind (an `overflow` line).
    public func follow(
        since: UInt64?, filter: EventFilter, write: (EventLine) async throws -> Void
    ) async throws {
        // Subscribed before the history is read: an event published in
        // between is in both, and is written once (`position`).
        let subscription = bus.subscribe(buffering: settings.buffer)
        defer { subscription.cancel() }

        var position: UInt64
        if let since {
            let replay = history.events(after: since)
            if replay.isIncomplete {
                try await write(Self.resync(since: since, replay: replay))
            }
            for event in replay.events where filter.matches(event) {
                try await write(EventLine(event))
            }
            position = replay.newest
        } else {
            position = bus.lastSeq
        }
        try await write(Self.heartbeat(position))

        enum Item: Sendable {
            case event(StateEvent)
            case heartbeat
        }
        let events = subscription.map { Item.event($0) }
        let ticks = AsyncTimerSequence(interval: settings.heartbeat, clock: .continuous).map { _ in Item.heartbeat }
        for await item in merge(events, ticks).cancelOnGracefulShutdown() {
            // What the buffer dropped came after what it holds; the held
            // events are in the history too, so the reader resumes from here.
            if subscription.dropped > 0 {
                try await write(Self.overflow(position, dropped: subscription.dropped))
                return
            }
            switch item {
            case .event(let event):
                guard event.seq > position else { continue }
                position = event.seq
                if filter.matches(event) { try await write(EventLine(event)) }
            case .heartbeat:
                try await write(Self.heartbeat(position))
            }
        }
    }

    static func heartbeat(_ seq: UInt64) -> EventLine {
        EventLine(seq: seq, time: Date(), type: EventLine.heartbeat)
    }

    static func resync(since: UInt64, replay: EventHistory.Replay) -> EventLine {
        let first = since + 1, last = (replay.oldest ?? 1) - 1
        let detail =
            since > replay.newest
            ? "seq \(since) is not from this run of sriovd (its last event is \(replay.newest)): read the state again"
            : first == last
                ? "event \(first) is no longer held: read the state again"
                : "events \(first)-\(last) are no longer held: read the state again"
        var details: [String: JSONValue] = ["since": .integer(Int64(since)), "detail": .string(detail)]
        if let oldest = replay.oldest { details["oldest"] = .integer(Int64(oldest)) }
        return EventLine(seq: (replay.oldest ?? replay.newest + 1) - 1, time: Date(), type: EventLine.resync, details: .object(details))
    }

    static func overflow(_ position: UInt64, dropped: Int) -> EventLine {
        EventLine(
            seq: position, time: Date(), type: EventLine.overflow,
            details: [
                "since": .integer(Int64(position)), "dropped": .integer(Int64(dropped)),
                "detail": .string(
                    "this reader fell too far behind and the stream ends here; follow again with ?since=\(position)"),
            ])
    }
}
