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
    private let mailbox: Mailbox
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var nextID = 0
    /// Events received while waiting for answers, oldest first, until taken.
    private var pendingEvents: [QMPEvent] = []
    public private(set) var qemuVersion = ""

    private init(socket: String, mailbox: Mailbox, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.socket = socket
        self.mailbox = mailbox
        self.outbound = outbound
    }

    /// Connects to the monitor at `socket`, negotiates capabilities and runs
    /// `body` with the session; the connection is closed when it returns.
    @discardableResult
    public static func with<T: Sendable>(
        socket: String, timeout: Duration = .seconds(5), _ body: (QMPConnection) async throws -> T
    ) async throws -> T {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: socket) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder()))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw QMPConnectionError.cannotConnect(socket: socket, reason: Self.reason(error))
        }
        return try await channel.executeThenClose { inbound, outbound in
            let mailbox = Mailbox()
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        for try await line in inbound {
                            await mailbox.deliver(Result { try QMPMessage.parse(Data(line.readableBytesView)) })
                        }
                    } catch {}
                    await mailbox.close()
                }
                defer { group.cancelAll() }
                let connection = QMPConnection(socket: socket, mailbox: mailbox, outbound: outbound)
                try await connection.handshake(timeout: timeout)
                return try await body(connection)
            }
        }
    }

    private static func reason(_ error: any Error) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case ENOENT: return "no such socket"
            case ECONNREFUSED: return "connection refused"
            case EACCES: return "permission denied"
            default: return "\(io)"
            }
        }
        return "\(error)"
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
        switch await mailbox.receive(timeout: timeout) {
        case .message(let result): return try result.get()
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
        var bytes = try JSONEncoder().encode(JSONValue.object(message))
        bytes.append(UInt8(ascii: "\n"))
        try await outbound.write(ByteBuffer(bytes: bytes))
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

/// Splits the monitor's byte stream into lines (QEMU ends each JSON message
/// with CR LF); blank lines are dropped.
struct LineFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return .needMoreData }
        let length = newline - buffer.readerIndex
        var line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == UInt8(ascii: "\r") { line = line.getSlice(at: line.readerIndex, length: line.readableBytes - 1)! }
        if line.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(line)) }
        return .continue
    }
}

/// Messages read by the connection's reader task, handed to the one task
/// using the session, with a timeout on each wait.
private actor Mailbox {
    enum Received {
        case message(Result<QMPMessage, any Error>)
        case timedOut
        case closed
    }

    private var queue: [Result<QMPMessage, any Error>] = []
    private var isClosed = false
    private var waiter: (token: Int, continuation: CheckedContinuation<Received, Never>)?
    private var tokens = 0

    func deliver(_ message: Result<QMPMessage, any Error>) {
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: .message(message))
        } else {
            queue.append(message)
        }
    }

    func close() {
        isClosed = true
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: .closed)
        }
    }

    func receive(timeout: Duration) async -> Received {
        if !queue.isEmpty { return .message(queue.removeFirst()) }
        if isClosed { return .closed }
        tokens += 1
        let token = tokens
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.expire(token)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            waiter = (token, continuation)
        }
    }

    private func expire(_ token: Int) {
        guard let waiter, waiter.token == token else { return }
        self.waiter = nil
        waiter.continuation.resume(returning: .timedOut)
    }
}
