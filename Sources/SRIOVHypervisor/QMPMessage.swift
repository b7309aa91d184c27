import Foundation
import SRIOVCore

/// One message from QEMU's monitor (QMP), as the protocol defines them:
/// the greeting, a command's return or error (carrying the command's `id`),
/// or an asynchronous event, which may arrive between any two replies.
enum QMPMessage: Sendable, Equatable {
    case greeting(version: String)
    case success(id: String?, value: JSONValue)
    case failure(id: String?, QMPCommandError.Detail)
    case event(QMPEvent)

    struct Unrecognised: Error, CustomStringConvertible {
        var line: String
        var description: String { "QEMU sent a message that is not QMP: \(line.prefix(200))" }
    }

    /// Parses one line (one JSON object) from the monitor.
    static func parse(_ line: Data) throws -> QMPMessage {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: line)
        } catch {
            throw Unrecognised(line: String(decoding: line, as: UTF8.self))
        }
        let id = value["id"]?.stringValue
        if let greeting = value["QMP"] {
            let qemu = greeting["version"]?["qemu"]
            let version = [qemu?["major"], qemu?["minor"], qemu?["micro"]]
                .map { $0?.intValue.map(String.init) ?? "?" }.joined(separator: ".")
            return .greeting(version: version)
        }
        if let result = value["return"] { return .success(id: id, value: result) }
        if let error = value["error"] {
            return .failure(
                id: id,
                .init(
                    errorClass: error["class"]?.stringValue ?? "GenericError",
                    description: error["desc"]?.stringValue ?? "(no description)"))
        }
        if let name = value["event"]?.stringValue {
            return .event(QMPEvent(name: name, data: value["data"] ?? .object([:])))
        }
        throw Unrecognised(line: String(decoding: line, as: UTF8.self))
    }
}

/// An asynchronous QMP event (`DEVICE_DELETED`, `STOP`, `RESUME`, ...).
public struct QMPEvent: Sendable, Equatable {
    public var name: String
    public var data: JSONValue
}

/// QEMU answered a command with an error.
public struct QMPCommandError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Detail: Sendable, Equatable {
        /// `GenericError`, `DeviceNotFound`, `CommandNotFound`, ...
        public var errorClass: String
        /// QEMU's own text (`desc`).
        public var description: String
    }

    public var command: String
    public var detail: Detail

    public var description: String { "QEMU refused \(command): \(detail.description)" }
}
