import Glibc
import SRIOVCore
import Synchronization

/// What the kernel announced. An event is a hint: whoever receives it reads
/// the PF it concerns again (the kernel's link notifications carry no VF
/// settings, and sriovd's own writes cause them too).
public enum KernelEvent: Sendable, Hashable {
    /// RTM_NEWLINK or RTM_DELLINK on RTNLGRP_LINK.
    case link(LinkEvent)
    /// A kernel uevent of a PCI device (add, remove, bind, unbind, change).
    case device(DeviceEvent)
    /// The kernel dropped events (ENOBUFS), or they could not be passed on:
    /// everything watched must be read again.
    case overrun(source: String)
}

/// A network link added, changed or removed.
public struct LinkEvent: Sendable, Hashable {
    public var ifindex: Int32
    public var name: String
    public var removed: Bool
    /// The device under the link (IFLA_PARENT_DEV_NAME): a PCI address for
    /// a PF's or VF's netdev; nil for virtual links.
    public var parentDevice: String?
    public var adminUp: Bool

    public init(ifindex: Int32, name: String, removed: Bool, parentDevice: String?, adminUp: Bool) {
        self.ifindex = ifindex
        self.name = name
        self.removed = removed
        self.parentDevice = parentDevice
        self.adminUp = adminUp
    }

    /// The parent device when it is a PCI function.
    public var pci: PCIAddress? { parentDevice.flatMap { try? PCIAddress.parse($0, field: "parent") } }

    /// The link messages of one RTNLGRP_LINK datagram.
    static func parse(datagram: [UInt8]) throws(NetlinkParseError) -> [LinkEvent] {
        var events: [LinkEvent] = []
        for message in try NetlinkMessage.split(datagram: datagram) {
            guard message.type == NetlinkABI.rtmNewLink || message.type == NetlinkABI.rtmDelLink else { continue }
            let link = try LinkInfo(newLinkPayload: message.payload)
            events.append(
                LinkEvent(
                    ifindex: link.ifindex, name: link.name, removed: message.type == NetlinkABI.rtmDelLink,
                    parentDevice: link.parentDevice, adminUp: link.isAdminUp))
        }
        return events
    }
}

/// One kernel uevent: `ACTION@DEVPATH`, then `KEY=VALUE` strings.
public struct DeviceEvent: Sendable, Hashable {
    /// `add`, `remove`, `bind`, `unbind`, `change`, `move`, `online`, `offline`.
    public var action: String
    public var devpath: String
    public var subsystem: String?
    /// The driver (bind, and events of a bound device).
    public var driver: String?
    /// PCI_SLOT_NAME: the device's PCI address (PCI events only).
    public var slot: PCIAddress?

    public init(action: String, devpath: String, subsystem: String?, driver: String? = nil, slot: PCIAddress? = nil) {
        self.action = action
        self.devpath = devpath
        self.subsystem = subsystem
        self.driver = driver
        self.slot = slot
    }

    /// Parses a kernel uevent datagram; nil for anything else (udev's
    /// re-broadcasts start with "libudev", and malformed text is ignored).
    public static func parse(_ bytes: [UInt8]) -> DeviceEvent? {
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
        guard let head = fields.first, let at = head.firstIndex(of: "@") else { return nil }
        var values: [String: String] = [:]
        for field in fields.dropFirst() {
            guard let eq = field.firstIndex(of: "=") else { continue }
            values[String(field[..<eq])] = String(field[field.index(after: eq)...])
        }
        let action = values["ACTION"] ?? String(head[..<at])
        let devpath = values["DEVPATH"] ?? String(head[head.index(after: at)...])
        guard !action.isEmpty, devpath.hasPrefix("/") else { return nil }
        return DeviceEvent(
            action: action, devpath: devpath, subsystem: values["SUBSYSTEM"], driver: values["DRIVER"],
            slot: values["PCI_SLOT_NAME"].flatMap { try? PCIAddress.parse($0, field: "PCI_SLOT_NAME") })
    }
}

/// Where kernel events come from: the kernel's two netlink families in the
/// daemon, a stream in tests.
public protocol KernelEventSource: Sendable {
    /// Events as they arrive, until the consumer stops iterating. Throws
    /// when the kernel cannot be listened to (the caller falls back to its
    /// periodic reads).
    func events() throws -> AsyncStream<KernelEvent>
}

