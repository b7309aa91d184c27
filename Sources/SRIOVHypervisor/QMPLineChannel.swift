import Foundation
import NIOCore
import NIOPosix
import SRIOVCore

/// A session of newline-delimited JSON messages over a Unix socket, as
/// QEMU's monitor (QMP) and its guest agent (QGA) both speak it: a reader
/// task hands each line to the one task using the session, which waits for
/// it with a timeout. Each protocol parses the lines itself.
struct QMPLineChannel {
    let mailbox: LineMailbox
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    /// Why the socket could not be reached, in words (no such socket,
    /// connection refused, permission denied).
    struct ConnectFailure: Error {
        var reason: String
    }

    /// Connects to `socket` and runs `body` with the session; the connection
    /// is closed when it returns.
    static func with<T: Sendable>(socket: String, _ body: (QMPLineChannel) async throws -> T) async throws -> T {
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
            throw ConnectFailure(reason: reason(error))
        }
        return try await channel.executeThenClose { inbound, outbound in
            let mailbox = LineMailbox()
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        for try await line in inbound { await mailbox.deliver(Data(line.readableBytesView)) }
                    } catch {}
                    await mailbox.close()
                }
                defer { group.cancelAll() }
                return try await body(QMPLineChannel(mailbox: mailbox, outbound: outbound))
            }
        }
    }

    /// Writes `bytes` as they are.
    func send(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Writes one command as a JSON line.
    func send(_ message: [String: JSONValue]) async throws {
        var bytes = try JSONEncoder().encode(JSONValue.object(message))
        bytes.append(UInt8(ascii: "\n"))
        try await outbound.write(ByteBuffer(bytes: bytes))
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
}

/// Splits a byte stream into lines (QEMU ends each JSON message with LF or
/// CR LF); blank lines are dropped.
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

/// Lines read by a session's reader task, handed to the one task using the
/// session, with a timeout on each wait.
actor LineMailbox {
    enum Received {
        case line(Data)
        case timedOut
        case closed
    }

    private var queue: [Data] = []
    private var isClosed = false
    private var waiter: (token: Int, continuation: CheckedContinuation<Received, Never>)?
    private var tokens = 0

    func deliver(_ line: Data) {
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: .line(line))
        } else {
            queue.append(line)
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
        if !queue.isEmpty { return .line(queue.removeFirst()) }
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
