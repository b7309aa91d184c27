import Foundation
import NIOCore
import NIOPosix
import SRIOVCore

/// Why talking to QEMU's monitor failed (not a refusal of a command: that is
/// `QMPCommandError`).
public enum QMPConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No socket there, or nobody listening (QEMU not running, wrong path).
    case cannotConnect(socket: String, reason: String)
    /// No greeting in time: not a QMP socket, or another client holds it
    /// (a QMP chardev serves one client at a time).
    case noGreeting(socket: String, timeout: Duration)
    /// QEMU did not answer a command in time.
    case noAnswer(command: String, timeout: Duration)
    /// The monitor closed the connection (QEMU exited or crashed).
    case closed(socket: String)
    case protocolError(String)

    public var description: String {
        switch self {
        case .cannotConnect(let socket, let reason):
            "cannot connect to QEMU's monitor at \(socket): \(reason) (is the VM running, and is this its -qmp socket?)"
        case .noGreeting(let socket, let timeout):
            "no QMP greeting from \(socket) within \(timeout): is it a -qmp socket, and is no other client (libvirt) connected to it?"
        case .noAnswer(let command, let timeout):
            "QEMU did not answer \(command) within \(timeout)"
        case .closed(let socket):
            "QEMU closed its monitor at \(socket) (has the VM exited?)"
        case .protocolError(let text):
            text
        }
    }
}

/// One session with QEMU's monitor over its Unix socket: the greeting and
/// `qmp_capabilities`, then commands, each answered in order, with events
/// arriving between the answers. A session is opened for one piece of work
/// and closed after it (`QMPConnection.with`): QEMU serves one QMP client per
/// socket, so sriovd does not keep it from the operator's own tools.
public final class QMPConnection {
    public let socket: String
    private let channel: QMPLineChannel
    private var nextID = 0
    /// Events received while waiting for answers, oldest first, until taken.
    private var pendingEvents: [QMPEvent] = []
    public private(set) var qemuVersion = ""

    private init(socket: String, channel: QMPLineChannel) {
        self.socket = socket
        self.channel = channel
    }

    /// Connects to the monitor at `socket`, negotiates capabilities and runs
    /// `body` with the session; the connection is closed when it returns.
    @discardableResult
    public static func with<T: Sendable>(
        socket: String, timeout: Duration = .seconds(5), _ body: (QMPConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await QMPLineChannel.with(socket: socket) { channel in
                let connection = QMPConnection(socket: socket, channel: channel)
                try await connection.handshake(timeout: timeout)
                return try await body(connection)
            }
        } catch let failure as QMPLineChannel.ConnectFailure {
            throw QMPConnectionError.cannotConnect(socket: socket, reason: failure.reason)
        }
    }

    private func handshake(timeout: Duration) async throws {
        guard let first = try await receive(timeout: timeout) else {
            throw QMPConnectionError.noGreeting(socket: socket, timeout: timeout)
        }
        guard case .greeting(let version) = first else {
            throw QMPConnectionError.protocolError("the monitor at \(socket) did not start with a QMP greeting")
        }
        qemuVersion = version
        _ = try await execute("qmp_capabilities", timeout: timeout)
    }

    private func receive(timeout: Duration) async throws -> QMPMessage? {
        switch await channel.mailbox.receive(timeout: timeout) {
        case .line(let line): return try QMPMessage.parse(line)
        case .timedOut: return nil
        case .closed: throw QMPConnectionError.closed(socket: socket)
        }
    }

    /// Runs `command` and returns its answer; events arriving meanwhile are
    /// kept for `takeEvents`/`waitForEvent`.
    @discardableResult
    public func execute(
        _ command: String, arguments: [String: JSONValue]? = nil, timeout: Duration = .seconds(10)
    ) async throws -> JSONValue {
        nextID += 1
        let id = "sriovd-\(nextID)"
        var message: [String: JSONValue] = ["execute": .string(command), "id": .string(id)]
        if let arguments { message["arguments"] = .object(arguments) }
        try await channel.send(message)
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - .now
            guard left > .zero, let reply = try await receive(timeout: left) else {
                throw QMPConnectionError.noAnswer(command: command, timeout: timeout)
            }
            switch reply {
            case .event(let event): pendingEvents.append(event)
            case .success(let replyID, let value) where replyID == id: return value
            case .failure(let replyID, let detail) where replyID == id:
                throw QMPCommandError(command: command, detail: detail)
            default: continue  // a late answer to an earlier command that timed out
            }
        }
    }

    /// The events received so far and not yet taken, oldest first.
    public func takeEvents() -> [QMPEvent] {
        defer { pendingEvents.removeAll() }
        return pendingEvents
    }

    /// Waits until an event that `matches` arrives (or has arrived, unseen,
    /// since the last command), or until `timeout`; nil on timeout. Events
    /// that do not match stay pending.
    public func waitForEvent(
        timeout: Duration, where matches: (QMPEvent) -> Bool
    ) async throws -> QMPEvent? {
        if let index = pendingEvents.firstIndex(where: matches) { return pendingEvents.remove(at: index) }
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - .now
            guard left > .zero, let message = try await receive(timeout: left) else { return nil }
            if case .event(let event) = message {
                if matches(event) { return event }
                pendingEvents.append(event)
            }
        }
    }
}
