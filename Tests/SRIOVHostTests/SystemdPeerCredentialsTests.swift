import Foundation
import Testing

@testable import SRIOVHost

@Suite("SO_PEERCRED")
struct SystemdPeerCredentialsTests {
    @Test("the peer of a socketpair is this process, user and group")
    func socketPairPeerIsUs() throws {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { fds.forEach { close($0) } }

        let peer = try PeerCredentials(socket: fds[0])

        #expect(peer == PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))
    }

    @Test("a descriptor that is not a socket is an error naming errno")
    func notASocket() throws {
        let fd = open("/dev/null", O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(throws: PeerCredentialsError(fileDescriptor: fd, errno: ENOTSOCK)) {
            try PeerCredentials(socket: fd)
        }
    }
}
