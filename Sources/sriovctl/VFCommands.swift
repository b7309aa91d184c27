import ArgumentParser
import SRIOVClient
import SRIOVCore

/// `sriovctl vf set|restore|driver PCI ...`: changes to one VF. `sriovctl vfs` lists them.
struct VFCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vf", abstract: "Change one virtual function (VF): its settings or its driver.",
        subcommands: [SetVF.self, RestoreVF.self, ScrubVF.self, BindVF.self])

    @OptionGroup var options: ClientOptions
}

struct SetVF: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Change a VF's \(VFSettingGroup.named(VFSettingGroup.allCases)).",
        discussion: """
            Only the settings given are changed. sriovd records the VF's settings before its first \
            change, so that `sriovctl vf restore` can put them back.

            Each setting is applied and reported on its own: applied, unchanged, or unsupported \
            (the VF's driver cannot do it; a note, not a failure). If one fails, the ones this \
            command applied are rolled back, the table says so, and the exit status is 1.
            """)

    @OptionGroup var options: ClientOptions

    @Argument(help: ArgumentHelp("The VF's PCI address, e.g. 0000:01:10.0.", valueName: "pci"))
    var pci: String

    @OptionGroup var settings: VFSettingOptions

    func validate() throws {
        _ = try parsedPCIAddress(pci, field: "pci")
        _ = try change()
    }

    func run() async throws {
        let address = try parsedPCIAddress(pci, field: "pci")
        let change = try change()
        try await options.reportingFailures { client throws(ClientError) in
            let response = try await client.send(.changeVF(address, change))
            try showReport(of: response, vf: address, json: options.json, noResults: "sriovd reported no settings.")
        }
    }

    private func change() throws -> SRIOVClient.VFChange {
        do {
            return try SRIOVClient.VFChange(parsing: settings.given)
        } catch {
            throw ArgumentParser.ValidationError(error.description)
        }
    }
}

/// The VF settings options, as `vf set` and `assign` take them: the MAC,
/// then the settings that may also change while the VF is assigned.
struct VFSettingOptions: ParsableArguments {
    @Option(help: .field("mac")) var mac: String?

    @OptionGroup var live: LiveVFSettingOptions

    /// The options as typed, for `SRIOVClient.VFChange` to parse.
    var given: SRIOVClient.VFChange.Options {
        var given = live.given
        given[.named("mac")!] = mac
        return given
    }
}

/// The VF settings that `assignment set` may change on an assigned VF: all
/// but the MAC (`VFSettingGroup.changesLive`). Each option is a setting
/// field; its help comes from `VFSettingField`. Numbers may be negative
/// (`.unconditional`), so that the daemon's range check names them.
struct LiveVFSettingOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: .field("vlan")) var vlan: String?
    @Option(parsing: .unconditional, help: .field("qos")) var qos: String?
    @Option(help: .field("vlanProto")) var vlanProto: String?
    @Option(help: .field("spoofCheck")) var spoofCheck: String?
    @Option(help: .field("trust")) var trust: String?
    @Option(help: .field("linkState")) var linkState: String?
    @Option(parsing: .unconditional, help: .field("minTxRate")) var minTxRate: String?
    @Option(parsing: .unconditional, help: .field("maxTxRate")) var maxTxRate: String?
    @Option(help: .field("rssQuery")) var rssQuery: String?

    var given: SRIOVClient.VFChange.Options {
        SRIOVClient.VFChange.Options(byKey: [
            "vlan": vlan, "qos": qos, "vlanProto": vlanProto, "spoofCheck": spoofCheck, "trust": trust,
            "linkState": linkState, "minTxRate": minTxRate, "maxTxRate": maxTxRate, "rssQuery": rssQuery,
        ])
    }
}

extension ArgumentHelp {
    /// A setting option's help and value name, from its field.
    static func field(_ key: String) -> ArgumentHelp {
        let field = VFSettingField.named(key)!
        return ArgumentHelp(field.help, valueName: field.valueName)
    }
}

