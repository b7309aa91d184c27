import ArgumentParser
import SRIOVClient
import SRIOVCore

/// `sriovctl assign VM NIC ...`: what an orchestrator runs to get a VF for a VM NIC.
struct AssignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assign", abstract: "Give a VM NIC a free VF from a pool or a PF.",
        discussion: """
            sriovd picks a free VF (from PFs on --numa-node first, when given), sets the settings \
            given, and binds it to the driver: vfio-pci (the VM opens /dev/vfio/N) or its host \
            driver (the VM uses the VF's netdev). Then prints the assignment, starting with what \
            the VM is given.

            Assigning is idempotent: the same request for a NIC again changes nothing and says \
            that the assignment already existed. A different request for a NIC that has a VF is \
            refused (exit 1), as is a request when no VF is free: release the NIC first.

            VM and NIC names: 1-128 letters, digits, '.', '_', ':' and '-'.
            """)

    @OptionGroup var options: ClientOptions

    @OptionGroup var nic: NICArguments

    @Option(help: ArgumentHelp("Take the VF from this pool of sriovd's configuration.", valueName: "name"))
    var pool: String?

    @Option(help: ArgumentHelp("Take the VF from the PF at this PCI address.", valueName: "pci"))
    var pf: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Prefer VFs of PFs on this NUMA node (the VM's).", valueName: "n"))
    var numaNode: String?

    @Option(
        help: ArgumentHelp("Hand the VF over to vfio-pci (default) or its host driver.", valueName: "vfio-pci|host"))
    var driver: String?

    @OptionGroup var settings: VFSettingOptions

    func validate() throws {
        _ = try request()
    }

    func run() async throws {
        let request = try request()
        try await options.reportingFailures(hint: hint) { client throws(ClientError) in
            let response = try await client.send(.assign(request))
            let outcome = try SRIOVClient.AssignOutcome(response: response)
            if options.json {
                print(try response.prettyPrintedJSON())
                if case .existing = outcome {
                    writeToStandardError("note: \(request.vm)/\(request.nic) already had this assignment; nothing was changed")
                }
            } else {
                print(AssignmentText.assigned(outcome), terminator: "")
            }
        }
    }

    private func request() throws -> SRIOVClient.AssignmentRequest {
        let given = SRIOVClient.AssignmentRequest.Options(
            vm: nic.vm, nic: nic.nic, pool: pool, pf: pf, numaNode: numaNode, driver: driver,
            settings: settings.given)
        do {
            return try SRIOVClient.AssignmentRequest(parsing: given)
        } catch {
            throw ArgumentParser.ValidationError(error.description)
        }
    }

    /// A 409 says why; say which command gets past it.
    private func hint(_ error: ClientError) -> String? {
        guard case .api(let problem) = error, problem.status == 409, let detail = problem.detail else { return nil }
        if detail.contains("different request") {
            return "release it first with: sriovctl release \(nic.vm) \(nic.nic)"
        }
        if detail.hasPrefix("no free VF") {
            let filter = pool.map { "--pool \($0)" } ?? pf.map { "--pf \($0)" } ?? ""
            return "sriovctl assignments \(filter) shows which NICs hold them"
        }
        return nil
    }
}

/// `sriovctl release VM NIC`.
struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release", abstract: "Take a VM NIC's VF back: settings restored, previous driver back.",
        discussion: """
            sriovd unbinds the VF, puts back the settings it changed, rebinds the driver the VF had \
            before it was assigned, and forgets the assignment. A NIC without one is exit 1.
            """)

    @OptionGroup var options: ClientOptions

    @OptionGroup var nic: NICArguments

    func validate() throws {
        _ = try nic.key()
    }

    func run() async throws {
        let key = try nic.key()
        try await options.reportingFailures(hint: notFoundHint(key)) { client throws(ClientError) in
            let response = try await client.send(.release(key)).checked()
            if options.json {
                print(try response.prettyPrintedJSON())
            } else {
                print(AssignmentText.released(try response.decode(SRIOVClient.Assignment.self)), terminator: "")
            }
        }
    }
}

