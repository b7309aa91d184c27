import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging
import SRIOVDaemon
import SRIOVHost

@main
struct SRIOVDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sriovd",
        abstract: "Manage SR-IOV virtual functions for virtual machines.",
        version: sriovdVersion,
        subcommands: [Run.self, CheckConfig.self, PlanCommand.self, SocketAccessCommand.self],
        defaultSubcommand: Run.self)
}

/// Options shared by the subcommands that read the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file.", valueName: "FILE"))
    var config: String?
}

extension SRIOVDCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Run the daemon (the default).")

        @OptionGroup var configOptions: ConfigOptions

        @Option(help: ArgumentHelp("API socket path (overrides daemon.socket).", valueName: "PATH"))
        var socket: String?

        @Option(name: .customLong("state-dir"), help: ArgumentHelp("State folder (overrides daemon.state_dir).", valueName: "DIR"))
        var stateDir: String?

        @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (overrides daemon.log_level).")
        var logLevel: String?

        @Option(name: .customLong("log-target"), help: "auto, journal or stderr (overrides daemon.log_target).")
        var logTarget: String?

        @Option(name: .customLong("sysfs-root"), help: ArgumentHelp(visibility: .hidden))
        var sysfsRoot: String = "/sys"

        /// The test suites' switch for SRIOVD_TEST_CRASH_POINT (`CrashPoints`).
        @Flag(name: .customLong("test-crash-points"), help: ArgumentHelp(visibility: .hidden))
        var testCrashPoints = false

        func run() async throws {
            let settings: DaemonSettings
            let crashPoints: CrashPoints
            do {
                settings = try DaemonSettings.resolve(
                    configPath: configOptions.config, socket: socket, stateDir: stateDir,
                    logLevel: logLevel, logTarget: logTarget, sysfsRoot: sysfsRoot)
                crashPoints = try CrashPoints.fromEnvironment(testFlag: testCrashPoints)
            } catch {
                printError("sriovd: \(error)")
                throw ExitCode(78)  // EX_CONFIG
            }
            settings.bootstrapLogging()
            let logger = Logger(label: "sriovd")
            let metrics = SRIOVMetrics.bootstrap()
            do {
                var options = settings.daemonOptions
                options.crashPoints = crashPoints
                try await Daemon(options: options, logger: logger, metricsRegistry: metrics).run()
            } catch {
                logger.critical("sriovd failed", metadata: ["error": "\(error)"])
                throw ExitCode(1)
            }
        }
    }

    struct CheckConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-config", abstract: "Validate a configuration file and report every problem with its line.")

        @Argument(help: ArgumentHelp("The file to check.", valueName: "FILE"))
        var file: String

        func run() throws {
            do {
                let summary = try DaemonSettings.check(path: file)
                print("\(file): OK (\(summary))")
            } catch {
                printError("\(error)")
                throw ExitCode(78)
            }
        }
    }
}

/// For sriovd.socket's ExecStartPost=: systemd creates the socket (mode 0660,
/// group sriovd), and this lets daemon.reader_group connect to it too, as
/// sriovd does itself for a socket it creates.
struct SocketAccessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socket-access",
        abstract: "Let daemon.reader_group connect to the API socket (a POSIX ACL; for sriovd.socket).")

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: ArgumentHelp("The socket (default: daemon.socket).", valueName: "PATH"))
    var socket: String?

    func run() throws {
        let settings: DaemonSettings
        do {
            settings = try DaemonSettings.resolve(
                configPath: configOptions.config, socket: socket, stateDir: nil, logLevel: nil, logTarget: nil)
        } catch {
            printError("sriovd: \(error)")
            throw ExitCode(78)
        }
        let options = settings.daemonOptions
        guard let name = options.readerGroup, !name.isEmpty else {
            print("no daemon.reader_group: \(options.socketPath) left as it is")
            return
        }
        guard let gid = GroupDatabase.gid(named: name) else {
            printError("sriovd: daemon.reader_group \(name) does not exist; \(options.socketPath) left as it is")
            throw ExitCode(1)
        }
        do {
            try SocketAccess.grant(readWriteTo: gid, on: options.socketPath)
        } catch {
            printError("sriovd: \(error)")
            throw ExitCode(1)
        }
        print("group \(name) may connect to \(options.socketPath)")
    }
}

func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
