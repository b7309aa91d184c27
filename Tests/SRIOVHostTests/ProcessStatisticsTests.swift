import Foundation
import Testing

@testable import SRIOVHost

#if canImport(Glibc)
import Glibc
#endif

@Suite("process statistics from procfs")
struct ProcessStatisticsTests {
    /// A /proc/PID/stat line whose command holds a space and a ')', as a
    /// process may name itself: the fields are counted from the last ')'.
    static let stat =
        "4242 (sriov d) x) S 1 4242 4242 0 -1 4194560 1650 0 12 0 250 75 0 0 20 0 9 0 "
        + "123456 1310720000 5120 18446744073709551615 1 1 0 0 0 0 0 4096 17003 0 0 0 17 1 0 0 0 0 0\n"
    static let systemStat = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1764800000\nprocesses 7\n"
    static let limits = """
        Limit                     Soft Limit           Hard Limit           Units
        Max cpu time              unlimited            unlimited            seconds
        Max open files            1024                 524288               files
        Max locked memory         8388608              8388608              bytes

        """

    func parse(stat: String = stat, systemStat: String = systemStat, limits: String = limits) throws(ProcessStatistics.ReadError)
        -> ProcessStatistics
    {
        try ProcessStatistics.parse(
            stat: ("/proc/4242/stat", stat), systemStat: ("/proc/stat", systemStat), limits: ("/proc/4242/limits", limits),
            openFileDescriptors: 9, ticksPerSecond: 100, pageSize: 4096)
    }

    @Test("CPU time is utime + stime in ticks; start is btime + starttime; memory is vsize and rss pages")
    func fields() throws {
        let statistics = try parse()
        #expect(statistics.cpuSeconds == 3.25)  // (250 + 75) / 100
        #expect(statistics.startTimeSeconds == 1_764_801_234.56)  // 1764800000 + 123456 / 100
        #expect(statistics.virtualMemoryBytes == 1_310_720_000)
        #expect(statistics.residentMemoryBytes == 5120 * 4096)
        #expect(statistics.openFileDescriptors == 9)
        #expect(statistics.maxFileDescriptors == 1024)
    }

    @Test("an unlimited soft limit of open files reads as nil")
    func unlimitedFiles() throws {
        let limits = Self.limits.replacingOccurrences(of: "Max open files            1024", with: "Max open files            unlimited")
        #expect(try parse(limits: limits).maxFileDescriptors == nil)
    }

    @Test("a file that does not say what it should is an error naming it and what is missing")
    func malformed() {
        #expect(throws: ProcessStatistics.ReadError(path: "/proc/4242/stat", reason: "no ')' after the command")) {
            try parse(stat: "4242 sriovd S 1")
        }
        #expect(throws: ProcessStatistics.ReadError(path: "/proc/4242/stat", reason: "field 24 (rss) is missing or not a number")) {
            try parse(stat: "4242 (sriovd) S 1 4242 4242 0 -1 4194560 1650 0 12 0 250 75 0 0 20 0 9 0 123456 1310720000\n")
        }
        #expect(throws: ProcessStatistics.ReadError(path: "/proc/stat", reason: "no btime line")) {
            try parse(systemStat: "cpu 1 2 3\n")
        }
        #expect(throws: ProcessStatistics.ReadError(path: "/proc/4242/limits", reason: "no 'Max open files' line")) {
            try parse(limits: "Limit Soft Hard Units\n")
        }
    }

    @Test("this process, read from /proc, agrees with what the C library says of it")
    func thisProcess() throws {
        let statistics = try ProcessStatistics.read()
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        #expect(statistics.maxFileDescriptors.map { rlim_t($0) } == (limit.rlim_cur == rlim_t.max ? nil : limit.rlim_cur))
        #expect(statistics.residentMemoryBytes > 1_000_000 && statistics.virtualMemoryBytes > statistics.residentMemoryBytes)
        let now = Date().timeIntervalSince1970
        #expect(statistics.startTimeSeconds <= now + 1 && statistics.startTimeSeconds > now - 86_400)
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
        #expect(abs(statistics.cpuSeconds - cpu) < 0.5, "procfs \(statistics.cpuSeconds) s, getrusage \(cpu) s")
        // Files opened show in /proc/self/fd (50 of them: other threads of
        // the test run may open or close a few meanwhile).
        let before = try ProcessStatistics.read().openFileDescriptors
        let fds = (0..<50).map { _ in open("/dev/null", O_RDONLY) }
        defer { for fd in fds { close(fd) } }
        #expect(fds.allSatisfy { $0 >= 0 })
        let after = try ProcessStatistics.read().openFileDescriptors
        #expect(after - before >= 45 && after - before <= 55, "before \(before), after \(after)")
    }

    @Test("a procfs that is not there is an error naming the file")
    func missingProc() {
        #expect(throws: ProcessStatistics.ReadError.self) { try ProcessStatistics.read(proc: "/nonexistent-proc") }
    }
}
