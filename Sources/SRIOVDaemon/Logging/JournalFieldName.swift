/// Turns swift-log metadata keys into journal field names.
///
/// Journal field names are `[A-Z0-9_]`, at most 64 characters, and start with
/// neither `_` (reserved for fields journald itself sets) nor a digit. A key
/// that already is one (`MESSAGE_ID`, `ERRNO`) passes through unchanged;
/// any other key (`pf`, `vf`, `vm`, `nic`, `op`, `error.code`) is upper-cased,
/// has other characters replaced by `_`, and gets the `SRIOVD_` prefix:
/// `SRIOVD_PF`, `SRIOVD_ERROR_CODE`. So do keys naming the fields the log
/// handler writes itself (`MESSAGE`, `PRIORITY`...), which must not be
/// given twice.
enum JournalFieldName {
    static let prefix = "SRIOVD_"
    static let maximumLength = 64
    /// Fields `JournalLogHandler` sets on every record.
    static let handlerFields: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
        "SRIOVD_LOGGER", "SRIOVD_ERROR",
    ]

    static func forMetadataKey(_ key: String) -> String {
        if isValid(key) && !handlerFields.contains(key) { return key }
        var name = prefix
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): name.append(Character(Unicode.Scalar(byte - 32)))
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                name.append(Character(Unicode.Scalar(byte)))
            default:
                // Non-ASCII characters come out as one "_" per UTF-8 byte;
                // rare in keys, and still a valid name.
                name.append("_")
            }
        }
        return String(name.prefix(maximumLength))
    }

    /// A name journald accepts as a field set by a client.
    static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= maximumLength else { return false }
        if first == UInt8(ascii: "_") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }
}
