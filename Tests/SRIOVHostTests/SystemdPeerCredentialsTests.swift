import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import SRIOVHost

@Suite("SO_PEERCRED")
struct SystemdPeerCredentialsTests {
    @Test("the peer of a socketpair's channel is this process, user and group")
    func socketPairPeerIsUs() async throws {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[1]) }
        // The channel owns fds[0] from here and closes it.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .withConnectedSocket(fds[0]).get()
        let peer = await channel.peerCredentials()
        try await channel.close()
        #expect(peer == PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))
    }

}
