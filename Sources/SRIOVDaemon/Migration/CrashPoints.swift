import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a test stops an operation, to prove that a restart repairs what it
/// left. Every journaled step of assign, release and the migration
/// operations calls `hit(_:)` once the step is done, with its point's name:
/// `assign.reserved`, `assign.programmed`, `assign.bound`,
/// `assign.attached`, `release.begun`, `release.unbound`,
/// `release.restored`, and `migration.<operation>.<step>` for each step of a
/// migration's timeline (`migration.incoming.reserve`,
/// `migration.complete.mac`, `migration.abort.release`,
/// `migration.rollback.detach`, ...), and `migration.complete.mac.set`
/// inside the `mac` step of a host-driver VF (its MAC set, its driver not
/// re-probed yet).
///
/// What happens at a point is this value's choice:
/// - `none`: nothing (what the daemon does unless a test asks);
/// - `fromEnvironment(testFlag:)`: the process sends itself SIGKILL at the
///   point `SRIOVD_TEST_CRASH_POINT` names (the VM suites kill the daemon so),
///   only when sriovd was started with the test flag
///   (`--test-crash-points`); the variable without the flag is refused at
///   start, so that a stray variable never kills a production daemon;
/// - `halting(at:reached:)`: the operation stops at the point and never goes
///   on, as a killed process would leave it; a test then builds a fresh
///   service on the same state folder and host and runs `recover()`;
/// - any closure (a simulation's scheduler, a recorder of the points passed).
public struct CrashPoints: Sendable {
    private let body: (@Sendable (String) async -> Void)?

    /// Calls `body` with each point's name as the operation passes it; the
    /// operation goes on when `body` returns.
    public init(_ body: @escaping @Sendable (_ point: String) async -> Void) {
        self.body = body
    }

    private init() { body = nil }

    /// No crash points.
    public static let none = CrashPoints()

    /// `SRIOVD_TEST_CRASH_POINT` set without the test flag.
    public struct Refusal: Error, CustomStringConvertible {
        public var point: String
        public var description: String {
            "SRIOVD_TEST_CRASH_POINT=\(point) is set, but sriovd was not started with --test-crash-points: "
                + "it would kill itself at that point; unset the variable (it is for the test suites only)"
        }
    }

    /// SIGKILL at the point `SRIOVD_TEST_CRASH_POINT` names (no handler and
    /// no cleanup run) when `testFlag` is set; `none` when the variable is
    /// unset or empty; refused when it is set without the flag.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment, testFlag: Bool
    ) throws(Refusal) -> CrashPoints {
        guard let armed = environment["SRIOVD_TEST_CRASH_POINT"], !armed.isEmpty else { return .none }
        guard testFlag else { throw Refusal(point: armed) }
        return CrashPoints { point in
            guard point == armed else { return }
            kill(getpid(), SIGKILL)
            _exit(137)  // not reached: SIGKILL cannot be caught or blocked
        }
    }

    /// Stops the operation for good at `point` (its task stays suspended and
    /// does nothing more, like a killed process), after calling `reached`.
    public static func halting(at point: String, reached: @escaping @Sendable () -> Void) -> CrashPoints {
        CrashPoints { passed in
            guard passed == point else { return }
            reached()
            await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
        }
    }

    /// The operation passes `point`.
    public func hit(_ point: String) async {
        if let body { await body(point) }
    }
}
