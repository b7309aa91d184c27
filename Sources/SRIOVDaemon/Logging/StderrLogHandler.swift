#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// A swift-log handler writing one plain line per record to standard error:
/// `level message key=value ...`, metadata sorted by key, values quoted when
/// they hold spaces, quotes, `=` or control characters (or are empty). For
/// runs outside the journal: a terminal, a container, a test.
public struct StderrLogHandler: LogHandler {
    public typealias Output = @Sendable (_ line: String) -> Void

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public let label: String
    private let output: Output

    /// `output` receives each line, newline included (standard error by default).
    public init(
        label: String, level: Logger.Level = .info, metadataProvider: Logger.MetadataProvider? = nil,
        output: @escaping Output = StderrLogHandler.writeToStandardError
    ) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = LogRecord.mergedMetadata(handler: metadata, provider: metadataProvider, event: event.metadata)
        output(Self.line(for: event, metadata: merged))
    }

    /// `level message key=value ...` and a newline. The message keeps its
    /// text; newlines and other control characters in it are escaped so a
    /// record stays one line.
    static func line(for event: LogEvent, metadata: Logger.Metadata) -> String {
        var line = event.level.rawValue + " " + escapeControls(event.message.description)
        for key in metadata.keys.sorted() {
            line += " " + sanitizedKey(key) + "=" + quotedIfNeeded(LogRecord.render(metadata[key]!))
        }
        if let error = event.error {
            line += " error=" + quotedIfNeeded(String(describing: error))
        }
        return line + "\n"
    }

    /// Keys cannot hold what would break `key=value` parsing: spaces, `=`,
    /// quotes and control characters become `_`.
    static func sanitizedKey(_ key: String) -> String {
        guard !key.isEmpty else { return "_" }
        return String(
            String.UnicodeScalarView(
                key.unicodeScalars.map { scalar in
                    needsQuoting(scalar) ? "_" : scalar
                }))
    }

    static func quotedIfNeeded(_ value: String) -> String {
        guard value.isEmpty || value.unicodeScalars.contains(where: needsQuoting) else { return value }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            default: quoted += escapeControl(scalar)
            }
        }
        return quoted + "\""
    }

    private static func needsQuoting(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\"" || scalar == "=" || scalar == "\\" || isControl(scalar)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7F
    }

    private static func escapeControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        return text.unicodeScalars.map(escapeControl).joined()
    }

    private static func escapeControl(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case _ where isControl(scalar):
            let hex = String(scalar.value, radix: 16)
            return "\\x" + (hex.count < 2 ? "0" + hex : hex)
        default: return String(scalar)
        }
    }

    /// Writes `line` to file descriptor 2 in as few `write` calls as it
    /// takes (one, normally), so concurrent records do not interleave.
    @Sendable
    public static func writeToStandardError(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return  // nowhere left to report a failure to log
                }
            }
        }
    }
}
