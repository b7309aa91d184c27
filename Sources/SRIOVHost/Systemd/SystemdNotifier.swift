#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd

/// Tells the service manager about the daemon's state (`sd_notify`). Every
/// call is a no-op, reported as `.notSupervised`, when `NOTIFY_SOCKET` is
/// unset, so the daemon can call these unconditionally.
public struct SystemdNotifier: Sendable {
    public enum Outcome: Sendable, Hashable {
        case sent
        /// No `NOTIFY_SOCKET`: not started by systemd (or not `Type=notify`).
        case notSupervised
        /// `sd_notify` failed with this errno.
        case failed(errno: Int32)
    }

    public init() {}

    /// `NOTIFY_SOCKET` is set: a service manager is listening.
    public var isSupervised: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// The service manager's watchdog timeout (`WatchdogSec=`), nil when the
    /// watchdog is off or meant for another process (`WATCHDOG_PID`). Ping
    /// with `watchdog()` well within it, for example at half.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// READY=1, with a STATUS= line when `status` is given.
    @discardableResult
    public func ready(status: String? = nil) -> Outcome {
        var assignments = ["READY=1"]
        if let status { assignments.append("STATUS=" + Self.oneLine(status)) }
        return send(assignments)
    }

    /// STATUS=: a one-line, human-readable state, shown by `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> Outcome {
        send(["STATUS=" + Self.oneLine(text)])
    }

    /// STOPPING=1: shutdown has begun.
    @discardableResult
    public func stopping() -> Outcome {
        send(["STOPPING=1"])
    }

    /// RELOADING=1 with MONOTONIC_USEC= (which `Type=notify-reload`, systemd
    /// 253+, requires). Send `ready()` once the reload is done.
    @discardableResult
    public func reloading() -> Outcome {
        send(["RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())"])
    }

    /// WATCHDOG=1: the daemon is alive.
    @discardableResult
    public func watchdog() -> Outcome {
        send(["WATCHDOG=1"])
    }

    /// Sends `assignments` (each `NAME=value`) in one datagram.
    @discardableResult
    public func send(_ assignments: [String]) -> Outcome {
        let result = sd_notify(0, assignments.joined(separator: "\n"))
        if result > 0 { return .sent }
        if result == 0 { return .notSupervised }
        return .failed(errno: -result)
    }

    /// The notify protocol separates assignments with newlines.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}
