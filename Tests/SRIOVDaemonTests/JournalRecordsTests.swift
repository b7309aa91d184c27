import Foundation
import Logging
import SRIOVAPI
import SRIOVCore
import Synchronization
import Testing
@testable import SRIOVDaemon

/// The native journal fields of each record a `JournalLogHandler` writes.
private final class JournalFields: Sendable {
    private let records = Mutex<[[(String, String)]]>([])
    var all: [[(String, String)]] { records.withLock { $0 } }

    var logger: Logger {
        Logger(label: "sriovd") { label in
            JournalLogHandler(label: label, level: .trace, sink: { fields in
                self.records.withLock { $0.append(fields) }
                return 0
            })
        }
    }
}

@Suite("Journal records of events")
struct JournalRecordsTests {
    let pf = try! PCIAddress.parse("0000:01:00.0", field: "pf")
    let vf = try! PCIAddress.parse("0000:01:10.1", field: "vf")
    var vfSubject: EventSubject { EventSubject(pf: pf, vf: vf, vfIndex: 1) }

    func event(_ change: StateChange, _ subject: EventSubject = EventSubject()) -> StateEvent {
        StateEvent(seq: 1, time: Date(), change: change, subject: subject, source: EventSource(file: "f", function: "g", line: 1))
    }

    func record(_ change: StateChange, _ subject: EventSubject = EventSubject()) -> JournalRecords.Record {
        JournalRecords.record(for: event(change, subject))
    }

    func text(_ metadata: Logger.Metadata) -> [String: String] { metadata.mapValues(LogRecord.render) }

