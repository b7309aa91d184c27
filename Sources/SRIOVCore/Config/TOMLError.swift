/// Why a document is not TOML that sriovd's parser accepts, and where.
/// The parser stops at the first such error: after a syntax error the rest
/// of the document cannot be read reliably.
public struct TOMLError: Error, Hashable, Sendable, CustomStringConvertible {
    public var position: TOMLPosition
    /// The full dotted key the error is about, when there is one
    /// (a duplicate key, a redefined table).
    public var key: String?
    public var message: String

    public init(at position: TOMLPosition, key: String? = nil, _ message: String) {
        self.position = position
        self.key = key
        self.message = message
    }

    public var line: Int { position.line }
    public var column: Int { position.column }

    /// `line:column: key: message`.
    public var description: String {
        "\(position): " + (key.map { "\($0): " } ?? "") + message
    }
}
