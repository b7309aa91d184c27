import Metrics
import Synchronization

/// Times sriovd's operations with swift-metrics timers, and hands each
/// measurement back to its caller (the API's `Server-Timing` header shows
/// the same durations the timers recorded):
/// - `sriovd_operation_duration_seconds{operation, result}`: one operation
///   whole (`vf.configure`, `vf.declare`, `vf.restore`, `vf.scrub`,
///   `vf.bind`, `pf.numvfs`, `assignment.create`, `assignment.update`,
///   `assignment.release`, `reconcile.pass`), lock waits included. `result`
///   is `success`, `failure` (the host failed, or a setting did) or
///   `rejected` (bad input, nothing found, a conflict: nothing was changed).
/// - `sriovd_host_duration_seconds{operation, call}`: each call into the
///   host made for one (`call`: `netlink.read`, `netlink.write`), named by
///   the innermost operation it was made for.
///
/// Operations nest (an assignment configures and binds its VF): the host
/// time of an inner one counts in the outer ones too.
public final class OperationTimers: Sendable {
    public static let operationDuration = "sriovd_operation_duration_seconds"
    public static let hostDuration = "sriovd_host_duration_seconds"

    /// The `# HELP` text of each family, by name.
    public static let help = [
        operationDuration:
            "Time of each sriovd operation (VF change, binding, VF count, assignment, reconcile pass), by operation and result",
        hostDuration: "Time of each call into the host (netlink read or write), by the innermost operation it was made for",
    ]

    public enum Result: String, Sendable {
        case success, failure, rejected

        init(_ error: ControllerError) {
            switch error {
            case .invalid, .notFound, .conflict: self = .rejected
            case .hostFailure: self = .failure
            }
        }
    }

    private let factory: any MetricsFactory
    private let timers = Mutex<[TimerKey: Timer]>([:])

    private struct TimerKey: Hashable {
        var label: String
        var dimensions: [String]
    }

    /// Records to `factory`: by default the task's metrics factory when this
    /// is made (the global one unless `withMetricsFactory` says otherwise).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    /// Runs `body` as one `operation` and records how long it took and how
    /// it ended; `result` judges a value returned (a report whose settings
    /// failed is a `.failure`).
    func measure<T: Sendable>(
        _ operation: String, result: (T) -> Result = { _ in .success },
        _ body: () async throws(ControllerError) -> T
    ) async throws(ControllerError) -> (value: T, timing: OperationTiming) {
        let timing = OperationTiming(operation, timers: self, parent: OperationTiming.current)
        let start = ContinuousClock.now
        let outcome: Swift.Result<T, ControllerError> = await OperationTiming.$current.withValue(timing) {
            do throws(ControllerError) { return .success(try await body()) } catch { return .failure(error) }
        }
        timing.duration = ContinuousClock.now - start
        switch outcome {
        case .success(let value):
            record(Self.operationDuration, ["operation": operation, "result": result(value).rawValue], timing.duration)
            return (value, timing)
        case .failure(let error):
            record(Self.operationDuration, ["operation": operation, "result": Result(error).rawValue], timing.duration)
            throw error
        }
    }

    /// `measure` for an operation that cannot throw.
    func measureInfallible<T: Sendable>(
        _ operation: String, result: (T) -> Result = { _ in .success }, _ body: () async -> T
    ) async -> (value: T, timing: OperationTiming) {
        let measured: (value: T, timing: OperationTiming)? = try? await measure(operation, result: result) {
            () throws(ControllerError) -> T in await body()
        }
        return measured!  // body cannot throw
    }

    fileprivate func record(_ label: String, _ dimensions: KeyValuePairs<String, String>, _ duration: Duration) {
        let pairs = dimensions.map { ($0.key, $0.value) }
        let key = TimerKey(label: label, dimensions: pairs.flatMap { [$0.0, $0.1] })
        let timer = timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = Timer(label: label, dimensions: pairs, factory: factory)
            timers[key] = timer
            return timer
        }
        let (seconds, attoseconds) = duration.components
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// One run of one operation: how long it took and how much of that was
/// spent in the host.
public final class OperationTiming: Sendable {
    /// The operation the task is running, for the host calls made in it.
    @TaskLocal static var current: OperationTiming?

    public let operation: String
    private let timers: OperationTimers
    private let parent: OperationTiming?
    private let measured = Mutex<(duration: Duration, host: Duration)>((.zero, .zero))

    fileprivate init(_ operation: String, timers: OperationTimers, parent: OperationTiming?) {
        self.operation = operation
        self.timers = timers
        self.parent = parent
    }

    /// The whole operation (set when it ends).
    public internal(set) var duration: Duration {
        get { measured.withLock { $0.duration } }
        set { measured.withLock { $0.duration = newValue } }
    }

    /// Time spent in host calls, nested operations' included.
    public var hostTime: Duration { measured.withLock { $0.host } }

    /// Times one call into the host (`netlink.read`, `netlink.write`) for
    /// the operation the task is running, if any.
    static func host<T>(_ call: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer {
            if let current {
                let elapsed = ContinuousClock.now - start
                current.timers.record(OperationTimers.hostDuration, ["operation": current.operation, "call": call], elapsed)
                var timing: OperationTiming? = current
                while let t = timing {
                    t.measured.withLock { $0.host += elapsed }
                    timing = t.parent
                }
            }
        }
        return try await body()
    }
}

extension Duration {
    /// In milliseconds, with the fraction (timelines, heal reports, Server-Timing).
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
