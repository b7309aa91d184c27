import ArgumentParser
import SRIOVClient
import SRIOVCore

/// `sriovctl pf [show] PCI` and `sriovctl pf set PCI ...`. `show` is the
/// default, so `sriovctl pf PCI` reads as it always has.
struct PFCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pf", abstract: "Show or change one physical function (PF).",
        subcommands: [ShowPF.self, SetPF.self], defaultSubcommand: ShowPF.self)

    @OptionGroup var options: ClientOptions
}

struct ShowPF: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show one physical function and its virtual functions.")

    @OptionGroup var options: ClientOptions

    @Argument(help: ArgumentHelp("The PF's PCI address, e.g. 0000:01:00.0.", valueName: "pci"))
    var pci: String

    func validate() throws {
        _ = try parsedPCIAddress(pci, field: "pci")
    }

    func run() async throws {
        let address = try parsedPCIAddress(pci, field: "pci")
        try await options.reportingFailures { client throws(ClientError) in
            if options.json {
                print(try await client.get(.pf(address)).prettyPrintedJSON())
            } else {
                print(InventoryText.physicalFunctionDetail(try await client.pf(address)), terminator: "")
            }
        }
    }
}

struct SetPF: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set a PF's number of VFs and whether drivers probe new VFs.",
        discussion: """
            Sets sriov_drivers_autoprobe first, then sriov_numvfs, so that with --autoprobe off \
            new VFs can be configured before any driver binds to them. Then shows the PF as `pf show` does.

            Lowering the count is refused (exit 1) while a VF that would go is bound to vfio-pci \
            or configured by sriovd; --force removes them anyway.
            """)

    @OptionGroup var options: ClientOptions

    @Argument(help: ArgumentHelp("The PF's PCI address, e.g. 0000:01:00.0.", valueName: "pci"))
    var pci: String

    @Option(
        name: .customLong("num-vfs"), parsing: .unconditional,
        help: ArgumentHelp("How many VFs to enable, from 0 to the PF's total (0 removes them all).", valueName: "n"))
    var numVFs: String?

    @Option(help: ArgumentHelp("Whether drivers bind to new VFs on their own.", valueName: "on|off"))
    var autoprobe: String?

    @Flag(help: "Lower the VF count even when VFs that would go are in use.")
    var force = false

    func validate() throws {
        _ = try parsedPCIAddress(pci, field: "pci")
        _ = try change()
    }

    func run() async throws {
        let address = try parsedPCIAddress(pci, field: "pci")
        let change = try change()
        try await options.reportingFailures(hint: hint) { client throws(ClientError) in
            let response = try await client.send(.changePF(address, change)).checked()
            if options.json {
                print(try response.prettyPrintedJSON())
                return
            }
            let detail = try response.decode(PhysicalFunctionDetail.self)
            print(InventoryText.physicalFunctionDetail(detail), terminator: "")
            for warning in detail.pf.warnings { writeToStandardError("warning: \(address): \(warning)") }
        }
    }

    private func change() throws -> SRIOVClient.PFChange {
        do {
            return try SRIOVClient.PFChange(numVFs: numVFs, autoprobe: autoprobe, force: force)
        } catch {
            throw ArgumentParser.ValidationError(error.description)
        }
    }

    /// A 409 names the VFs in use and says to release them; say how to go ahead regardless.
    private func hint(_ error: ClientError) -> String? {
        guard case .api(let problem) = error, problem.status == 409, !force else { return nil }
        return "add --force to remove them anyway"
    }
}