    @Test("a VF change for a VM NIC: native fields in the handler's order, the publisher's code location, VM and NIC")
    func nativeFields() throws {
        let journal = JournalFields()
        let bus = EventBus.journaling(to: journal.logger)
        let line: UInt = #line + 1
        bus.publish(.vfBound(driver: "vfio-pci", previous: "igbvf"), EventSubject(pf: pf, vf: vf, vfIndex: 1, vm: "vm1", nic: "net0"))

        #expect(journal.all.count == 1)
        let fields = try #require(journal.all.first)
        #expect(
            fields.map(\.0) == [
                "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "SRIOVD_LOGGER",
                "MESSAGE_ID", "SRIOVD_DRIVER", "SRIOVD_NIC", "SRIOVD_OP", "SRIOVD_PF", "SRIOVD_PREVIOUSDRIVER",
                "SRIOVD_VF", "SRIOVD_VFINDEX", "SRIOVD_VM",
            ])
        #expect(
            fields.map(\.1) == [
                "VF driver changed", "6", "sriovd", #fileID, "\(line)", #function, "sriovd", MessageID.vfBound.id,
                "vfio-pci", "net0", "vf.bind", pf.description, "igbvf", vf.description, "1", "vm1",
            ])
    }

    @Test("records come out in the order the events were published, from concurrent publishers too")
    func recordOrder() async throws {
        let journal = JournalFields()
        let bus = EventBus.journaling(to: journal.logger)
        let subscription = bus.subscribe(buffering: 1000)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<4 {
                group.addTask { for n in 0..<50 { bus.publish(.pfNumVFs(count: task * 100 + n, previous: 0)) } }
            }
        }
        let published = await firstEvents(subscription, 200).map { event -> String in
            guard case .pfNumVFs(let count, _) = event.change else { return "?" }
            return "\(count)"
        }
        let journaled = journal.all.map { record in record.first { $0.0 == "SRIOVD_NUMVFS" }?.1 ?? "?" }
        #expect(journaled == published)
        #expect(Set(journaled).count == 200)
    }

    @Test("each kind of event: its message, priority, MESSAGE_ID and fields, as the call sites wrote them")
    func everyKind() throws {
        let assignment = Assignment(
            vm: "vm1", nic: "net0", vf: vf, pf: pf, vfIndex: 1, driver: .vfio, state: .assigned, createdAt: Date(),
            updatedAt: Date())
        let nic: [String: String] = ["pf": "\(pf)", "vf": "\(vf)", "vfIndex": "1", "vm": "vm1", "nic": "net0", "driver": "vfio-pci"]
        var degraded = assignment
        degraded.state = .degraded
        degraded.reason = "PF gone"
        let results = [
            VFController.SettingResult(setting: .mac, outcome: .applied),
            VFController.SettingResult(setting: .linkState, outcome: .unsupported, detail: "no"),
        ]
        let cases: [(StateChange, EventSubject, Logger.Level, String, MessageID?, [String: String])] = [
            (
                .daemonStarted(DaemonStart(socket: "/run/s.sock", activated: false, pfCount: 2, version: "1.0")), EventSubject(),
                .info, "sriovd ready", .sriovdStarted,
                ["socket": "/run/s.sock", "activated": "false", "pfs": "2", "version": "1.0"]
            ),
            (.daemonStopping, EventSubject(), .info, "shutting down", .sriovdStopping, [:]),
            (
                .pfNumVFs(count: 3, previous: 0), EventSubject(pf: pf), .info, "VF count changed", .pfNumVFs,
                ["op": "pf.numvfs", "pf": "\(pf)", "numVFs": "3", "previous": "0"]
            ),
            (
                .pfAppeared(PFSeen(driver: "igb", netdev: "eth0", numVFs: 2, totalVFs: 7), returned: false), EventSubject(pf: pf),
                .info, "PF seen for the first time", .pfAppeared,
                ["op": "pf.appeared", "pf": "\(pf)", "driver": "igb", "numVFs": "2", "totalVFs": "7"]
            ),
            (
                .pfAppeared(PFSeen(driver: nil, netdev: nil, numVFs: 0, totalVFs: 7), returned: true), EventSubject(pf: pf),
                .info, "PF is back", .pfAppeared,
                ["op": "pf.appeared", "pf": "\(pf)", "driver": "none", "numVFs": "0", "totalVFs": "7"]
            ),
            (
                .pfGone, EventSubject(pf: pf), .warning, "PF seen before is gone (device removed, or its driver unbound)", .pfGone,
                ["op": "pf.gone", "pf": "\(pf)"]
            ),
            (
                .pfChanged(PFSeen(driver: "igb", netdev: nil, numVFs: 4, totalVFs: 7)), EventSubject(pf: pf), .info, "PF changed", nil,
                ["op": "pf.seen", "pf": "\(pf)", "driver": "igb", "netdev": "none", "numVFs": "4"]
            ),
            (
                .vfsSeen(VFsSeen(appeared: [vf, pf], gone: [], changed: [vf])), EventSubject(pf: pf), .debug, "VFs seen changed", nil,
                ["op": "vf.seen", "pf": "\(pf)", "appeared": "\(vf) \(pf)", "changed": "\(vf)"]
            ),
            (
                .vfSettings(VFSettingsChange(action: .configure, results: results)), vfSubject, .info, "VF changed", .vfConfigured,
                ["op": "vf.configure", "pf": "\(pf)", "vf": "\(vf)", "vfIndex": "1", "results": "mac=applied,linkState=unsupported"]
            ),
            (
                .vfSettings(VFSettingsChange(action: .declare, results: results)), vfSubject, .info, "VF changed", .vfConfigured,
                ["op": "vf.declare", "pf": "\(pf)", "vf": "\(vf)", "vfIndex": "1", "results": "mac=applied,linkState=unsupported"]
            ),
            (
                .vfSettings(VFSettingsChange(action: .restore, results: [results[0]])), vfSubject, .info, "VF changed", .vfRestored,
                ["op": "vf.restore", "pf": "\(pf)", "vf": "\(vf)", "vfIndex": "1", "results": "mac=applied"]
            ),
            (
                .vfSettings(VFSettingsChange(action: .scrub, results: [results[0]])), vfSubject, .info, "VF changed", .vfScrubbed,
                ["op": "vf.scrub", "pf": "\(pf)", "vf": "\(vf)", "vfIndex": "1", "results": "mac=applied"]
            ),
            (
                .vfSettings(
                    VFSettingsChange(
                        action: .configure,
                        results: [.init(setting: .vlan, outcome: .failed), .init(setting: .mac, outcome: .rolledBack)])),
                EventSubject(pf: pf, vf: vf, vfIndex: 1, vm: "vm1", nic: "net0"), .error, "VF change failed", nil,
                [
                    "op": "vf.configure", "pf": "\(pf)", "vf": "\(vf)", "vfIndex": "1", "vm": "vm1", "nic": "net0",
                    "results": "vlan=failed,mac=rolledBack",
                ]
            ),
            (
                .vfBound(driver: nil, previous: "vfio-pci"), vfSubject, .info, "VF driver changed", .vfBound,
                ["op": "vf.bind", "pf": "\(pf)", "vf": "\(vf)", "vfIndex": "1", "driver": "none", "previousDriver": "vfio-pci"]
            ),
            (
                .assignmentCreated(assignment), EventSubject(assignment), .info, "VF assigned", .assignmentCreated,
                nic.merging(["op": "assignment.create"]) { $1 }
            ),
            (
                .assignmentChanged(assignment), EventSubject(assignment), .info, "assignment changed", .assignmentChanged,
                nic.merging(["op": "assignment.update"]) { $1 }
            ),
            (
                .assignmentReleased(assignment), EventSubject(assignment), .info, "VF released", .assignmentReleased,
                nic.merging(["op": "assignment.release"]) { $1 }
            ),
            (
                .reconcilePass(ReconcilePass(trigger: "start", summary: "1 applied", changed: true, failed: false)), EventSubject(),
                .info, "reconcile pass done", .reconcilePass, ["op": "reconcile", "trigger": "start", "outcome": "1 applied"]
            ),
            (
                .reconcilePass(ReconcilePass(trigger: "interval", summary: "1 failed", changed: true, failed: true)), EventSubject(),
                .warning, "reconcile pass done", .reconcilePass, ["op": "reconcile", "trigger": "interval", "outcome": "1 failed"]
            ),
            (
                .reconcilePass(ReconcilePass(trigger: "interval", summary: "nothing to change", changed: false, failed: false)),
                EventSubject(), .debug, "reconcile pass done", .reconcilePass,
                ["op": "reconcile", "trigger": "interval", "outcome": "nothing to change"]
            ),
            (
                .migrationState(MigrationStateChange(
                    id: 3, role: .source, state: .prepared, previous: .preparing, error: nil, nics: ["net0", "net1"])),
                EventSubject(vm: "vm1"), .notice, "migration prepared", .migrationState,
                [
                    "op": "migration", "vm": "vm1", "nic": "net0 net1", "migration": "3", "role": "source", "state": "prepared",
                    "previousState": "preparing",
                ]
            ),
            (
                .migrationState(MigrationStateChange(
                    id: 3, role: .source, state: .failed, previous: .preparing,
                    error: MigrationFailure(operation: "prepare", nic: "net0", step: "detach", reason: "timed out"),
                    nics: ["net0"])),
                EventSubject(vm: "vm1"), .error, "migration failed", .migrationState,
                [
                    "op": "migration", "vm": "vm1", "nic": "net0", "migration": "3", "role": "source", "state": "failed",
                    "previousState": "preparing", "failedStep": "detach", "error": "timed out",
                ]
            ),
            (
                .migrationStep(MigrationStep(
                    operation: "prepare", nic: "net0", step: "steer", startedAt: Date(timeIntervalSince1970: 0), offsetMs: 5,
                    durationMs: 31.25, result: "ok", lever: "bond bond0 active_slave veth-g")),
                EventSubject(vm: "vm1", nic: "net0"), .info, "migration step steer: ok", .migrationStep,
                [
                    "op": "migration.prepare", "vm": "vm1", "nic": "net0", "step": "steer", "result": "ok", "durationMs": "31.2",
                    "lever": "bond bond0 active_slave veth-g",
                ]
            ),
            (
                .pfLost(PFLoss(reason: "driver igb unbound", driver: "igb", numVFs: 4)), EventSubject(pf: pf), .warning,
                "PF lost: driver igb unbound; its VFs are gone", .pfLost,
                ["op": "pf.lost", "pf": "\(pf)", "reason": "driver igb unbound", "driver": "igb", "numVFs": "4"]
            ),
            (
                .pfBack(PFSeen(driver: "igb", netdev: "eth0", numVFs: 0, totalVFs: 7)), EventSubject(pf: pf), .notice, "PF back",
                .pfBack, ["op": "pf.back", "pf": "\(pf)", "driver": "igb", "netdev": "eth0", "numVFs": "0"]
            ),
            (
                .assignmentDegraded(degraded), EventSubject(degraded), .warning, "assignment degraded: PF gone", .assignmentDegraded,
                nic.merging(["op": "assignment.degrade", "reason": "PF gone"]) { $1 }
            ),
            (
                .assignmentHealed(assignment, HealReport(attempt: 2, steps: [("numvfs", 300), ("program", 12.5)], sinceLossMs: 4000)),
                EventSubject(assignment), .notice, "assignment healed", .assignmentHealed,
                nic.merging([
                    "op": "assignment.heal", "attempt": "2", "durationMs": "312.5", "numvfsMs": "300.0", "programMs": "12.5",
                    "sinceLossMs": "4000.0",
                ]) { $1 }
            ),
            (
                .assignmentFailed(degraded, attempts: 5), EventSubject(degraded), .error, "assignment could not be healed: PF gone",
                .assignmentFailed, nic.merging(["op": "assignment.heal", "reason": "PF gone", "attempts": "5"]) { $1 }
            ),
            (
                .vfDrift(VFDrift(setting: .vlan, expected: "vlan 200", found: "vlan 5", source: .assignment, action: .corrected,
                                 detail: nil, trigger: "event")),
                EventSubject(degraded), .warning, "VF VLAN drifted: expected vlan 200, found vlan 5 (corrected)", .vfDrift,
                [
                    "op": "vf.drift", "pf": "\(pf)", "vf": "\(vf)", "vfIndex": "1", "vm": "vm1", "nic": "net0", "setting": "vlan",
                    "expected": "vlan 200", "found": "vlan 5", "source": "assignment", "action": "corrected", "trigger": "event",
                ]
            ),
        ]
        var kinds: Set<String> = []
        for (change, subject, level, message, id, fields) in cases {
            kinds.insert(change.kind)
            let r = record(change, subject)
            #expect(r.level == level, "\(change.kind)")
            #expect(r.message == message, "\(change.kind)")
            var expected = fields
            if let id { expected["MESSAGE_ID"] = id.id }
            #expect(text(r.metadata) == expected, "\(change.kind)")
            if let id { #expect(id.name == change.kind, "the MESSAGE_ID is the kind's") }
        }
        #expect(kinds == Set(StateChange.kinds), "every kind is covered")
    }
}
