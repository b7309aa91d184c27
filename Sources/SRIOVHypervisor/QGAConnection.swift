import Foundation
import SRIOVCore

/// Why talking to a QEMU guest agent (qemu-ga) failed, in words that say
/// what to check.
public enum QGAError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No socket there, or nobody listening (QEMU not running, wrong path).
    case cannotConnect(socket: String, reason: String)
    /// The agent did not answer `guest-sync-delimited`: it is not running
    /// in the guest, or the socket is not its virtio-serial port.
    case notAnswering(socket: String, timeout: Duration)
    /// The agent did not answer a command in time.
    case noAnswer(command: String, timeout: Duration)
    /// The connection closed (QEMU exited, or another client took the port).
    case closed(socket: String)
    /// The agent refused a command (its own error class and words).
    case refused(command: String, errorClass: String, reason: String)
    case protocolError(String)

    public var description: String {
        switch self {
        case .cannotConnect(let socket, let reason):
            "cannot connect to the guest agent's socket \(socket): \(reason) (is the VM running, and is this the -chardev socket of its virtserialport org.qemu.guest_agent.0?)"
        case .notAnswering(let socket, let timeout):
            "the guest agent at \(socket) did not answer guest-sync-delimited within \(timeout): is qemu-ga running in the guest, and is no other client (libvirt) connected to the socket?"
        case .noAnswer(let command, let timeout):
            "the guest agent did not answer \(command) within \(timeout)"
        case .closed(let socket):
            "the guest agent's socket \(socket) closed (has the VM exited?)"
        case .refused(let command, _, let reason):
            "the guest agent refused \(command): \(reason)"
        case .protocolError(let text):
            text
        }
    }
}

/// One session with a QEMU guest agent over its Unix socket (QEMU's end of
/// the guest's virtio-serial port): resynchronised first, as the protocol
/// asks of every new client (a byte 0xFF resets the agent's parser,
/// `guest-sync-delimited` marks where the answers to this connection begin),
/// then commands, answered in order. The agent serves one client at a time:
/// a session is opened for one piece of work and closed after it.
public final class QGAConnection {
    public let socket: String
    private let channel: QMPLineChannel

    private init(socket: String, channel: QMPLineChannel) {
        self.socket = socket
        self.channel = channel
    }

    /// Connects to the agent at `socket`, resynchronises and runs `body`
    /// with the session; the connection is closed when it returns.
    @discardableResult
    public static func with<T: Sendable>(
        socket: String, timeout: Duration = .seconds(5), _ body: (QGAConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await QMPLineChannel.with(socket: socket) { channel in
                let connection = QGAConnection(socket: socket, channel: channel)
                try await connection.synchronise(timeout: timeout)
                return try await body(connection)
            }
        } catch let failure as QMPLineChannel.ConnectFailure {
            throw QGAError.cannotConnect(socket: socket, reason: failure.reason)
        }
    }

