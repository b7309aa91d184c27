import SRIOVAPI
import SRIOVCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A VM's live migration: `/v1/vms/{vm}/migration`.
extension SRIOVClient {
    public typealias Migration = SRIOVAPI.Migration
    public typealias MigrationNIC = SRIOVAPI.MigrationNIC
    public typealias MigrationIncomingBody = SRIOVAPI.MigrationIncomingBody

    /// The calls of a migration, in the order an orchestrator makes them.
    public enum MigrationCall: String, Sendable, CaseIterable {
        case incoming, prepare, complete, abort
    }

    /// `GET /v1/vms/{vm}/migration`: the latest migration of the VM on this host; 404 when none.
    public func migration(vm: String) async throws(ClientError) -> Migration {
        try await get(.migration(vm: vm)).decode(Migration.self)
    }

    /// `POST /v1/vms/{vm}/migration/{call}`; `incoming` takes the NICs
    /// (what `prepare` answered on the source).
    public func migrate(vm: String, _ call: MigrationCall, nics: [MigrationNIC]? = nil) async throws(ClientError) -> Migration {
        try await send(.migration(vm: vm, call, nics: nics)).checked().decode(Migration.self)
    }
}

extension SRIOVClient.Endpoint {
    public static func migration(vm: String) -> Self {
        Self(path: "/v1/vms/\(vm)/migration")
    }
}

extension SRIOVClient.Request {
    public static func migration(
        vm: String, _ call: SRIOVClient.MigrationCall, nics: [SRIOVClient.MigrationNIC]? = nil
    ) throws(ClientError) -> Self {
        let path = SRIOVClient.Endpoint.migration(vm: vm).path + "/" + call.rawValue
        guard call == .incoming else { return Self(method: .post, path: path) }
        return Self(method: .post, path: path, body: try jsonBody(SRIOVClient.MigrationIncomingBody(nics: nics ?? [])))
    }
}

/// How sriovctl shows a migration: its state, then the timeline as a table.
public enum MigrationText {
    public static func migration(_ m: SRIOVClient.Migration) -> String {
        var out = "VM \(m.vm): migration \(m.id) (\(m.role.rawValue)), \(m.state)\n"
        if let error = m.error {
            out += "failed: \(error.operation) step \(error.step)\(error.nic.map { " of \($0)" } ?? ""): \(error.reason)\n"
        }
        out += "NICs: " + m.nics.map { nic in
            "\(nic.nic) (\(nic.config.mac?.description ?? "no MAC")\(nic.config.vlan.map { ", VLAN \($0)" } ?? ""), \(nic.failover?.adapter ?? "no failover"))"
        }.joined(separator: ", ") + "\n"
        guard !m.timeline.isEmpty else { return out }
        var table = TextTable([
            .init("OPERATION"), .init("NIC"), .init("STEP"), .init("AT MS", .right), .init("TOOK MS", .right),
            .init("RESULT"), .init("LEVER"), .init("DETAIL"),
        ])
        for s in m.timeline {
            table.append([
                s.operation, s.nic, s.step, oneDecimal(s.offsetMs), s.durationMs.map(oneDecimal),
                s.result, s.lever, s.detail,
            ])
        }
        return out + table.rendered()
    }

    /// 12.345 as "12.3".
    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }
}
