import Foundation
import Logging
import Synchronization
import Testing

@testable import SRIOVDaemon

/// Stands in for journald and standard error: keeps what handlers hand over.
private final class LoggingCapture: Sendable {
    private let records = Mutex<[[(String, String)]]>([])
    private let lines = Mutex<[String]>([])
    let sinkResult: Int32

    init(sinkResult: Int32 = 0) { self.sinkResult = sinkResult }

    var journalRecords: [[(String, String)]] { records.withLock { $0 } }
    var stderrLines: [String] { lines.withLock { $0 } }

    func journalLogger(level: Logger.Level = .trace, provider: Logger.MetadataProvider? = nil) -> Logger {
        Logger(label: "sriovd.test") { label in
            JournalLogHandler(
                label: label, level: level, metadataProvider: provider,
                sink: { fields in
                    self.records.withLock { $0.append(fields) }
                    return self.sinkResult
                },
                fallback: { line in self.lines.withLock { $0.append(line) } })
        }
    }

    func stderrLogger(level: Logger.Level = .trace) -> Logger {
        Logger(label: "sriovd.test") { label in
            StderrLogHandler(label: label, level: level, output: { line in self.lines.withLock { $0.append(line) } })
        }
    }
}

private struct VFError: Error, CustomStringConvertible {
    var description: String { "set trust on VF 3: Operation not permitted" }
}

/// The value of the one field named `name`, failing the test when there are
/// none or several.
private func field(_ name: String, in record: [(String, String)]) -> String? {
    let values = record.filter { $0.0 == name }.map(\.1)
    #expect(values.count <= 1, "\(name) given \(values.count) times")
    return values.first
}

@Suite("journal log handler")
struct LoggingJournalHandlerTests {
    @Test("one record per call with message, priority, identifier and code location")
    func standardFields() throws {
        let capture = LoggingCapture()
        let logger = capture.journalLogger()
        let line: UInt = #line + 1
        logger.notice("VF trust set")

        let record = try #require(capture.journalRecords.only)
        #expect(field("MESSAGE", in: record) == "VF trust set")
        #expect(field("PRIORITY", in: record) == "5")
        #expect(field("SYSLOG_IDENTIFIER", in: record) == "sriovd")
        #expect(field("CODE_FILE", in: record) == #fileID)
        #expect(field("CODE_LINE", in: record) == String(line))
        #expect(field("CODE_FUNC", in: record) == #function)
        #expect(field("SRIOVD_LOGGER", in: record) == "sriovd.test")
        #expect(record.prefix(3).map(\.0) == ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"])
    }

    @Test(
        "swift-log levels map to syslog priorities",
        arguments: [
            (Logger.Level.trace, "7"), (.debug, "7"), (.info, "6"), (.notice, "5"), (.warning, "4"),
            (.error, "3"), (.critical, "2"),
        ])
    func priorities(level: Logger.Level, priority: String) throws {
        let capture = LoggingCapture()
        capture.journalLogger().log(level: level, "x")
        #expect(field("PRIORITY", in: try #require(capture.journalRecords.only)) == priority)
    }

    @Test("metadata keys become SRIOVD_ fields; keys already in journal form pass through")
    func metadataFields() throws {
        let capture = LoggingCapture()
        let logger = capture.journalLogger()
        logger.info(
            "VF configured",
            metadata: [
                "pf": "0000:03:00.0", "vf": "3", "vm": "web-1", "nic": "enp3s0f0", "op": "set-vlan",
                "MESSAGE_ID": "0b8b7d6c0c1e4a8e9c3f1d2e3a4b5c6d", "error.code": "-95", "vlan": .stringConvertible(100),
            ])

        let record = try #require(capture.journalRecords.only)
        #expect(field("SRIOVD_PF", in: record) == "0000:03:00.0")
        #expect(field("SRIOVD_VF", in: record) == "3")
        #expect(field("SRIOVD_VM", in: record) == "web-1")
        #expect(field("SRIOVD_NIC", in: record) == "enp3s0f0")
        #expect(field("SRIOVD_OP", in: record) == "set-vlan")
        #expect(field("SRIOVD_ERROR_CODE", in: record) == "-95")
        #expect(field("SRIOVD_VLAN", in: record) == "100")
        #expect(field("MESSAGE_ID", in: record) == "0b8b7d6c0c1e4a8e9c3f1d2e3a4b5c6d")
        #expect(record.allSatisfy { JournalFieldName.isValid($0.0) }, "\(record.map(\.0))")
    }

