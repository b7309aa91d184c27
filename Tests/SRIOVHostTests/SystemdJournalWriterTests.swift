import Foundation
import Testing

@testable import SRIOVHost

@Suite("journal writer")
struct SystemdJournalWriterTests {
    @Test("a descriptor matches JOURNAL_STREAM only by its own device and inode")
    func journalStreamMatching() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-js-\(UUID().uuidString)").path
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer {
            close(fd)
            unlink(path)
        }
        var info = stat()
        try #require(fstat(fd, &info) == 0)

        #expect(JournalWriter.fileDescriptor(fd, matchesJournalStream: "\(info.st_dev):\(info.st_ino)"))
        #expect(!JournalWriter.fileDescriptor(fd, matchesJournalStream: "\(info.st_dev):\(info.st_ino + 1)"))
        #expect(!JournalWriter.fileDescriptor(fd, matchesJournalStream: "\(info.st_dev + 1):\(info.st_ino)"))
        for malformed in [nil, "", "\(info.st_dev)", "\(info.st_dev):\(info.st_ino):0", "x:\(info.st_ino)"] {
            #expect(!JournalWriter.fileDescriptor(fd, matchesJournalStream: malformed), "\(malformed ?? "nil")")
        }
        #expect(!JournalWriter.fileDescriptor(-1, matchesJournalStream: "\(info.st_dev):\(info.st_ino)"))
    }

    @Test("a record with no fields is refused with EINVAL")
    func emptyRecord() {
        #expect(JournalWriter().send(fields: []) == -EINVAL)
    }
}
