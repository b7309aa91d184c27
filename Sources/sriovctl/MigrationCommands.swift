import ArgumentParser
import SRIOVAPI
import SRIOVClient
import SRIOVCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `sriovctl migration incoming|prepare|complete|abort|show VM`.
struct MigrationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migration", abstract: "Move a VM's failover NICs off their VFs and onto new ones around a live migration.",
        discussion: """
            On the destination: incoming (with the NICs the source's prepare printed), then complete after \
            the hypervisor moved the VM. On the source: prepare before the move. abort undoes prepare (source) \
            or incoming (destination). show prints the state and the timeline of every step.
            """,
        subcommands: [
            MigrationIncoming.self, MigrationCall.prepare.self, MigrationCall.complete.self, MigrationCall.abort.self,
            MigrationShow.self,
        ],
        defaultSubcommand: MigrationShow.self)
}

struct MigrationVM: ParsableArguments {
    @Argument(help: ArgumentHelp("The VM's name, as the orchestrator calls it.", valueName: "vm"))
    var vm: String

    func checked() throws -> String {
        do { return try NICKey.checkedName(vm, field: "vm") } catch { throw ArgumentParser.ValidationError(error.description) }
    }
}

/// Sends one migration call and prints the answer: a table, or its JSON.
func sendMigration(_ client: SRIOVClient, _ request: SRIOVClient.Request, json: Bool) async throws(ClientError) {
    let response = try await client.send(request).checked()
    if json {
        print(try response.prettyPrintedJSON())
    } else {
        print(MigrationText.migration(try response.decode(SRIOVClient.Migration.self)), terminator: "")
    }
}

struct MigrationShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "The VM's latest migration on this host: state and timeline.")

    @OptionGroup var options: ClientOptions
    @OptionGroup var target: MigrationVM

    func validate() throws { _ = try target.checked() }

    func run() async throws {
        let vm = try target.checked()
        try await options.reportingFailures { client throws(ClientError) in
            try await sendMigration(client, SRIOVClient.Request(method: .get, path: SRIOVClient.Endpoint.migration(vm: vm).path), json: options.json)
        }
    }
}

struct MigrationIncoming: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incoming", abstract: "Destination: reserve and program a VF for each NIC of the VM (not attached yet).",
        discussion: """
            The NICs are read as JSON from --nics FILE (- for standard input): either the list, or an \
            object with "nics" (what prepare answers on the source, as `sriovctl --json migration prepare` prints it).
            """)

    @OptionGroup var options: ClientOptions
    @OptionGroup var target: MigrationVM

    @Option(help: ArgumentHelp("JSON with the NICs: a file, or - for standard input.", valueName: "file"))
    var nics: String

    func validate() throws { _ = try target.checked() }

    func run() async throws {
        let vm = try target.checked()
        let list = try readNICs()
        try await options.reportingFailures { client throws(ClientError) in
            try await sendMigration(client, try .migration(vm: vm, .incoming, nics: list), json: options.json)
        }
    }

    private func readNICs() throws -> [SRIOVClient.MigrationNIC] {
        let data: [UInt8]
        if nics == "-" {
            var bytes: [UInt8] = []
            while let line = readLine(strippingNewline: false) { bytes.append(contentsOf: line.utf8) }
            data = bytes
        } else {
            guard let contents = FileManager.default.contents(atPath: nics) else {
                throw ArgumentParser.ValidationError("--nics: cannot read \(nics)")
            }
            data = Array(contents)
        }
        let decoder = APIJSON.decoder()
        if let body = try? decoder.decode(SRIOVClient.MigrationIncomingBody.self, from: Data(data)) { return body.nics }
        if let migration = try? decoder.decode(SRIOVClient.Migration.self, from: Data(data)) { return migration.nics }
        do {
            return try decoder.decode([SRIOVClient.MigrationNIC].self, from: Data(data))
        } catch {
            throw ArgumentParser.ValidationError("--nics: not a list of NICs, nor an object with \"nics\": \(error)")
        }
    }
}

/// prepare, complete, abort: one call each, no input.
protocol MigrationCallCommand: AsyncParsableCommand {
    static var call: SRIOVClient.MigrationCall { get }
    var options: ClientOptions { get }
    var target: MigrationVM { get }
}

extension MigrationCallCommand {
    func validate() throws { _ = try target.checked() }
    func run() async throws { try await MigrationCall.call(Self.call, options, target) }
}

enum MigrationCall {
    struct prepare: MigrationCallCommand {
        static let configuration = CommandConfiguration(
            commandName: "prepare",
            abstract: "Source: move the VM's traffic to its standby NICs, detach and free its VFs; prints the NICs for incoming.")
        static let call = SRIOVClient.MigrationCall.prepare
        @OptionGroup var options: ClientOptions
        @OptionGroup var target: MigrationVM
    }

    struct complete: MigrationCallCommand {
        static let configuration = CommandConfiguration(
            commandName: "complete", abstract: "Destination: attach the reserved VFs and move the VM's traffic back to them.")
        static let call = SRIOVClient.MigrationCall.complete
        @OptionGroup var options: ClientOptions
        @OptionGroup var target: MigrationVM
    }

    struct abort: MigrationCallCommand {
        static let configuration = CommandConfiguration(
            commandName: "abort", abstract: "Undo prepare (source: the VM gets VFs back) or incoming (destination: reservations freed).")
        static let call = SRIOVClient.MigrationCall.abort
        @OptionGroup var options: ClientOptions
        @OptionGroup var target: MigrationVM
    }

    static func call(_ call: SRIOVClient.MigrationCall, _ options: ClientOptions, _ target: MigrationVM) async throws {
        let vm = try target.checked()
        try await options.reportingFailures { client throws(ClientError) in
            try await sendMigration(client, try .migration(vm: vm, call), json: options.json)
        }
    }
}