/// The VF a command acts on, by PCI address; checked before anything is sent.
struct VFAddressArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The VF's PCI address, e.g. 0000:01:10.0.", valueName: "pci"))
    var pci: String

    func validate() throws { _ = try address() }

    func address() throws -> PCIAddress { try parsedPCIAddress(pci, field: "pci") }
}

struct ScrubVF: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrub", abstract: "Clear a free VF of its last user's MAC, VLAN and privileges.",
        discussion: """
            Sets no MAC, no VLAN, spoof check on, trust and RSS query off, link disabled; a setting \
            the driver does not have is reported as unsupported. Refused for a VF assigned to a VM NIC.
            """)

    @OptionGroup var options: ClientOptions

    @OptionGroup var vf: VFAddressArgument

    func run() async throws {
        let address = try vf.address()
        try await options.reportingFailures { client throws(ClientError) in
            try showReport(of: try await client.send(.scrubVF(address)), vf: address, json: options.json, noResults: "")
        }
    }
}

struct RestoreVF: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Put back the VF settings sriovd changed, as they were before.",
        discussion: """
            Only the settings sriovd changed are written; the others are left alone. A setting \
            whose original value the driver never reported cannot be put back, and is reported as skipped.
            """)

    @OptionGroup var options: ClientOptions

    @OptionGroup var vf: VFAddressArgument

    func run() async throws {
        let address = try vf.address()
        try await options.reportingFailures { client throws(ClientError) in
            let response = try await client.send(.restoreVF(address))
            try showReport(
                of: response, vf: address, json: options.json,
                noResults: "Nothing to restore: sriovd has not changed the settings of \(address).")
        }
    }
}

struct BindVF: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "driver", abstract: "Bind a VF to vfio-pci, to its host driver, or to no driver.",
        discussion: """
            vfio-pci is for passing the VF to a VM: sriovd checks its IOMMU group and resets the \
            function first. host is the kernel's own VF driver (igbvf, iavf, ...). Then shows the VF.
            """)

    @OptionGroup var options: ClientOptions

    @Argument(help: ArgumentHelp("The VF's PCI address, e.g. 0000:01:10.0.", valueName: "pci"))
    var pci: String

    @Argument(help: ArgumentHelp("The driver to bind the VF to.", valueName: "vfio-pci|host|none"))
    var driver: String

    func validate() throws {
        _ = try parsedPCIAddress(pci, field: "pci")
        _ = try parsedDriver()
    }

    func run() async throws {
        let address = try parsedPCIAddress(pci, field: "pci")
        let driver = try parsedDriver()
        try await options.reportingFailures { client throws(ClientError) in
            let response = try await client.send(.bindVF(address, to: driver)).checked()
            if options.json {
                print(try response.prettyPrintedJSON())
            } else {
                print(InventoryText.virtualFunctions([try response.decode(VirtualFunction.self)]), terminator: "")
            }
        }
    }

    private func parsedDriver() throws -> VFDriverChoice {
        do {
            return try VFDriverChoice.parse(driver, field: "driver")
        } catch {
            throw ArgumentParser.ValidationError(error.description)
        }
    }
}

/// Prints the answer to a VF change or restore: the daemon's JSON, or the
/// results and the VF; notes on stderr for settings the driver cannot do.
/// A failed setting is thrown after the results are shown (exit 1).
private func showReport(
    of response: SRIOVClient.Response, vf address: PCIAddress, json: Bool, noResults: String
) throws(ClientError) {
    let report = try SRIOVClient.VFChangeReport(response: response)
    if json {
        print(try response.prettyPrintedJSON())
    } else {
        print(ResultsText.vfChange(report, noResults: noResults), terminator: "")
    }
    for line in ResultsText.notes(report, vf: address) { writeToStandardError(line) }
    if let failure = report.failure { throw .api(failure) }
}
