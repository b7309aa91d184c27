/// One problem with a configuration file: where it is, which key, and why.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based; nil when the problem is the file as a whole (e.g. missing).
    public var line: Int?
    public var column: Int?
    /// The key as an operator would look for it: `daemon.socket_mode`,
    /// `pf[0].pool[1].vfs`; nil for syntax errors outside any key.
    public var key: String?
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, key: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    /// `sriovd.toml:12:5: pf[0].num_vfs: expected an integer, found string "seven"`.
    public var description: String {
        var s = file
        if let line {
            s += ":\(line)"
            if let column { s += ":\(column)" }
        }
        s += ": "
        if let key { s += "\(key): " }
        return s + message
    }
}

/// Every problem found in a configuration file, in file order. Reading does
/// not stop at the first problem, so an operator can fix them all at once.
public struct ConfigurationErrors: Error, Hashable, Sendable, CustomStringConvertible {
    public var errors: [ConfigurationError]

    public init(_ errors: [ConfigurationError]) {
        self.errors = errors
    }

    /// One problem per line.
    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}
