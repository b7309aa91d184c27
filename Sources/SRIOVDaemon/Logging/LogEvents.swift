import Logging

/// A journal `MESSAGE_ID`: one fixed 128-bit id (32 lowercase hex digits)
/// per kind of event, so `journalctl MESSAGE_ID=...` finds every occurrence
/// of it whatever its wording, and a message catalog can describe it.
///
/// Attach one to a log call's metadata with `Logger.Metadata.event(_:_:)`:
///
///     logger.info("VF configured", metadata: .event(.vfConfigured, ["vf": "\(address)"]))
///
/// The journal handler passes the `MESSAGE_ID` key through as the field of
/// that name; on standard error it is printed like any other key.
public struct MessageID: Sendable, Hashable, CustomStringConvertible {
    /// What the event is, dotted (`vf.configured`): for people and catalogs.
    public let name: String
    /// The id journald stores: 32 lowercase hexadecimal digits.
    public let id: String

    init(_ name: String, _ id: String) {
        self.name = name
        self.id = id
    }

    public var description: String { id }

    /// The daemon is serving its API (READY=1 sent).
    public static let sriovdStarted = MessageID("sriovd.started", "959e1d22f13a494a826c32d1f4eeace2")
    /// A graceful shutdown has begun (STOPPING=1 sent).
    public static let sriovdStopping = MessageID("sriovd.stopping", "b0daa1afade64a528ebf38d53b1ec3ae")
    /// Settings were applied to a VF (MAC, VLAN, trust, ...).
    public static let vfConfigured = MessageID("vf.configured", "c3eee983a2ef4ac3ac42e0ced7ac270a")
    /// A VF's settings were put back as they were before sriovd changed them.
    public static let vfRestored = MessageID("vf.restored", "01cd1bd86dc240ad864af127bbed436e")
    /// A VF was scrubbed: no MAC or VLAN, spoof check on, trust off.
    public static let vfScrubbed = MessageID("vf.scrubbed", "4ffa305e3d8e4f6185a534d8bc8c19f1")
    /// A PF's VF count (`sriov_numvfs`) was changed.
    public static let pfNumVFs = MessageID("pf.numvfs", "c27e7c14d8424e40ad2b8adaef779278")
    /// A VF was bound to a driver (or unbound).
    public static let vfBound = MessageID("vf.bound", "bb2a91be041746b89928d4df9dd2f54d")
    /// A VF was assigned to a VM.
    public static let assignmentCreated = MessageID("assignment.created", "5b0f9d1c3e7a4f2b9c6d8e1f0a2b3c4d")
    /// An assignment's live settings were changed (VLAN, rates, ...).
    public static let assignmentChanged = MessageID("assignment.changed", "f90dd62e96164ebc8c8036ed61778370")
    /// An assignment ended and its VF went back to the pool.
    public static let assignmentReleased = MessageID("assignment.released", "8e2d4c6b0a1f4e3d9b7c5a3e1f0d2c4b")
    /// One reconcile pass finished (what it changed, what failed).
    public static let reconcilePass = MessageID("reconcile.pass", "711302d79abb4a57ba393c69616dbfcf")
    /// A PF seen before is no longer on the host (removed, or its driver unbound).
    public static let pfGone = MessageID("pf.gone", "a7aa3e1e63f443c9a8a88b7e71a396ef")
    /// A PF appeared: first seen, or back after being gone.
    public static let pfAppeared = MessageID("pf.appeared", "49bf0f1e3da0424aa26f67802585f1c4")
    /// A VM's migration changed state (incoming, preparing, prepared, completing, completed, aborted, failed).
    public static let migrationState = MessageID("migration.state", "b42356d711fe4b2b93e3aa3583630dd4")
    /// One step of a migration for one NIC finished (ok, failed, skipped), with its lever and duration.
    public static let migrationStep = MessageID("migration.step", "02d272ddedea4ae0a456e573706c9c79")

    /// A PF can no longer carry VFs (driver gone, or off the bus); its VFs are gone.
    public static let pfLost = MessageID("pf.lost", "3c1f8e0b6d2a4f7e9b5c0d4e8a1f2b6c")
    /// A lost PF is usable again.
    public static let pfBack = MessageID("pf.back", "9e4b2d7a1c0f4e6b8d3a5c7e9f1b0d2a")
    /// An assignment's VF is gone with its PF; kept, to be healed.
    public static let assignmentDegraded = MessageID("assignment.degraded", "c7d2e9f4a1b84c3e9f0a6b2d5e8c1f47")
    /// A degraded assignment was healed (VF count, settings, driver, guest restored), with timings.
    public static let assignmentHealed = MessageID("assignment.healed", "1a6f3c9e2b7d4e08a5c1f9d3b6e2a7c4")
    /// Healing an assignment gave up after its attempts.
    public static let assignmentFailed = MessageID("assignment.failed", "e5b8a2c6d9f14a3b8e7c0d2f6a9b4e1c")
    /// A VF setting was found changed behind sriovd's back (corrected or reported).
    public static let vfDrift = MessageID("vf.drift", "6d0e4a8c2f9b4d1e8a3c7f5b0e2d9a6f")

    /// Every id above, for catalogs and for the test that keeps them distinct.
    public static let all: [MessageID] = [
        .sriovdStarted, .sriovdStopping, .vfConfigured, .vfRestored, .vfScrubbed, .pfNumVFs, .vfBound,
        .assignmentCreated, .assignmentChanged, .assignmentReleased, .reconcilePass, .pfGone, .pfAppeared,
        .migrationState, .migrationStep, .pfLost, .pfBack, .assignmentDegraded, .assignmentHealed, .assignmentFailed,
        .vfDrift,
    ]
}

extension Logger.Metadata {
    /// `metadata` with the event's `MESSAGE_ID` added.
    public static func event(_ id: MessageID, _ metadata: Logger.Metadata = [:]) -> Logger.Metadata {
        var result = metadata
        result["MESSAGE_ID"] = .string(id.id)
        return result
    }
}

/// Who a hardware change is made for, carried by the task: the events the
/// controller publishes for the VF settings and driver changes made for an
/// assignment name its VM and NIC (and so do their journal records,
/// SRIOVD_VM and SRIOVD_NIC), though the controller knows nothing of
/// assignments.
public enum OperationContext {
    public struct Attribution: Sendable, Hashable {
        public var vm: String
        public var nic: String
    }

    @TaskLocal public static var current: Attribution?

    /// Runs `body` with `vm` and `nic` in every event it publishes.
    static func attributing<T: Sendable>(
        vm: String, nic: String, _ body: () async throws(ControllerError) -> T
    ) async throws(ControllerError) -> T {
        let result: Result<T, ControllerError> = await $current.withValue(Attribution(vm: vm, nic: nic)) {
            do throws(ControllerError) { return .success(try await body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Names the task's VM and NIC in `subject` unless it names a VM already.
    static func attribute(_ subject: inout EventSubject) {
        guard subject.vm == nil, subject.nic == nil, let current else { return }
        subject.vm = current.vm
        subject.nic = current.nic
    }
}