/// `sriovctl assignments [--vm VM] [--pf PCI] [--pool NAME]`.
struct ListAssignments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assignments", abstract: "List the VFs assigned to VM NICs, all or those matching every filter.",
        discussion: """
            DEVICE is what the VM is given: /dev/vfio/N for vfio-pci, the VF's netdev for the host \
            driver. VLAN and MAC are the ones asked for; - is left as the VF had it.
            """)

    @OptionGroup var options: ClientOptions

    @Option(help: ArgumentHelp("Only this VM's NICs.", valueName: "vm"))
    var vm: String?

    @Option(help: ArgumentHelp("Only VFs of the PF at this PCI address.", valueName: "pci"))
    var pf: String?

    @Option(help: ArgumentHelp("Only VFs taken from this pool.", valueName: "name"))
    var pool: String?

    func validate() throws {
        _ = try filters()
    }

    func run() async throws {
        let (vm, pf, pool) = try filters()
        try await options.reportingFailures { client throws(ClientError) in
            let endpoint = SRIOVClient.Endpoint.assignments(vm: vm, pf: pf, pool: pool)
            if options.json {
                print(try await client.get(endpoint).prettyPrintedJSON())
                return
            }
            let assignments = try await client.assignments(vm: vm, pf: pf, pool: pool)
            if assignments.isEmpty {
                let filters = [vm.map { "--vm \($0)" }, pf.map { "--pf \($0)" }, pool.map { "--pool \($0)" }]
                    .compactMap { $0 }
                print(
                    filters.isEmpty
                        ? "No VFs are assigned." : "No assignments match \(filters.joined(separator: " ")).")
            } else {
                print(AssignmentText.assignments(assignments), terminator: "")
            }
        }
    }

    private func filters() throws -> (vm: String?, pf: PCIAddress?, pool: String?) {
        do throws(SRIOVCore.ValidationError) {
            return (
                try vm.map { text throws(SRIOVCore.ValidationError) in
                    try NICKey.checkedName(text, field: "--vm")
                },
                try pf.map { text throws(SRIOVCore.ValidationError) in try PCIAddress.parse(text, field: "--pf") },
                try pool.map { text throws(SRIOVCore.ValidationError) in
                    try PoolName.checked(text, field: "--pool")
                }
            )
        } catch {
            throw ArgumentParser.ValidationError(error.description)
        }
    }
}

/// `sriovctl assignment [show] VM NIC` and `sriovctl assignment set VM NIC ...`.
/// `show` is the default, as for `pf`.
struct AssignmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assignment", abstract: "Show or change one VM NIC's assignment.",
        discussion: """
            A VM called "show" or "set" needs the verb spelled out: sriovctl assignment show set NIC.
            """,
        subcommands: [ShowAssignment.self, SetAssignment.self], defaultSubcommand: ShowAssignment.self)

    @OptionGroup var options: ClientOptions
}

struct ShowAssignment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show one VM NIC's assignment: its VF, driver, device and settings.")

    @OptionGroup var options: ClientOptions

    @OptionGroup var nic: NICArguments

    func validate() throws {
        _ = try nic.key()
    }

    func run() async throws {
        let key = try nic.key()
        try await options.reportingFailures(hint: notFoundHint(key)) { client throws(ClientError) in
            if options.json {
                print(try await client.get(.assignment(key)).prettyPrintedJSON())
            } else {
                print(AssignmentText.detail(try await client.assignment(key)), terminator: "")
            }
        }
    }
}

struct SetAssignment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change the \(VFSettingGroup.named(VFSettingGroup.allCases.filter(\.changesLive))) of an assigned VF.",
        discussion: """
            Only the settings given are changed, while the VM runs; sriovd records them with the \
            assignment. --vlan sets the whole VLAN tag: --qos and --vlan-proto not given go back to \
            0 and 802.1Q. --qos or --vlan-proto alone keep the assignment's VLAN. The MAC is not \
            changed here: release the NIC and assign it again with --mac.

            Prints what happened to each setting (applied, unchanged, unsupported by the VF's \
            driver: a note, not a failure), then the assignment. A setting that fails is exit 1.
            """)

    @OptionGroup var options: ClientOptions

    @OptionGroup var nic: NICArguments

    @OptionGroup var settings: LiveVFSettingOptions

    // Not a setting here: accepted only to say so, rather than "unknown option".
    @Option(help: .hidden)
    var mac: String?

    func validate() throws {
        _ = try nic.key()
        _ = try change()
    }

    func run() async throws {
        let key = try nic.key()
        let change = try change()
        try await options.reportingFailures(hint: notFoundHint(key)) { client throws(ClientError) in
            let response = try await client.send(.changeAssignment(key, change)).checked()
            let report = try response.decode(SRIOVClient.AssignmentChangeReport.self)
            if options.json {
                print(try response.prettyPrintedJSON())
            } else {
                print(AssignmentText.changed(report), terminator: "")
            }
            for line in ResultsText.notes(report.vfChangeReport, vf: report.assignment.vf) {
                writeToStandardError(line)
            }
        }
    }

    private func change() throws -> SRIOVClient.AssignmentChange {
        var given = settings.given
        given[.named("mac")!] = mac
        do {
            return try SRIOVClient.AssignmentChange(parsing: given)
        } catch {
            throw ArgumentParser.ValidationError(error.description)
        }
    }
}

/// The VM and NIC arguments every one-assignment command starts with.
struct NICArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("The VM's name, as the orchestrator calls it.", valueName: "vm"))
    var vm: String

    @Argument(help: ArgumentHelp("The VM NIC's name, e.g. net0.", valueName: "nic"))
    var nic: String

    /// The names checked as sriovd checks them; a bad one is a usage error (exit 64).
    func key() throws -> SRIOVClient.NICKey {
        do {
            return try SRIOVClient.NICKey(vm: vm, nic: nic)
        } catch {
            throw ArgumentParser.ValidationError(error.description)
        }
    }
}

/// A 404 for one NIC: say where its VM's NICs are listed.
private func notFoundHint(_ key: SRIOVClient.NICKey) -> (ClientError) -> String? {
    { error in
        guard case .api(let problem) = error, problem.status == 404 else { return nil }
        return "sriovctl assignments --vm \(key.vm) lists that VM's assigned NICs"
    }
}
