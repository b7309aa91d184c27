import ArgumentParser
import Logging
import SRIOVDaemon

#if canImport(Glibc)
import Glibc
#endif

/// `sriovd plan`: what reconciling would change on this host, changing nothing.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what sriovd would change to make this host match the configuration, without changing it.",
        discussion: """
            Lists the PF phase (sriov_drivers_autoprobe, then the VF count of each managed PF) and the VF \
            phase (settings, then driver, of each VF that exists now). The VFs of a PF whose count is still \
            to change are planned after it changes. VFs configured through the API are left alone.

            Exit status: 0 when there is nothing to change, 2 when changes are pending, 78 when the \
            configuration is not valid, 1 when the host cannot be read.
            """)

    @OptionGroup var configOptions: ConfigOptions

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("State folder (overrides daemon.state_dir).", valueName: "DIR"))
    var stateDir: String?

    @Option(name: .customLong("sysfs-root"), help: ArgumentHelp(visibility: .hidden))
    var sysfsRoot: String = "/sys"

    func run() async throws {
        let settings: DaemonSettings
        do {
            settings = try DaemonSettings.resolve(
                configPath: configOptions.config, socket: nil, stateDir: stateDir, logLevel: nil, logTarget: nil,
                sysfsRoot: sysfsRoot)
        } catch {
            writeToStandardError("sriovd: \(error)")
            throw ExitCode(78)  // EX_CONFIG
        }
        // Problems reading the host go to standard error, the plan to standard output.
        SRIOVLogging.bootstrap(target: .stderr, level: .warning)
        let logger = Logger(label: "sriovd.plan")
        let preview: ReconcilePreview
        do {
            preview = try await ReconcilePreview.host(
                configuration: settings.configuration, sysfsRoot: settings.sysfsRoot, logger: logger)
        } catch {
            writeToStandardError("sriovd: cannot read the host's SR-IOV devices: \(error)")
            throw ExitCode.failure
        }
        print(preview.text(configPath: settings.configPath), terminator: "")
        if preview.hasChanges { throw ExitCode(2) }
    }

    private func writeToStandardError(_ message: String) {
        let bytes = Array((message + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
