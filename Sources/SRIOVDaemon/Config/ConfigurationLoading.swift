#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension SRIOVConfiguration {
    /// Largest configuration file read; a bigger one is not a sriovd configuration.
    static let maxFileBytes = 1 << 20

    /// Reads and validates the file at `path`. A missing file is an error:
    /// call this only for a path the operator gave, or for `defaultPath`
    /// when it exists.
    ///
    /// The file is refused when anyone may write it: through it, they could
    /// give themselves control of sriovd, which runs as root.
    public static func load(path: String) throws(ConfigurationErrors) -> SRIOVConfiguration {
        let bytes: [UInt8]
        do {
            bytes = try ConfigurationFile.contents(of: path)
        } catch {
            throw ConfigurationErrors([ConfigurationError(file: path, message: error.message)])
        }
        return try parse(utf8: bytes, fileName: path)
    }
}

/// Reading the file itself: the one place configuration code does I/O.
enum ConfigurationFile {
    struct Failure: Error {
        var message: String
    }

    static func contents(of path: String) throws(Failure) -> [UInt8] {
        var fd: Int32
        repeat {
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw Failure(message: "cannot open the configuration file: \(lastError())") }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw Failure(message: "cannot stat the configuration file: \(lastError())")
        }
        let mode = UInt32(info.st_mode)
        guard mode & 0o170000 == 0o100000 else {
            throw Failure(message: "is not a regular file")
        }
        if mode & 0o002 != 0 {
            throw Failure(
                message: "is writable by every user (mode \(String(mode & 0o7777, radix: 8))), so anyone could take"
                    + " control of sriovd through it; remove that permission (chmod o-w)")
        }
        guard Int(info.st_size) <= SRIOVConfiguration.maxFileBytes else {
            throw Failure(message: "is \(info.st_size) bytes; a configuration file is at most 1 MiB")
        }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(message: "cannot read the configuration file: \(lastError())")
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
            // The file may have grown since fstat.
            guard bytes.count <= SRIOVConfiguration.maxFileBytes else {
                throw Failure(message: "is larger than 1 MiB; a configuration file is at most 1 MiB")
            }
        }
    }

    private static func lastError() -> String {
        String(cString: strerror(errno))
    }
}
