import Testing

@testable import SRIOVClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("ClientError: what an operator is told")
struct ClientErrorTests {
    let path = "/run/sriovd/sriovd.sock"

    @Test(arguments: [
        (Syscall.connect, ENOENT, ClientError.daemonNotRunning(socketPath: "/run/sriovd/sriovd.sock", code: ENOENT)),
        (.connect, ECONNREFUSED, .daemonNotRunning(socketPath: "/run/sriovd/sriovd.sock", code: ECONNREFUSED)),
        (.connect, EACCES, .permissionDenied(socketPath: "/run/sriovd/sriovd.sock", socketGroup: nil)),
        (.connect, EPERM, .permissionDenied(socketPath: "/run/sriovd/sriovd.sock", socketGroup: nil)),
        (.connect, EAGAIN, .timedOut(socketPath: "/run/sriovd/sriovd.sock", after: .seconds(30))),
        (.recv, EAGAIN, .timedOut(socketPath: "/run/sriovd/sriovd.sock", after: .seconds(30))),
        (.send, EPIPE, .system(call: "send", socketPath: "/run/sriovd/sriovd.sock", code: EPIPE)),
        (.recv, ENOENT, .system(call: "recv", socketPath: "/run/sriovd/sriovd.sock", code: ENOENT)),
        (.socket, EMFILE, .system(call: "socket", socketPath: "/run/sriovd/sriovd.sock", code: EMFILE)),
    ])
    func systemCallFailuresMapToOperatorErrors(call: Syscall, code: Int32, expected: ClientError) {
        // The socket path does not exist on a test machine, so no group can be found for EACCES.
        #expect(ClientError(SyscallError(call: call, code: code), socketPath: path, timeout: .seconds(30)) == expected)
    }

    @Test func permissionDeniedNamesTheGroupTheSocketIsOpenTo() {
        #expect(
            ClientError.permissionDenied(socketPath: path, socketGroup: "sriovd").description
                == "permission denied connecting to sriovd at \(path); members of the sriovd group may use it: "
                + "ask an administrator to add you to the sriovd group")
        #expect(
            ClientError.permissionDenied(socketPath: path, socketGroup: nil).description.hasSuffix(
                "ask an administrator to add you to the sriovd group"))
        #expect(ClientError.permissionDenied(socketPath: path, socketGroup: nil).exitStatus == 77)
    }

    static let rootMissing: String? =
        getuid() == 0 && getgrnam("nogroup") != nil ? nil : "needs root to chown, and a nogroup group"
    /// Where the run requires every test (the rule of TestRequirement in
    /// SRIOVDaemonTests: SRIOVD_REQUIRE_RIG=1, or CI unless SRIOVD_REQUIRE_RIG=0),
    /// a missing root fails rather than skips.
    static var required: Bool {
        func value(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        if let rig = value("SRIOVD_REQUIRE_RIG"), rig == "0" || rig == "1" { return rig == "1" }
        return ["true", "1"].contains(value("CI")?.lowercased() ?? "")
    }

    @Test(.enabled(if: rootMissing == nil || required, Comment(rawValue: rootMissing ?? "")))
    func groupOfAGroupWritableSocketIsFound() throws {
        try #require(Self.rootMissing == nil, "required in this run but unavailable: \(Self.rootMissing ?? "")")
        let directory = try makeTemporaryDirectory()
        let file = directory + "/sriovd.sock"
        close(try listeningSocket(at: file, listen: false))
        defer {
            unlink(file)
            rmdir(directory)
        }
        let nogroup = getgrnam("nogroup")!.pointee.gr_gid
        chown(file, 0, nogroup)
        chmod(file, 0o660)
        #expect(groupAllowedToConnect(to: file) == "nogroup")
        chmod(file, 0o600)  // Open to its owner only: no group to name.
        #expect(groupAllowedToConnect(to: file) == nil)
    }

    @Test func problemWithoutTitleTakesTheReasonPhraseAndTheStatusLineWins() {
        let response = SRIOVClient.Response(
            status: 409, reason: "Conflict", body: Array(#"{"status":400,"detail":"VF 3 is in use by vm1"}"#.utf8))
        #expect(
            ClientError(response: response)
                == .api(.init(title: "Conflict", status: 409, detail: "VF 3 is in use by vm1")))
    }

    @Test func errorWithNeitherBodyNorReasonIsNamedByItsStatus() {
        let error = ClientError(response: SRIOVClient.Response(status: 413))
        #expect(error == .api(.init(title: "Content Too Large", status: 413)))
        #expect(error.description == "Content Too Large")
    }

    @Test func forbiddenWithoutDetailSaysWhomToAsk() {
        let error = ClientError(response: SRIOVClient.Response(status: 403, reason: "Forbidden"))
        #expect(error.description == "Forbidden: ask an administrator to add you to the sriovd group")
    }

    @Test(arguments: [
        (ClientError.daemonNotRunning(socketPath: "/s", code: ENOENT), Int32(69)),
        (.permissionDenied(socketPath: "/s", socketGroup: nil), 77),
        (.forbidden(.init(title: "Forbidden", status: 403)), 77),
        (.api(.init(title: "Not Found", status: 404)), 1),
        (.timedOut(socketPath: "/s", after: .seconds(1)), 75),
        (.malformedResponse("x"), 76),
        (.responseTooLarge(limit: 1), 76),
        (.system(call: "send", socketPath: "/s", code: EPIPE), 71),
        (.invalidRequest("x"), 70),
    ])
    func exitStatusFollowsSysexits(error: ClientError, status: Int32) {
        #expect(error.exitStatus == status)
    }

    @Test func secondsAreWrittenShort() {
        #expect(formatSeconds(.seconds(30)) == "30 s")
        #expect(formatSeconds(.milliseconds(250)) == "0.25 s")
        #expect(formatSeconds(.milliseconds(1500)) == "1.5 s")
    }
}
