import Logging
import SRIOVHost

/// Sets up swift-log for sriovd.
public enum SRIOVLogging {
    public enum Target: Sendable, Hashable {
        /// The journal when standard error is connected to it (started by
        /// systemd), otherwise standard error.
        case auto
        case journal
        case stderr
    }

    /// Installs sriovd's log handlers process-wide. swift-log allows this once
    /// per process: call it first thing in `main`.
    public static func bootstrap(
        target: Target = .auto, level: Logger.Level = .info, metadataProvider: Logger.MetadataProvider? = nil
    ) {
        let resolved = resolve(target)
        LoggingSystem.bootstrap(
            { label, provider in makeHandler(label: label, target: resolved, level: level, metadataProvider: provider) },
            metadataProvider: metadataProvider)
    }

    /// `.journal` or `.stderr`: what `.auto` means in this process right now.
    public static func resolve(_ target: Target) -> Target {
        resolve(target, stderrIsJournalStream: JournalWriter.stderrIsJournalStream())
    }

    static func resolve(_ target: Target, stderrIsJournalStream: Bool) -> Target {
        switch target {
        case .auto: stderrIsJournalStream ? .journal : .stderr
        case .journal, .stderr: target
        }
    }

    /// The handler `bootstrap` installs for `label` (`.auto` is resolved first).
    public static func makeHandler(
        label: String, target: Target, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil
    ) -> any LogHandler {
        switch resolve(target) {
        case .journal:
            JournalLogHandler(label: label, level: level, metadataProvider: metadataProvider)
        case .auto, .stderr:
            StderrLogHandler(label: label, level: level, metadataProvider: metadataProvider)
        }
    }
}
