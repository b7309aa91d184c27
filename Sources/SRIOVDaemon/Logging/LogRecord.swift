import Logging

/// What both log handlers need from a log event: its metadata merged in
/// swift-log's order (handler, then metadata provider, then the call's own
/// metadata, later ones winning) and rendered to text.
enum LogRecord {
    static func mergedMetadata(
        handler: Logger.Metadata, provider: Logger.MetadataProvider?, event: Logger.Metadata?
    ) -> Logger.Metadata {
        var merged = handler
        if let provided = provider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, new in new }
        }
        if let event, !event.isEmpty {
            merged.merge(event) { _, new in new }
        }
        return merged
    }

    /// A metadata value as text: strings as they are (no quotes), a list
    /// as its values separated by spaces, a dictionary through its description.
    static func render(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(render).joined(separator: " ")
        case .dictionary: value.description
        }
    }
}