    @Test("a list is the field repeated, once per value, in order; on stderr its values separated by spaces")
    func listsRepeatTheField() throws {
        let capture = LoggingCapture()
        capture.journalLogger().notice("migration prepared", metadata: ["vm": "vm1", "nic": ["net0", "net1"]])
        let record = try #require(capture.journalRecords.only)
        #expect(record.filter { $0.0 == "SRIOVD_NIC" }.map(\.1) == ["net0", "net1"])
        #expect(record.filter { $0.0 == "SRIOVD_VM" }.map(\.1) == ["vm1"])
        capture.stderrLogger().notice("migration prepared", metadata: ["nic": ["net0", "net1"]])
        #expect(capture.stderrLines == ["notice migration prepared nic=\"net0 net1\"\n"])
    }

    @Test("keys that would clash with the handler's own or journald's fields are prefixed, never dropped")
    func clashingKeys() throws {
        let capture = LoggingCapture()
        capture.journalLogger().info(
            "m", metadata: ["MESSAGE": "spoof", "PRIORITY": "0", "_PID": "1", "9lives": "cat", "": "empty"])

        let record = try #require(capture.journalRecords.only)
        #expect(field("MESSAGE", in: record) == "m")
        #expect(field("PRIORITY", in: record) == "6")
        #expect(field("SRIOVD_MESSAGE", in: record) == "spoof")
        #expect(field("SRIOVD_PRIORITY", in: record) == "0")
        #expect(field("SRIOVD__PID", in: record) == "1")
        #expect(field("SRIOVD_9LIVES", in: record) == "cat")
        #expect(field("SRIOVD_", in: record) == "empty")
        #expect(field("_PID", in: record) == nil)
    }

    @Test("call metadata overrides the provider's, which overrides the logger's")
    func metadataPrecedence() throws {
        let capture = LoggingCapture()
        let provider = Logger.MetadataProvider { ["vm": "from-provider", "op": "from-provider"] }
        var logger = capture.journalLogger(provider: provider)
        logger[metadataKey: "pf"] = "0000:03:00.0"
        logger[metadataKey: "vm"] = "from-logger"
        logger.info("m", metadata: ["op": "from-call"])

        let record = try #require(capture.journalRecords.only)
        #expect(field("SRIOVD_PF", in: record) == "0000:03:00.0")
        #expect(field("SRIOVD_VM", in: record) == "from-provider")
        #expect(field("SRIOVD_OP", in: record) == "from-call")
    }

    @Test("an attached error becomes SRIOVD_ERROR")
    func attachedError() throws {
        let capture = LoggingCapture()
        capture.journalLogger().error("cannot set trust", error: VFError())
        let record = try #require(capture.journalRecords.only)
        #expect(field("SRIOVD_ERROR", in: record) == "set trust on VF 3: Operation not permitted")
    }

    @Test("a multi-line message stays one MESSAGE field")
    func multiLineMessage() throws {
        let capture = LoggingCapture()
        capture.journalLogger().info("first\nsecond")
        #expect(field("MESSAGE", in: try #require(capture.journalRecords.only)) == "first\nsecond")
    }

    @Test("records below the level are not sent")
    func levelFilters() {
        let capture = LoggingCapture()
        let logger = capture.journalLogger(level: .warning)
        logger.info("dropped")
        logger.warning("kept")
        #expect(capture.journalRecords.map { field("MESSAGE", in: $0) } == ["kept"])
    }

    @Test("a record the journal refuses is written to the fallback as a stderr line")
    func refusedRecordFallsBack() {
        let capture = LoggingCapture(sinkResult: -ECONNREFUSED)
        capture.journalLogger().warning("journal down", metadata: ["pf": "0000:03:00.0"])
        #expect(capture.journalRecords.count == 1)
        #expect(capture.stderrLines == ["warning journal down pf=0000:03:00.0\n"])
    }
}

