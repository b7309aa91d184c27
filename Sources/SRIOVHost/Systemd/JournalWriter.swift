#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd

/// Writes structured records to the systemd journal (`sd_journal_sendv`).
///
/// When journald's socket does not exist, libsystemd drops records and still
/// reports success: choose the journal only when `stderrIsJournalStream()`
/// (or another sign of journald) says it is there.
public struct JournalWriter: Sendable {
    public init() {}

    /// Sends one record of `fields`, each `(NAME, value)`. Names must be
    /// journal field names (`[A-Z0-9_]`, not starting with `_` or a digit);
    /// journald drops fields whose names are not. Values may hold newlines.
    /// Returns 0, or a negative errno value.
    @discardableResult
    public func send(fields: [(String, String)]) -> Int32 {
        guard !fields.isEmpty else { return -EINVAL }
        // One buffer holding every "NAME=value", and an iovec per field into it.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 1 })
        var spans: [(offset: Int, count: Int)] = []
        spans.reserveCapacity(fields.count)
        for (name, value) in fields {
            let start = bytes.count
            bytes.append(contentsOf: name.utf8)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: value.utf8)
            spans.append((start, bytes.count - start))
        }
        return bytes.withUnsafeMutableBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return -EINVAL }
            let vectors = spans.map { iovec(iov_base: base + $0.offset, iov_len: $0.count) }
            return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        }
    }

    /// Whether standard error is connected to the journal: `JOURNAL_STREAM`
    /// ("device:inode", set by systemd for StandardError=journal) names the
    /// file descriptor 2 really has. False under a terminal, or when stderr
    /// was redirected after systemd started the process.
    public static func stderrIsJournalStream() -> Bool {
        let value = getenv("JOURNAL_STREAM").map { String(cString: $0) }
        return fileDescriptor(STDERR_FILENO, matchesJournalStream: value)
    }

    /// Whether `fd` is the stream `journalStream` ("device:inode", decimal)
    /// names.
    public static func fileDescriptor(_ fd: Int32, matchesJournalStream journalStream: String?) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else {
            return false
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}
