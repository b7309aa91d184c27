import ArgumentParser
import SRIOVClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The options every subcommand takes: where sriovd is and how to print.
struct ClientOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "sriovd's socket (default: $SRIOVD_SOCKET, else \(SRIOVClient.defaultSocketPath)).", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("Seconds to wait for sriovd's answer.", valueName: "seconds"))
    var timeout: Double = 30

    @Flag(help: "Print the daemon's JSON, indented with sorted keys, for scripts.")
    var json = false

    func validate() throws {
        guard timeout > 0, timeout <= 3600 else {
            throw ValidationError("--timeout must be more than 0 and at most 3600 seconds")
        }
    }

    var socketPath: String {
        if let socket { return socket }
        if let value = getenv("SRIOVD_SOCKET"), value.pointee != 0 { return String(cString: value) }
        return SRIOVClient.defaultSocketPath
    }

    /// Runs `body` with a client; a failure is printed as "error: ..." on
    /// stderr, followed by "hint: ..." when `hint` has one for it, and ends
    /// the command with its exit status.
    func reportingFailures(
        hint: (ClientError) -> String? = { _ in nil }, _ body: (SRIOVClient) async throws(ClientError) -> Void
    ) async throws {
        do {
            try await body(SRIOVClient(socketPath: socketPath, timeout: .seconds(timeout)))
        } catch {
            writeToStandardError("error: \(error)")
            if let hint = hint(error) { writeToStandardError("hint: \(hint)") }
            throw ExitCode(error.exitStatus)
        }
    }
}

/// One line on stderr, after whatever stdout holds so far.
func writeToStandardError(_ line: String) {
    fflush(nil)
    var bytes = Array((line + "\n").utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        bytes = bytes.dropFirst(written)
    }
}
