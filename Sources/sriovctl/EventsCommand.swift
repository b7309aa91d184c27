import ArgumentParser
import SRIOVClient
import SRIOVCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Follow sriovd's events as they happen, one line per event (Ctrl-C to stop).",
        discussion: """
            Each line: time, #seq, type, what it concerns (VM/NIC, VF, PF) and what changed. With --json, \
            each event's JSON object as sriovd sent it, one per line (not indented). A 'resync' line means \
            events after --since are no longer held: read the state again. When this reader falls too far \
            behind, sriovd ends the stream and sriovctl follows again from where it was cut off. When \
            sriovd stops, so does sriovctl events (exit 0).
            """)

    @OptionGroup var options: ClientOptions

    @Option(help: ArgumentHelp("First replay the events after this seq that sriovd still holds.", valueName: "seq"))
    var since: UInt64?

    @Option(
        name: .customLong("type"),
        help: ArgumentHelp(
            "Only events of this type, or types starting with it (e.g. assignment.); repeatable.", valueName: "type"))
    var types: [String] = []

    @Option(help: ArgumentHelp("Only events of the PF at this PCI address.", valueName: "pci"))
    var pf: String?

    @Option(help: ArgumentHelp("Only events of this VM.", valueName: "vm"))
    var vm: String?

    func validate() throws {
        _ = try query()
    }

    func query() throws -> SRIOVClient.EventQuery {
        let checkedTypes = try types.map { type in
            do throws(SRIOVCore.ValidationError) { return try SRIOVClient.EventQuery.checkedType(type, field: "--type") } catch {
                throw ArgumentParser.ValidationError(error.description)
            }
        }
        var vmName: String?
        if let vm {
            do { vmName = try NICKey.checkedName(vm, field: "--vm") } catch {
                throw ArgumentParser.ValidationError(error.description)
            }
        }
        return SRIOVClient.EventQuery(
            since: since, types: checkedTypes, pf: try pf.map { try parsedPCIAddress($0, field: "--pf") }, vm: vmName)
    }

    func run() async throws {
        let query = try query()
        let json = options.json
        try await options.reportingFailures { client throws(ClientError) in
            try await client.followEvents(query) { line throws(ClientError) in
                if line.type == "heartbeat" { return true }
                if json {
                    print(line.text)
                } else if let text = EventText.line(line.value) {
                    print(text)
                }
                fflush(nil)  // a line as it happens, even into a pipe
                return true
            }
        }
    }
}
