import Foundation
import Metrics
import MetricsTestKit
import SRIOVCore
import Synchronization
import Testing
@testable import SRIOVDaemon

/// Collects what a recorder receives.
final class RecordedEvents: Sendable {
    private let events = Mutex<[StateEvent]>([])
    var all: [StateEvent] { events.withLock { $0 } }
    func record(_ event: StateEvent) { events.withLock { $0.append(event) } }
}

/// The first `count` events of a subscription.
func firstEvents(_ subscription: EventSubscription, _ count: Int) async -> [StateEvent] {
    var events: [StateEvent] = []
    for await event in subscription {
        events.append(event)
        if events.count == count { break }
    }
    return events
}

@Suite("Event bus")
struct EventBusTests {
    let pf = try! PCIAddress.parse("0000:01:00.0", field: "pf")

    /// A distinct change per `n`, so order can be checked by content too.
    func change(_ n: Int) -> StateChange { .pfNumVFs(count: n, previous: n - 1) }
    func count(of event: StateEvent) -> Int? { if case .pfNumVFs(let n, _) = event.change { n } else { nil } }

    @Test("every recorder and subscriber gets each event once, in publication order, numbered 1, 2, 3... and dated at publication")
    func orderAndOnce() async throws {
        let recorded = RecordedEvents()
        let bus = EventBus(recorders: [recorded.record])
        let subscriptions = (0..<3).map { _ in bus.subscribe(buffering: 100) }
        let before = Date()
        for n in 1...50 { bus.publish(change(n), EventSubject(pf: pf)) }
        let after = Date()
        for subscription in subscriptions { subscription.cancel() }

        #expect(recorded.all.map(\.seq) == Array(1...50))
        #expect(recorded.all.map { count(of: $0) } == Array(1...50))
        for subscription in subscriptions {
            var received: [StateEvent] = []
            for await event in subscription { received.append(event) }  // ends after the buffered events
            #expect(received.map(\.seq) == Array(1...50), "each event once, in order")
            #expect(received.map { count(of: $0) } == Array(1...50))
        }
        let times = recorded.all.map(\.time)
        #expect(times.allSatisfy { $0 >= before && $0 <= after })
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(recorded.all.allSatisfy { $0.kind == "pf.numvfs" && $0.subject.pf == pf })
        #expect(bus.lastSeq == 50 && bus.dropped == 0)
    }

    @Test("under concurrent publishers seq has no gap and no repeat, and everyone sees it in increasing order")
    func concurrentPublishers() async throws {
        let recorded = RecordedEvents()
        let bus = EventBus(recorders: [recorded.record])
        let subscription = bus.subscribe(buffering: 1000)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for n in 1...100 { bus.publish(change(task * 1000 + n)) }
                }
            }
        }
        let received = await firstEvents(subscription, 800)
        #expect(recorded.all.map(\.seq) == Array(1...800))
        #expect(received.map(\.seq) == Array(1...800))
        // Each publisher's own events keep its order.
        for task in 0..<8 {
            let own = recorded.all.compactMap(count(of:)).filter { $0 / 1000 == task }
            #expect(own == Array((task * 1000 + 1)...(task * 1000 + 100)))
        }
    }

    @Test("a slow subscriber slows neither the publisher nor the others; what its buffer cannot hold is dropped and counted")
    func slowSubscriber() async throws {
        let metrics = TestMetrics()
        let bus = withMetricsFactory(metrics) { EventBus() }
        let slow = bus.subscribe(buffering: 4)
        let fast = bus.subscribe(buffering: 1000)
        // The slow reader takes one event, then sleeps far longer than the test.
        let slowReader = Task {
            for await _ in slow { try? await Task.sleep(for: .seconds(3600)) }
        }
        let fastReader = Task { await firstEvents(fast, 100) }

        let clock = ContinuousClock()
        let started = clock.now
        for n in 1...100 { bus.publish(change(n)) }
        let publishing = clock.now - started

        #expect(publishing < .seconds(1), "publishing 100 events took \(publishing)")
        let received = await fastReader.value
        #expect(received.map(\.seq) == Array(1...100), "the fast subscriber got everything")
        // The slow one holds at most its first event (being handled) and 4 buffered.
        #expect((95...96).contains(slow.dropped), "\(slow.dropped)")
        #expect(fast.dropped == 0)
        #expect(bus.dropped == slow.dropped)
        #expect(try metrics.expectCounter("sriovd_events_dropped_total").totalValue == Int64(slow.dropped))
        slowReader.cancel()
    }

    @Test("what a full buffer drops is the newest: the subscriber reads on from where it was, and sees the gap in seq")
    func dropsShowAsGap() async throws {
        let bus = EventBus()
        let subscription = bus.subscribe(buffering: 3)
        for n in 1...10 { bus.publish(change(n)) }
        #expect(subscription.dropped == 7)
        bus.publish(change(11))  // still full: dropped
        let first = await firstEvents(subscription, 3)
        #expect(first.map(\.seq) == [1, 2, 3])
        bus.publish(change(12))  // room again
        let next = await firstEvents(subscription, 1)
        #expect(next.map(\.seq) == [12], "seq 4-11 are the gap")
        #expect(subscription.dropped == 8 && bus.dropped == 8)
    }

    @Test("a cancelled or abandoned subscription no longer receives events")
    func subscriptionsEnd() async throws {
        let bus = EventBus()
        let kept = bus.subscribe(buffering: 10)
        do {
            let abandoned = bus.subscribe(buffering: 10)
            withExtendedLifetime(abandoned) { #expect(bus.subscriberCount == 2) }
        }
        #expect(bus.subscriberCount == 1, "the abandoned one is gone")
        kept.cancel()
        #expect(bus.subscriberCount == 0)
        bus.publish(change(1))
        #expect(bus.dropped == 0)
    }

    @Test("an event published while a task works for a VM NIC names it; a subject's own VM wins")
    func attribution() async throws {
        let recorded = RecordedEvents()
        let bus = EventBus(recorders: [recorded.record])
        let vf = try PCIAddress.parse("0000:01:10.2", field: "vf")
        bus.publish(.vfBound(driver: "vfio-pci", previous: nil), EventSubject(pf: pf, vf: vf, vfIndex: 2))
        try await OperationContext.attributing(vm: "vm1", nic: "net0") { () throws(ControllerError) in
            bus.publish(.vfBound(driver: "vfio-pci", previous: nil), EventSubject(pf: pf, vf: vf, vfIndex: 2))
            bus.publish(.vfBound(driver: nil, previous: "vfio-pci"), EventSubject(pf: pf, vf: vf, vm: "vm2", nic: "net9"))
        }
        let subjects = recorded.all.map(\.subject)
        #expect(subjects.map(\.vm) == [nil, "vm1", "vm2"])
        #expect(subjects.map(\.nic) == [nil, "net0", "net9"])
        #expect(subjects[1].vf == vf && subjects[1].vfIndex == 2 && subjects[1].pf == pf)
    }

    @Test("every kind is named once, and the VF settings kinds follow the action")
    func kinds() {
        #expect(Set(StateChange.kinds).count == StateChange.kinds.count)
        let actions = VFSettingsChange.Action.allCases.map { StateChange.vfSettings(VFSettingsChange(action: $0, results: [])).kind }
        #expect(actions == ["vf.configured", "vf.configured", "vf.restored", "vf.scrubbed"])
        #expect(actions.allSatisfy(StateChange.kinds.contains))
        // Every MESSAGE_ID's name is an event kind.
        #expect(MessageID.all.allSatisfy { StateChange.kinds.contains($0.name) }, "\(MessageID.all.map(\.name))")
    }
}
