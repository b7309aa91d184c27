/// How sriovd reaches the guest that holds a VM NIC's VF, and which NIC is
/// its standby (the paravirtual NIC the guest's bond falls back to). Given
/// as the `failover` object of an assignment; JSON:
///
/// - `{"adapter":"netns","namespace":NS,"bond":IFNAME,"standby":IFNAME}`
/// - `{"adapter":"qmp","socket":PATH,"device":ID,"bus":BUS,"standby":ID}`,
///   optionally with `"agent":PATH,"bond":IFNAME` (the guest agent's socket
///   and the guest's bond it steers)
/// - `{"adapter":"hook","command":PATH}`
///
/// Decoding refuses unknown members and checks every name, so a stored spec
/// is always usable.
public enum FailoverSpec: Hashable, Sendable, Codable, CustomStringConvertible {
    /// A network namespace holding an active-backup bond (container guests, tests).
    case netns(namespace: String, bond: String, standby: String)
    /// A QEMU guest reached through its QMP socket, and, when `agent` is
    /// given, through its guest agent (qemu-ga) socket, which steers the
    /// guest's bond `bond` (both or neither).
    case qmp(socket: String, device: String, bus: String, standby: String, agent: String? = nil, bond: String? = nil)
    /// Any other hypervisor: an executable that takes one JSON request.
    case hook(command: String)

    public var adapter: String {
        switch self {
        case .netns: "netns"
        case .qmp: "qmp"
        case .hook: "hook"
        }
    }

    public var description: String {
        switch self {
        case .netns(let ns, let bond, let standby): "netns \(ns) (bond \(bond), standby \(standby))"
        case .qmp(let socket, let device, _, let standby, let agent, let bond):
            "qmp \(socket) (device \(device), standby \(standby)\(agent.map { ", agent \($0), bond \(bond ?? "?")" } ?? ""))"
        case .hook(let command): "hook \(command)"
        }
    }

    /// The members each adapter takes.
    public static let members: [String: [String]] = [
        "netns": ["namespace", "bond", "standby"],
        "qmp": ["socket", "device", "bus", "standby", "agent", "bond"],
        "hook": ["command"],
    ]

    /// Builds a spec from its members, checking each; refusals name
    /// `field`.member (e.g. `failover.bond`).
    public static func parse(_ object: [String: String], field: String) throws(ValidationError) -> FailoverSpec {
        guard let adapter = object["adapter"] else {
            throw ValidationError(field: "\(field).adapter", value: "", reason: "is required: \"netns\", \"qmp\" or \"hook\"")
        }
        guard let allowed = members[adapter] else {
            throw ValidationError(field: "\(field).adapter", value: adapter, reason: "is not an adapter; use \"netns\", \"qmp\" or \"hook\"")
        }
        for key in object.keys.sorted() where key != "adapter" && !allowed.contains(key) {
            throw ValidationError(
                field: "\(field).\(key)", value: "",
                reason: "is not a member of a \(adapter) failover; it takes \(allowed.joined(separator: ", "))")
        }
        func member(_ name: String) throws(ValidationError) -> String {
            guard let value = object[name] else {
                throw ValidationError(field: "\(field).\(name)", value: "", reason: "is required for the \(adapter) adapter")
            }
            return value
        }
        switch adapter {
        case "netns":
            return .netns(
                namespace: try checkedNamespace(try member("namespace"), field: "\(field).namespace"),
                bond: try checkedInterface(try member("bond"), field: "\(field).bond"),
                standby: try checkedInterface(try member("standby"), field: "\(field).standby"))
        case "qmp":
            let socket = try checkedPath(try member("socket"), field: "\(field).socket")
            let device = try checkedQEMUID(try member("device"), field: "\(field).device")
            let bus = try checkedQEMUID(try member("bus"), field: "\(field).bus")
            let standby = try checkedQEMUID(try member("standby"), field: "\(field).standby")
            // The bond is reached only through the agent, and the agent
            // steers only a named bond: both or neither.
            let agent = try object["agent"].map { (path) throws(ValidationError) in try checkedPath(path, field: "\(field).agent") }
            let bond = try object["bond"].map { (name) throws(ValidationError) in try checkedInterface(name, field: "\(field).bond") }
            if agent != nil, bond == nil {
                throw ValidationError(
                    field: "\(field).bond", value: "",
                    reason: "is required with agent: the name of the guest's active-backup bond the agent steers")
            }
            if bond != nil, agent == nil {
                throw ValidationError(
                    field: "\(field).agent", value: "",
                    reason: "is required with bond: sriovd reaches the guest's bond through the QEMU guest agent's socket")
            }
            if let agent, agent == socket {
                throw ValidationError(
                    field: "\(field).agent", value: agent,
                    reason: "is the QMP socket; give the guest agent's (-chardev socket of a virtserialport named org.qemu.guest_agent.0)")
            }
            return .qmp(socket: socket, device: device, bus: bus, standby: standby, agent: agent, bond: bond)
        default:
            return .hook(command: try checkedPath(try member("command"), field: "\(field).command"))
        }
    }

