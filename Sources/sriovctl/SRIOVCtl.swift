import ArgumentParser
import SRIOVClient
import SRIOVCore

@main
struct SRIOVCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sriovctl",
        abstract: "Show and change the SR-IOV physical and virtual functions that sriovd manages.",
        discussion: """
            sriovctl talks to sriovd on its Unix socket: --socket, else $SRIOVD_SOCKET, \
            else \(SRIOVClient.defaultSocketPath).

            Reading: health, pfs, vfs [--pf PCI], and pf PCI (same as pf show PCI).
            Changing, a noun then a verb; values are checked before anything is sent:
              pf set PCI [--num-vfs N] [--autoprobe on|off] [--force]
              vf set PCI [--mac MAC] [--vlan ID] [--qos N] [--vlan-proto 802.1Q|802.1ad]
                         [--spoof-check on|off] [--trust on|off]
                         [--link-state auto|enable|disable]
                         [--min-tx-rate MBPS] [--max-tx-rate MBPS] [--rss-query on|off]
              vf restore PCI       put back what sriovd changed on the VF
              vf scrub PCI         clear a free VF: no MAC or VLAN, spoof check on, trust off
              vf driver PCI vfio-pci|host|none

            VFs for VMs, by VM and NIC name (1-128 letters, digits, '.', '_', ':', '-'):
              assign VM NIC (--pool NAME | --pf PCI) [--numa-node N]
                            [--driver vfio-pci|host (default vfio-pci)] [--mac MAC]
                            [VF settings as for vf set]
              release VM NIC       settings restored, the VF's previous driver back
              assignments [--vm VM] [--pf PCI] [--pool NAME]
              assignment [show] VM NIC
              assignment set VM NIC [VF settings as for vf set, but not --mac]

            Watching: events [--since SEQ] [--type T]... [--pf PCI] [--vm VM], one line per event as it happens.
            See sriovctl help vf set, sriovctl help assign, and so on.

            Exit status: 0 success (a VF setting its driver does not support is a note, not a failure; \
            assigning a NIC again with the same request); 1 sriovd refused the request (e.g. a NIC that \
            already has a VF from a different request, no free VF, no such assignment) or a VF setting \
            failed (and was rolled back); 64 bad arguments, found before anything is sent; \
            69 sriovd is not running; 70 internal error; 71 system error; 75 sriovd did not answer in time; \
            76 sriovd's answer could not be read; 77 permission denied.
            """,
        subcommands: [
            HealthCommand.self, ListPFs.self, PFCommand.self, ListVFs.self, VFCommand.self, AssignCommand.self,
            ReleaseCommand.self, ListAssignments.self, AssignmentCommand.self, MigrationCommand.self,
            EventsCommand.self,
        ])

    // Here too, so that the options may come before the subcommand's name.
    @OptionGroup var options: ClientOptions
}

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health", abstract: "Check that sriovd is running and answering.")

    @OptionGroup var options: ClientOptions

    func run() async throws {
        try await options.reportingFailures { client throws(ClientError) in
            if options.json {
                print(try await client.get(.health).prettyPrintedJSON())
            } else {
                print(InventoryText.health(try await client.health()), terminator: "")
            }
        }
    }
}

struct ListPFs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pfs", abstract: "List the SR-IOV physical functions (PFs).")

    @OptionGroup var options: ClientOptions

    func run() async throws {
        try await options.reportingFailures { client throws(ClientError) in
            if options.json {
                print(try await client.get(.pfs).prettyPrintedJSON())
                return
            }
            let pfs = try await client.pfs()
            if pfs.isEmpty {
                print("No SR-IOV physical functions found.")
                return
            }
            print(InventoryText.physicalFunctions(pfs), terminator: "")
            for pf in pfs.sorted(by: { $0.pciAddress < $1.pciAddress }) {
                for warning in pf.warnings { writeToStandardError("warning: \(pf.pciAddress): \(warning)") }
            }
        }
    }
}

struct ListVFs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfs", abstract: "List the virtual functions (VFs) of every PF, or of one.")

    @OptionGroup var options: ClientOptions

    @Option(help: ArgumentHelp("Only the VFs of the PF at this PCI address.", valueName: "pci"))
    var pf: String?

    func validate() throws {
        if let pf { _ = try parsedPCIAddress(pf, field: "--pf") }
    }

    func run() async throws {
        let address = try pf.map { try parsedPCIAddress($0, field: "--pf") }
        try await options.reportingFailures { client throws(ClientError) in
            if options.json {
                print(try await client.get(.vfs(pf: address)).prettyPrintedJSON())
                return
            }
            let vfs = try await client.vfs(pf: address)
            if vfs.isEmpty {
                print(address.map { "No VFs are enabled on \($0)." } ?? "No VFs are enabled.")
            } else {
                print(InventoryText.virtualFunctions(vfs), terminator: "")
            }
        }
    }
}

/// Parses a PCI address argument; a bad one is a usage error (exit 64) with
/// SRIOVCore's message, which names the field and shows the expected form.
func parsedPCIAddress(_ text: String, field: String) throws -> PCIAddress {
    do {
        return try PCIAddress.parse(text, field: field)
    } catch {
        throw ArgumentParser.ValidationError(error.description)
    }
}