/// Listens to RTNLGRP_LINK (NETLINK_ROUTE) and to the kernel's uevents
/// (NETLINK_KOBJECT_UEVENT, group 1), each socket read by a thread of its
/// own that blocks in recv(2) (with a one-second timeout, so it notices when
/// it is no longer wanted). ENOBUFS, the kernel's "you missed events", and a
/// consumer too slow for the buffer, both become one `.overrun`.
public final class KernelEventMonitor: KernelEventSource {
    /// Events buffered for a slow consumer before `.overrun` replaces them.
    let bufferLimit: Int

    public init(bufferLimit: Int = 4096) {
        self.bufferLimit = bufferLimit
    }

    public func events() throws -> AsyncStream<KernelEvent> {
        let link = try EventSocket(protocol: NetlinkABI.netlinkRoute, groups: NetlinkABI.rtmgrpLink, name: "rtnetlink")
        let uevent: EventSocket
        do {
            uevent = try EventSocket(
                protocol: NetlinkABI.netlinkKobjectUevent, groups: NetlinkABI.ueventKernelGroup, name: "uevent")
        } catch {
            link.close()
            throw error
        }
        let (stream, continuation) = AsyncStream.makeStream(
            of: KernelEvent.self, bufferingPolicy: .bufferingNewest(bufferLimit))
        let state = MonitorState(continuation: continuation)
        continuation.onTermination = { _ in state.stop() }
        EventThread.start {
            link.readLoop(state: state) { datagram in
                (try? LinkEvent.parse(datagram: datagram))?.map(KernelEvent.link) ?? []
            }
        }
        EventThread.start {
            uevent.readLoop(state: state) { datagram in
                guard let event = DeviceEvent.parse(datagram), event.subsystem == "pci" else { return [] }
                return [.device(event)]
            }
        }
        return stream
    }
}

/// Shared by a monitor's threads: the consumer, and whether it still wants events.
final class MonitorState: Sendable {
    private let continuation: AsyncStream<KernelEvent>.Continuation
    private let stopped = Atomic<Bool>(false)
    /// An event was dropped for want of buffer: the next delivery starts with `.overrun`.
    private let lost = Atomic<Bool>(false)

    init(continuation: AsyncStream<KernelEvent>.Continuation) {
        self.continuation = continuation
    }

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    func stop() { stopped.store(true, ordering: .releasing) }

    func deliver(_ event: KernelEvent) {
        if lost.exchange(false, ordering: .acquiringAndReleasing) {
            deliverOnce(.overrun(source: "sriovd's event buffer"))
        }
        deliverOnce(event)
    }

    private func deliverOnce(_ event: KernelEvent) {
        switch continuation.yield(event) {
        case .dropped: lost.store(true, ordering: .releasing)
        case .terminated: stop()
        case .enqueued: break
        @unknown default: break
        }
    }
}

/// One netlink socket joined to a multicast group, read by one thread.
final class EventSocket: @unchecked Sendable {
    private let descriptor: Int32
    let name: String

    init(protocol family: Int32, groups: UInt32, name: String) throws(NetlinkError) {
        let descriptor = try SocketCalls.openNetlinkSocket(protocol: family)
        do {
            // A burst (a PF's VFs appearing at once) must not overrun the queue.
            try SocketCalls.setReceiveQueue(descriptor, bytes: 4 * 1024 * 1024)
            try SocketCalls.setReceiveTimeout(descriptor, .seconds(1))
            try SocketCalls.bindToKernelAssignedPort(descriptor, groups: groups)
        } catch {
            SocketCalls.close(descriptor)
            throw error
        }
        self.descriptor = descriptor
        self.name = name
    }

    func close() { SocketCalls.close(descriptor) }

    /// Reads until the monitor stops, then closes the socket.
    func readLoop(state: MonitorState, parse: ([UInt8]) -> [KernelEvent]) {
        var reader = NetlinkDatagramReader(initialCapacity: 64 * 1024)
        defer { close() }
        while !state.isStopped {
            let descriptor = descriptor
            do {
                let datagram = try reader.read { buffer, flags throws(NetlinkError) in
                    try SocketCalls.receive(descriptor, into: buffer, flags: flags)
                }
                for event in parse(datagram) { state.deliver(event) }
            } catch .system(call: _, errno: EAGAIN) {
                continue
            } catch .system(call: _, errno: ENOBUFS) {
                state.deliver(.overrun(source: name))
            } catch {
                // Anything else is unexpected on a multicast socket: say so
                // once as an overrun (a full read), and pause before going on.
                state.deliver(.overrun(source: "\(name): \(error)"))
                usleep(200_000)
            }
        }
    }
}

/// A detached POSIX thread running one closure.
enum EventThread {
    final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func start(_ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        if created == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<Box>.fromOpaque(box).release()
        }
    }
}
