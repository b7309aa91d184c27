import Foundation
import Logging
import Testing
@testable import SRIOVDaemon

#if canImport(Glibc)
import Glibc
#endif

/// One record of journald's native protocol: fields in the order sent. A
/// field is `NAME=value\n`, or, for a value that may hold newlines,
/// `NAME\n`, the value's length as a 64-bit little-endian integer, the value,
/// and `\n`.
struct NativeJournalRecord {
    var fields: [(name: String, value: [UInt8])]

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    init(datagram: [UInt8]) throws {
        fields = []
        var i = 0
        while i < datagram.count {
            guard let end = datagram[i...].firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\n") }) else {
                throw Malformed(description: "field at byte \(i) has neither '=' nor a newline")
            }
            let name = String(decoding: datagram[i..<end], as: UTF8.self)
            if datagram[end] == UInt8(ascii: "=") {
                guard let newline = datagram[end...].firstIndex(of: UInt8(ascii: "\n")) else {
                    throw Malformed(description: "field \(name) does not end with a newline")
                }
                fields.append((name, Array(datagram[(end + 1)..<newline])))
                i = newline + 1
            } else {
                let start = end + 1 + 8
                guard start <= datagram.count else { throw Malformed(description: "field \(name) has no length") }
                let length = datagram[(end + 1)..<start].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                guard length <= UInt64(datagram.count - start), start + Int(length) < datagram.count,
                    datagram[start + Int(length)] == UInt8(ascii: "\n")
                else { throw Malformed(description: "field \(name) is shorter than its length \(length)") }
                fields.append((name, Array(datagram[start..<(start + Int(length))])))
                i = start + Int(length) + 1
            }
        }
    }

    subscript(name: String) -> String? {
        fields.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// Splits what scripts/capture-journal.sh wrote: each datagram as an
    /// 8-byte little-endian length and its bytes.
    static func records(inCapture data: [UInt8]) throws -> [NativeJournalRecord] {
        var records: [NativeJournalRecord] = []
        var i = 0
        while i < data.count {
            guard i + 8 <= data.count else { throw Malformed(description: "capture truncated at byte \(i)") }
            let length = Int(data[i..<(i + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            guard length <= data.count - i - 8 else { throw Malformed(description: "capture truncated at byte \(i)") }
            records.append(try NativeJournalRecord(datagram: Array(data[(i + 8)..<(i + 8 + length)])))
            i += 8 + length
        }
        return records
    }
}

@Suite("Journal records on the wire")
struct JournalCaptureTests {
    static var unavailableReason: String? {
        if getuid() != 0 { return "needs root (unshare -m and a tmpfs on /run/systemd)" }
        if !Checkout.hasTool("unshare") { return "unshare is not installed" }
        if !Checkout.hasTool("python3") { return "python3 is not installed" }
        if !FileManager.default.isExecutableFile(atPath: Checkout.sriovd) { return "sriovd is not built at \(Checkout.sriovd)" }
        return nil
    }

    @Test(
        "sriovd's startup record reaches journald's socket with its structured fields (needs root)",
        .needing(unavailableReason))
    func startupRecordAsRoot() async throws {
        try TestRequirement.check(Self.unavailableReason)
        let dir = try Checkout.temporaryDirectory("sriovd-journal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, output) = try await Checkout.runOffPool(["bash", "scripts/capture-journal.sh", dir, Checkout.sriovd])
        try #require(status == 0, "\(output)")

        let exit = try String(contentsOfFile: dir + "/sriovd.exit", encoding: .utf8)
        #expect(exit.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "sriovd exit status")
        // Nothing fell back to standard error: the journal took every record.
        let stderr = try String(contentsOfFile: dir + "/sriovd.stderr", encoding: .utf8)
        #expect(stderr.isEmpty, "\(stderr)")

        let records = try NativeJournalRecord.records(
            inCapture: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/journal.bin"))))
        let messages = records.compactMap { $0["MESSAGE"] }
        let ready = try #require(records.first { $0["MESSAGE"] == "sriovd ready" }, "records: \(messages)")
        #expect(ready["PRIORITY"] == "6")
        #expect(ready["SYSLOG_IDENTIFIER"] == "sriovd")
        #expect(ready["MESSAGE_ID"] == MessageID.sriovdStarted.id)
        #expect(ready["SRIOVD_SOCKET"] == dir + "/api.sock")
        #expect(ready["SRIOVD_PFS"] == "0")
        #expect(ready["SRIOVD_VERSION"] == sriovdVersion)
        #expect(ready["SRIOVD_ACTIVATED"] == "false")
        #expect(ready["SRIOVD_LOGGER"] == "sriovd")
        #expect(ready["CODE_FILE"]?.hasSuffix("Daemon.swift") == true)
        #expect(ready["CODE_LINE"].flatMap { Int($0) } != nil)
        // Every field name is one journald accepts from a client.
        for record in records {
            for field in record.fields {
                #expect(JournalFieldName.isValid(field.name), "\(field.name) in \(record["MESSAGE"] ?? "?")")
            }
            #expect(record["SYSLOG_IDENTIFIER"] == "sriovd")
            #expect(record["PRIORITY"].flatMap { Int($0) }.map { (0...7).contains($0) } == true)
        }
        // The rest of the lifecycle, in order.
        let lifecycle = messages.filter { ["sriovd ready", "shutting down", "sriovd stopped"].contains($0) }
        #expect(lifecycle == ["sriovd ready", "shutting down", "sriovd stopped"], "\(messages)")
    }

    @Test("the native protocol parser reads both field forms")
    func parsesBothForms() throws {
        var datagram = Array("MESSAGE=hello\nPRIORITY=6\nSRIOVD_ERROR\n".utf8)
        let value = Array("two\nlines=".utf8)
        withUnsafeBytes(of: UInt64(value.count).littleEndian) { datagram += $0 }
        datagram += value + [UInt8(ascii: "\n")] + Array("EMPTY=\n".utf8)
        let record = try NativeJournalRecord(datagram: datagram)
        #expect(record.fields.map(\.name) == ["MESSAGE", "PRIORITY", "SRIOVD_ERROR", "EMPTY"])
        #expect(record["SRIOVD_ERROR"] == "two\nlines=")
        #expect(record["EMPTY"] == "")
        #expect(throws: NativeJournalRecord.Malformed.self) { try NativeJournalRecord(datagram: Array("NAME".utf8)) }
        #expect(throws: NativeJournalRecord.Malformed.self) {
            try NativeJournalRecord(datagram: Array("NAME\n\u{10}\0\0\0\0\0\0\0short\n".utf8))
        }
    }

    @Test("message ids are distinct 128-bit ids, attached as MESSAGE_ID, which the journal keeps as is")
    func messageIDs() {
        let ids = MessageID.all.map(\.id)
        #expect(Set(ids).count == ids.count)
        #expect(Set(MessageID.all.map(\.name)).count == ids.count)
        for id in ids {
            #expect(id.count == 32 && id.allSatisfy { "0123456789abcdef".contains($0) }, "\(id)")
        }
        let metadata = Logger.Metadata.event(.vfConfigured, ["vf": "0000:01:10.0"])
        #expect(metadata["MESSAGE_ID"] == .string(MessageID.vfConfigured.id))
        #expect(metadata["vf"] == "0000:01:10.0")
        #expect(JournalFieldName.forMetadataKey("MESSAGE_ID") == "MESSAGE_ID")
    }
}
