import Logging
import SRIOVHost

/// A swift-log handler that writes each log call as one journal record:
/// MESSAGE, PRIORITY (syslog 0-7), SYSLOG_IDENTIFIER, CODE_FILE, CODE_LINE,
/// CODE_FUNC, SRIOVD_LOGGER (the logger's label), SRIOVD_ERROR (when an error
/// is attached), and one field per metadata key, named by `JournalFieldName`
/// (`pf` → `SRIOVD_PF`; `MESSAGE_ID` stays `MESSAGE_ID`).
///
/// `journalctl SRIOVD_PF=0000:03:00.0` then lists everything that happened to
/// one PF.
public struct JournalLogHandler: LogHandler {
    /// Receives each record's fields in order; returns 0 or a negative errno
    /// value (as `JournalWriter.send(fields:)` does).
    public typealias Sink = @Sendable (_ fields: [(String, String)]) -> Int32
    /// Receives a record, as one `StderrLogHandler` line, that the sink refused.
    public typealias Fallback = @Sendable (_ line: String) -> Void

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public let label: String
    public let syslogIdentifier: String
    private let sink: Sink
    private let fallback: Fallback

    /// Writes to the journal through `writer`.
    public init(
        label: String, level: Logger.Level = .info, syslogIdentifier: String = "sriovd",
        writer: JournalWriter = JournalWriter(), metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.init(
            label: label, level: level, syslogIdentifier: syslogIdentifier, metadataProvider: metadataProvider,
            sink: { writer.send(fields: $0) })
    }

    /// Writes to `sink` (tests; anything that wants the fields), and records
    /// the sink refuses to `fallback` (standard error by default).
    public init(
        label: String, level: Logger.Level = .info, syslogIdentifier: String = "sriovd",
        metadataProvider: Logger.MetadataProvider? = nil, sink: @escaping Sink,
        fallback: @escaping Fallback = StderrLogHandler.writeToStandardError
    ) {
        self.label = label
        self.logLevel = level
        self.syslogIdentifier = syslogIdentifier
        self.metadataProvider = metadataProvider
        self.sink = sink
        self.fallback = fallback
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = LogRecord.mergedMetadata(handler: metadata, provider: metadataProvider, event: event.metadata)
        let result = sink(fields(for: event, metadata: merged))
        if result < 0 {
            fallback(StderrLogHandler.line(for: event, metadata: merged))
        }
    }

    /// The record's fields: the handler's own first, then metadata sorted by key.
    func fields(for event: LogEvent, metadata: Logger.Metadata) -> [(String, String)] {
        var fields: [(String, String)] = [
            ("MESSAGE", event.message.description),
            ("PRIORITY", String(Self.priority(event.level))),
            ("SYSLOG_IDENTIFIER", syslogIdentifier),
            ("CODE_FILE", event.file),
            ("CODE_LINE", String(event.line)),
            ("CODE_FUNC", event.function),
            ("SRIOVD_LOGGER", label),
        ]
        if let error = event.error {
            fields.append(("SRIOVD_ERROR", String(describing: error)))
        }
        for key in metadata.keys.sorted() {
            let name = JournalFieldName.forMetadataKey(key)
            // A list is the field repeated, journald's own way to give one
            // record several values (`journalctl SRIOVD_NIC=net1` finds it).
            let values: [Logger.MetadataValue]
            if case .array(let list) = metadata[key]! { values = list } else { values = [metadata[key]!] }
            for value in values { fields.append((name, LogRecord.render(value))) }
        }
        return fields
    }

    /// swift-log level → syslog priority (what PRIORITY= holds).
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7  // LOG_DEBUG
        case .info: 6  // LOG_INFO
        case .notice: 5  // LOG_NOTICE
        case .warning: 4  // LOG_WARNING
        case .error: 3  // LOG_ERR
        case .critical: 2  // LOG_CRIT
        }
    }
}