@Suite("journal field names")
struct LoggingJournalFieldNameTests {
    @Test(
        "metadata keys map to valid journal field names",
        arguments: [
            ("pf", "SRIOVD_PF"), ("vf", "SRIOVD_VF"), ("MESSAGE_ID", "MESSAGE_ID"), ("ERRNO", "ERRNO"),
            ("error.code", "SRIOVD_ERROR_CODE"), ("Mixed-Case", "SRIOVD_MIXED_CASE"), ("_PID", "SRIOVD__PID"),
            ("1st", "SRIOVD_1ST"), ("MESSAGE", "SRIOVD_MESSAGE"), ("é", "SRIOVD___"),
        ])
    func mapping(key: String, name: String) {
        #expect(JournalFieldName.forMetadataKey(key) == name)
        #expect(JournalFieldName.isValid(name))
    }

    @Test("names are cut to journald's 64 characters")
    func longKeys() {
        let name = JournalFieldName.forMetadataKey(String(repeating: "k", count: 100))
        #expect(name.count == 64 && name.hasPrefix("SRIOVD_KKK"))
        #expect(!JournalFieldName.isValid(String(repeating: "K", count: 65)))
    }
}

@Suite("stderr log handler")
struct LoggingStderrHandlerTests {
    @Test("one line: level, message, then metadata sorted by key")
    func plainLine() {
        let capture = LoggingCapture()
        capture.stderrLogger().info("VF configured", metadata: ["vf": "3", "pf": "0000:03:00.0", "op": "set-vlan"])
        #expect(capture.stderrLines == ["info VF configured op=set-vlan pf=0000:03:00.0 vf=3\n"])
    }

    @Test("values with spaces, quotes, '=' or newlines are quoted and escaped; empty values too")
    func quoting() {
        let capture = LoggingCapture()
        capture.stderrLogger().error(
            "failed",
            metadata: [
                "a": "two words", "b": "say \"hi\"", "c": "k=v", "d": "line1\nline2", "e": "", "f": "back\\slash",
                "g": "tab\there",
            ])
        #expect(
            capture.stderrLines == [
                #"error failed a="two words" b="say \"hi\"" c="k=v" d="line1\nline2" e="" f="back\\slash" g="tab\there""#
                    + "\n"
            ])
    }

    @Test("a multi-line message is kept on one line; an attached error comes last")
    func oneLinePerRecord() {
        let capture = LoggingCapture()
        capture.stderrLogger().error("first\nsecond", error: VFError(), metadata: ["pf": "0000:03:00.0"])
        #expect(
            capture.stderrLines == [
                #"error first\nsecond pf=0000:03:00.0 error="set trust on VF 3: Operation not permitted""# + "\n"
            ])
    }

    @Test("keys cannot break key=value parsing")
    func keySanitising() {
        let capture = LoggingCapture()
        capture.stderrLogger().info("m", metadata: ["a key": "1", "k=v": "2"])
        #expect(capture.stderrLines == ["info m a_key=1 k_v=2\n"])
    }
}

@Suite("logging bootstrap")
struct LoggingBootstrapTests {
    @Test("auto means the journal exactly when stderr is the journal stream")
    func autoTarget() {
        #expect(SRIOVLogging.resolve(.auto, stderrIsJournalStream: true) == .journal)
        #expect(SRIOVLogging.resolve(.auto, stderrIsJournalStream: false) == .stderr)
        #expect(SRIOVLogging.resolve(.journal, stderrIsJournalStream: false) == .journal)
        #expect(SRIOVLogging.resolve(.stderr, stderrIsJournalStream: true) == .stderr)
    }

    @Test("explicit targets get their handler, at the level asked for")
    func handlers() {
        let journal = SRIOVLogging.makeHandler(label: "l", target: .journal, level: .debug)
        #expect(journal is JournalLogHandler && journal.logLevel == .debug)
        let stderr = SRIOVLogging.makeHandler(label: "l", target: .stderr, level: .warning)
        #expect(stderr is StderrLogHandler && stderr.logLevel == .warning)
    }
}

extension Array {
    /// The single element, or nil when there are none or several.
    fileprivate var only: Element? { count == 1 ? first : nil }
}