    /// Answers left in the channel by an earlier client (one that timed out
    /// or died) come before the delimiter 0xFF and are dropped with it.
    private func synchronise(timeout: Duration) async throws {
        let token = Int64.random(in: 1...Int64(Int32.max))
        try await channel.send([0xFF])
        try await channel.send(["execute": .string("guest-sync-delimited"), "arguments": .object(["id": .integer(token)])])
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - .now
            guard left > .zero, let line = try await receive(timeout: left) else {
                throw QGAError.notAnswering(socket: socket, timeout: timeout)
            }
            guard let start = line.lastIndex(of: 0xFF) else { continue }
            let answer = try? JSONDecoder().decode(JSONValue.self, from: line[line.index(after: start)...])
            if answer?["return"]?.intValue == token { return }
        }
    }

    private func receive(timeout: Duration) async throws -> Data? {
        switch await channel.mailbox.receive(timeout: timeout) {
        case .line(let line): return line
        case .timedOut: return nil
        case .closed: throw QGAError.closed(socket: socket)
        }
    }

    /// Runs `command` and returns its answer. After the resynchronisation
    /// the agent answers in order, one answer per command.
    @discardableResult
    public func execute(
        _ command: String, arguments: [String: JSONValue]? = nil, timeout: Duration = .seconds(5)
    ) async throws -> JSONValue {
        var message: [String: JSONValue] = ["execute": .string(command)]
        if let arguments { message["arguments"] = .object(arguments) }
        try await channel.send(message)
        guard let line = try await receive(timeout: timeout) else {
            throw QGAError.noAnswer(command: command, timeout: timeout)
        }
        switch try QMPMessage.parse(line) {
        case .success(_, let value): return value
        case .failure(_, let detail):
            throw QGAError.refused(command: command, errorClass: detail.errorClass, reason: detail.description)
        default:
            throw QGAError.protocolError("the guest agent answered \(command) with something that is not an answer: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
    }

    // MARK: Files

    /// The text of the guest's file at `path` (sysfs attributes: short).
    public func readFile(_ path: String, limit: Int = 65536) async throws -> String {
        let handle = try await open(path, mode: "r")
        do {
            var bytes = Data()
            while bytes.count < limit {
                let chunk = try await execute("guest-file-read", arguments: ["handle": .integer(handle), "count": .integer(4096)])
                if let text = chunk["buf-b64"]?.stringValue, let data = Data(base64Encoded: text) { bytes.append(data) }
                if chunk["eof"]?.boolValue != false || (chunk["count"]?.intValue ?? 0) == 0 { break }
            }
            try await execute("guest-file-close", arguments: ["handle": .integer(handle)])
            return String(decoding: bytes, as: UTF8.self)
        } catch {
            throw await closing(handle, after: error)
        }
    }

    /// Writes `text` to the guest's file at `path` in one write, flushed
    /// before the handle is closed, so a refusal (a sysfs attribute's
    /// EINVAL) is the flush's error, not lost at close.
    public func writeFile(_ path: String, _ text: String) async throws {
        let handle = try await open(path, mode: "w")
        do {
            try await execute(
                "guest-file-write", arguments: ["handle": .integer(handle), "buf-b64": .string(Data(text.utf8).base64EncodedString())])
            try await execute("guest-file-flush", arguments: ["handle": .integer(handle)])
            try await execute("guest-file-close", arguments: ["handle": .integer(handle)])
        } catch {
            throw await closing(handle, after: error)
        }
    }

    /// Closes `handle` after `error`; the error to report: `error`, with
    /// the close's own failure when that failed too (the handle stays open
    /// in the agent until it restarts).
    private func closing(_ handle: Int64, after error: any Error) async -> any Error {
        if case QGAError.closed = error { return error }
        do {
            try await execute("guest-file-close", arguments: ["handle": .integer(handle)])
            return error
        } catch let closeError {
            return QGAError.protocolError("\(error); closing the agent's file handle \(handle) failed too: \(closeError)")
        }
    }

    private func open(_ path: String, mode: String) async throws -> Int64 {
        let answer = try await execute("guest-file-open", arguments: ["path": .string(path), "mode": .string(mode)])
        guard let handle = answer.intValue else {
            throw QGAError.protocolError("guest-file-open of \(path) answered no handle")
        }
        return handle
    }

    // MARK: Interfaces

    /// A network interface as the guest names it, with its current MAC.
    public struct Interface: Sendable, Equatable {
        public var name: String
        public var mac: String?
    }

    /// The guest's network interfaces (`guest-network-get-interfaces`).
    public func interfaces() async throws -> [Interface] {
        let answer = try await execute("guest-network-get-interfaces")
        return (answer.arrayValue ?? []).compactMap { item in
            guard let name = item["name"]?.stringValue else { return nil }
            return Interface(name: name, mac: item["hardware-address"]?.stringValue?.lowercased())
        }
    }
}
