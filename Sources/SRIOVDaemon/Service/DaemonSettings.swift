import Logging
import SRIOVCore

#if canImport(Glibc)
import Glibc
#endif

/// The configuration file with the command line's overrides applied: what
/// `sriovd run` runs with.
public struct DaemonSettings: Sendable {
    public var configuration: SRIOVConfiguration
    public var configPath: String?
    public var sysfsRoot: String

    /// Reads the file (the given path, or the default path when it exists),
    /// then applies the flags. A flag with a bad value is refused by name.
    public static func resolve(
        configPath: String?, socket: String?, stateDir: String?, logLevel: String?, logTarget: String?,
        sysfsRoot: String = "/sys"
    ) throws -> DaemonSettings {
        var path = configPath
        if path == nil, access(SRIOVConfiguration.defaultPath, F_OK) == 0 {
            path = SRIOVConfiguration.defaultPath
        }
        var configuration = try path.map { p throws(ConfigurationErrors) in try SRIOVConfiguration.load(path: p) }
            ?? SRIOVConfiguration.defaults

        if let socket {
            guard socket.hasPrefix("/") else {
                throw ValidationError(field: "--socket", value: socket, reason: "must be an absolute path")
            }
            configuration.daemon.socket = socket
        }
        if let stateDir {
            guard stateDir.hasPrefix("/") else {
                throw ValidationError(field: "--state-dir", value: stateDir, reason: "must be an absolute path")
            }
            configuration.daemon.stateDirectory = stateDir
        }
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
                throw ValidationError(
                    field: "--log-level", value: logLevel,
                    reason: "is not a log level; use trace, debug, info, notice, warning, error or critical")
            }
            configuration.daemon.logLevel = level
        }
        if let logTarget {
            guard let target = SRIOVConfiguration.LogTarget(rawValue: logTarget.lowercased()) else {
                throw ValidationError(field: "--log-target", value: logTarget, reason: "is not a log target; use auto, journal or stderr")
            }
            configuration.daemon.logTarget = target
        }
        return DaemonSettings(configuration: configuration, configPath: path, sysfsRoot: sysfsRoot)
    }

    /// Validates a file; returns a one-line summary of what it declares.
    public static func check(path: String) throws(ConfigurationErrors) -> String {
        let configuration = try SRIOVConfiguration.load(path: path)
        let pools = configuration.pfs.reduce(0) { $0 + $1.pools.count }
        return "\(configuration.pfs.count) PF entr\(configuration.pfs.count == 1 ? "y" : "ies"), "
            + "\(pools) pool(s), \(configuration.vfs.count) VF entr\(configuration.vfs.count == 1 ? "y" : "ies")"
    }

    public func bootstrapLogging() {
        let target: SRIOVLogging.Target =
            switch configuration.daemon.logTarget {
            case .auto: .auto
            case .journal: .journal
            case .stderr: .stderr
            }
        SRIOVLogging.bootstrap(target: target, level: configuration.daemon.logLevel)
    }

    public var daemonOptions: DaemonOptions {
        let d = configuration.daemon
        var options = DaemonOptions(
            socketPath: d.socket, socketMode: d.socketMode, socketGroup: d.adminGroup,
            stateDirectory: d.stateDirectory, sysfsRoot: sysfsRoot)
        options.maxRequestBytes = d.maxRequestBytes
        options.readerGroup = d.readerGroup
        options.numVFsTimeout = d.numVFsTimeout
        options.configuration = configuration
        options.configPath = configPath
        return options
    }
}