    /// The members as JSON writes them.
    public var object: [String: String] {
        switch self {
        case .netns(let ns, let bond, let standby):
            ["adapter": "netns", "namespace": ns, "bond": bond, "standby": standby]
        case .qmp(let socket, let device, let bus, let standby, let agent, let bond):
            ["adapter": "qmp", "socket": socket, "device": device, "bus": bus, "standby": standby]
                .merging(["agent": agent, "bond": bond].compactMapValues { $0 }) { given, _ in given }
        case .hook(let command):
            ["adapter": "hook", "command": command]
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: MemberKey.self)
        var object: [String: String] = [:]
        var field = ""
        for key in decoder.codingPath {
            if let i = key.intValue { field += "[\(i)]" } else { field += (field.isEmpty ? "" : ".") + key.stringValue }
        }
        for key in container.allKeys {
            guard let text = try? container.decode(String.self, forKey: key) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: container, debugDescription: "\(field).\(key.stringValue): must be a string")
            }
            object[key.stringValue] = text
        }
        do {
            self = try Self.parse(object, field: field.isEmpty ? "failover" : field)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: MemberKey.self)
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            try container.encode(value, forKey: MemberKey(stringValue: key))
        }
    }

    struct MemberKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    // MARK: Names

    /// A network namespace name as `ip netns` keeps it under /run/netns.
    public static func checkedNamespace(_ name: String, field: String) throws(ValidationError) -> String {
        guard !name.isEmpty, name.utf8.count <= 64, name != ".", name != "..",
            name.unicodeScalars.allSatisfy({ isNameScalar($0) })
        else {
            throw ValidationError(
                field: field, value: name, reason: "is not a namespace name: 1-64 letters, digits, '.', '_' and '-'")
        }
        return name
    }

    /// A network interface name: 1-15 bytes, no '/', ':' or white space.
    public static func checkedInterface(_ name: String, field: String) throws(ValidationError) -> String {
        guard !name.isEmpty, name.utf8.count <= 15, name != ".", name != "..",
            name.unicodeScalars.allSatisfy({ isNameScalar($0) })
        else {
            throw ValidationError(
                field: field, value: name,
                reason: "is not an interface name: 1-15 letters, digits, '.', '_' and '-'")
        }
        return name
    }

    /// A QEMU device or bus id: a letter, then letters, digits, '-', '.', '_' (at most 64).
    public static func checkedQEMUID(_ id: String, field: String) throws(ValidationError) -> String {
        guard let first = id.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic,
            id.utf8.count <= 64, id.unicodeScalars.allSatisfy({ isNameScalar($0) })
        else {
            throw ValidationError(
                field: field, value: id,
                reason: "is not a QEMU id: a letter, then letters, digits, '-', '.' and '_' (at most 64)")
        }
        return id
    }

    /// An absolute path without NUL or newlines.
    public static func checkedPath(_ path: String, field: String) throws(ValidationError) -> String {
        guard path.hasPrefix("/"), path.utf8.count <= 4096, !path.contains("\0"), !path.contains("\n") else {
            throw ValidationError(field: field, value: path, reason: "must be an absolute path")
        }
        return path
    }

    private static func isNameScalar(_ c: Unicode.Scalar) -> Bool {
        c.isASCII && (("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || "._-".unicodeScalars.contains(c))
    }
}
