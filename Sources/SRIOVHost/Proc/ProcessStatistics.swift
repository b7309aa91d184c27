#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the Prometheus client libraries export about a process (their
/// "process metrics"), read from procfs as they read it:
/// `/proc/PID/stat` (CPU time, start, memory), `/proc/stat` (the boot time
/// the start is counted from), `/proc/PID/limits` (the soft limit of open
/// files) and `/proc/PID/fd` (the open files).
public struct ProcessStatistics: Sendable, Equatable {
    /// User and system CPU time, in seconds.
    public var cpuSeconds: Double
    /// When the process started, in seconds since the Unix epoch.
    public var startTimeSeconds: Double
    public var residentMemoryBytes: UInt64
    public var virtualMemoryBytes: UInt64
    public var openFileDescriptors: Int
    /// The soft limit of open files; nil when unlimited.
    public var maxFileDescriptors: UInt64?

    public init(
        cpuSeconds: Double, startTimeSeconds: Double, residentMemoryBytes: UInt64, virtualMemoryBytes: UInt64,
        openFileDescriptors: Int, maxFileDescriptors: UInt64?
    ) {
        self.cpuSeconds = cpuSeconds
        self.startTimeSeconds = startTimeSeconds
        self.residentMemoryBytes = residentMemoryBytes
        self.virtualMemoryBytes = virtualMemoryBytes
        self.openFileDescriptors = openFileDescriptors
        self.maxFileDescriptors = maxFileDescriptors
    }

    /// A procfs file that could not be read or did not say what it should.
    public struct ReadError: Error, Sendable, Equatable, CustomStringConvertible {
        public var path: String
        public var reason: String

        public var description: String { "\(path): \(reason)" }
    }

    /// The process `pid` ("self": this one) as procfs at `proc` shows it.
    /// Clock ticks and the page size are the kernel's (`sysconf`).
    public static func read(proc: String = "/proc", pid: String = "self") throws(ReadError) -> ProcessStatistics {
        let files = SysfsTree(root: proc)
        func text(_ name: String) throws(ReadError) -> String {
            do { return try files.readFile(proc + "/" + name) } catch {
                throw ReadError(path: error.path, reason: "\(error.operation): errno \(error.errno)")
            }
        }
        let fds: [String]
        do { fds = try files.listDirectory(proc + "/\(pid)/fd") } catch {
            throw ReadError(path: error.path, reason: "\(error.operation): errno \(error.errno)")
        }
        return try parse(
            stat: (path: proc + "/\(pid)/stat", text: try text("\(pid)/stat")),
            systemStat: (path: proc + "/stat", text: try text("stat")),
            limits: (path: proc + "/\(pid)/limits", text: try text("\(pid)/limits")),
            openFileDescriptors: fds.count,
            ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))), pageSize: UInt64(sysconf(Int32(_SC_PAGESIZE))))
    }

    /// The statistics from the text of the files (`path` names each in an error).
    static func parse(
        stat: (path: String, text: String), systemStat: (path: String, text: String),
        limits: (path: String, text: String), openFileDescriptors: Int, ticksPerSecond: Double, pageSize: UInt64
    ) throws(ReadError) -> ProcessStatistics {
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses,
        // so the fields are counted from the last ')'. Field 3 (state) is [0].
        guard let close = stat.text.lastIndex(of: ")") else {
            throw ReadError(path: stat.path, reason: "no ')' after the command")
        }
        let fields = stat.text[stat.text.index(after: close)...].split { $0 == " " || $0 == "\n" }
        func field(_ number: Int, _ name: String) throws(ReadError) -> UInt64 {
            guard fields.count > number - 3, let value = UInt64(fields[number - 3]) else {
                throw ReadError(path: stat.path, reason: "field \(number) (\(name)) is missing or not a number")
            }
            return value
        }
        let ticks = try field(14, "utime") + field(15, "stime")
        let startTicks = try field(22, "starttime")
        let virtualBytes = try field(23, "vsize")
        let residentPages = try field(24, "rss")

        let btime = systemStat.text.split(separator: "\n").first { $0.hasPrefix("btime ") }
        guard let bootTime = btime.flatMap({ $0.split(separator: " ").last }).flatMap({ Double($0) }) else {
            throw ReadError(path: systemStat.path, reason: "no btime line")
        }

        // "Max open files            1024                 524288               files"
        guard let line = limits.text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files ") }),
            let soft = line.dropFirst("Max open files ".count).split(separator: " ").first
        else { throw ReadError(path: limits.path, reason: "no 'Max open files' line") }
        let maxFiles: UInt64?
        if soft == "unlimited" {
            maxFiles = nil
        } else if let value = UInt64(soft) {
            maxFiles = value
        } else {
            throw ReadError(path: limits.path, reason: "the soft limit of open files '\(soft)' is not a number")
        }

        return ProcessStatistics(
            cpuSeconds: Double(ticks) / ticksPerSecond,
            startTimeSeconds: bootTime + Double(startTicks) / ticksPerSecond,
            residentMemoryBytes: residentPages * pageSize, virtualMemoryBytes: virtualBytes,
            openFileDescriptors: openFileDescriptors, maxFileDescriptors: maxFiles)
    }
}
