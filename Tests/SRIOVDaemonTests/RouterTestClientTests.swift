import HTTPTypes
import Hummingbird
import NIOCore
import SRIOVRouterTesting
import Testing

@Suite("Router test client")
struct RouterTestClientTests {
    @Test("a streamed body is collected chunk by chunk in order, with its trailers")
    func streamedBody() async throws {
        let router = Router()
        router.get("/chunks") { _, _ in
            Response(status: .ok, body: ResponseBody { writer in
                for part in ["one\n", "two\n", "three\n"] { try await writer.write(ByteBuffer(string: part)) }
                try await writer.finish([.server: "end"])
            })
        }
        let response = try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/chunks", method: .get)
        }
        #expect(response.status == .ok)
        #expect(String(buffer: response.body) == "one\ntwo\nthree\n")
        #expect(response.trailerHeaders?[.server] == "end")
    }

    @Test("a body that returns without finish is an error naming the path and what it wrote")
    func unfinishedBody() async throws {
        let router = Router()
        router.get("/open") { _, _ in
            Response(status: .ok, body: ResponseBody { writer in try await writer.write(ByteBuffer(string: "half")) })
        }
        await #expect {
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/open", method: .get)
            }
        } throws: { error in
            "\(error)" == "the response body of /open returned after 4 bytes without finishing"
        }
    }
}
