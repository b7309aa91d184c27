import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SRIOVCore
import SRIOVHost
import SRIOVRouterTesting
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

@Suite("Control API")
struct ControlAPITests {
    let host = FakeHost.threeVFs()

    func withApp(limit: Int = 4096, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let store = try StateStore(directory: NSTemporaryDirectory() + "sriovd-api-\(UUID().uuidString)")
        let controller = VFController(
            host: host, store: store, logger: Logger(label: "test"), verifyAttempts: 3, verifyInterval: .milliseconds(1))
        let app = Application(
            router: makeRouter(inventory: try FakeHost.twoPFs(), controller: controller, maxBodyBytes: limit))
        try await app.test(.router, body)
    }

    func patch(_ client: any TestClientProtocol, _ vf: PCIAddress, _ json: String) async throws -> (HTTPResponse.Status, [String: Any]) {
        try await client.execute(
            uri: "/v1/vfs/\(vf)", method: .patch, headers: [.contentType: "application/json"],
            body: ByteBuffer(string: json)
        ) { response in
            (response.status, try jsonObject(response.body))
        }
    }

    @Test("PATCH applies settings and reports each one, with Server-Timing")
    func patchApplies() async throws {
        let vf = host.address(1)
        try await withApp { client in
            try await client.execute(
                uri: "/v1/vfs/\(vf)", method: .patch, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"mac":"52:54:00:00:00:01","vlan":10,"qos":2,"linkState":"enable"}"#)
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("Server-Timing")!]?.contains("netlink;dur=") == true)
                let body = try jsonObject(response.body)
                let results = try #require(body["results"] as? [[String: Any]])
                #expect(results.contains { $0["setting"] as? String == "linkState" && $0["outcome"] as? String == "unsupported" })
                #expect(results.contains { $0["setting"] as? String == "mac" && $0["outcome"] as? String == "applied" })
                #expect((body["vf"] as? [String: Any])?["vlan"] as? Int == 10)
            }
        }
        #expect(host.state.withLock { $0.vfs[1]!.mac?.description } == "52:54:00:00:00:01")
    }

    @Test(
        "bad PATCH bodies are 400s naming the field, and write nothing",
        arguments: [
            (#"{"vlan":4095}"#, "vlan"), (#"{"vlan":1,"qos":8}"#, "qos"), (#"{"mac":"ff:ff:ff:ff:ff:ff"}"#, "mac"),
            (#"{"mac":"52:54:00"}"#, "mac"), (#"{"vlanid":3}"#, "vlanid"), (#"{"trust":"yes"}"#, "trust"),
            (#"{"trust":null}"#, "trust"), (#"[1,2]"#, "body"), (#"{"#, "body"), (#"{}"#, "body"),
            (#"{"linkState":"up"}"#, "linkState"), (#"{"minTxRate":-1}"#, "minTxRate"),
            (#"{"minTxRate":200,"maxTxRate":100}"#, "minTxRate"), (#"{"qos":3}"#, "qos"),
        ])
    func badBodies(json: String, field: String) async throws {
        let vf = host.address(0)
        try await withApp { client in
            let (status, body) = try await patch(client, vf, json)
            #expect(status == .badRequest, "\(json)")
            #expect(body["field"] as? String == field, "\(json): \(body)")
        }
        #expect(host.state.withLock { $0.writes.isEmpty })
    }

    @Test("a body over the limit is 413")
    func tooLarge() async throws {
        let vf = host.address(0)
        try await withApp(limit: 64) { client in
            let padding = String(repeating: " ", count: 200)
            let (status, _) = try await patch(client, vf, #"{"trust":true}"# + padding)
            #expect(status == .contentTooLarge)
        }
        #expect(host.state.withLock { $0.writes.isEmpty })
    }

    @Test("a non-JSON content type is 415")
    func mediaType() async throws {
        let vf = host.address(0)
        try await withApp { client in
            try await client.execute(
                uri: "/v1/vfs/\(vf)", method: .patch, headers: [.contentType: "text/plain"],
                body: ByteBuffer(string: #"{"trust":true}"#)
            ) { response in
                #expect(response.status == .unsupportedMediaType)
            }
        }
    }

    @Test("a failing setting is a 500 with results, and the request's other settings are undone")
    func failureRollsBack() async throws {
        host.state.withLock { $0.failing = [.trust] }
        let vf = host.address(2)
        try await withApp { client in
            let (status, body) = try await patch(client, vf, #"{"mac":"52:54:00:00:00:09","trust":true}"#)
            #expect(status == .internalServerError)
            let results = try #require(body["results"] as? [[String: Any]])
            #expect(results.contains { $0["setting"] as? String == "mac" && $0["outcome"] as? String == "rolledBack" })
            #expect((body["detail"] as? String)?.contains("trust") == true)
        }
        #expect(host.state.withLock { $0.vfs[2]!.mac } == .zero)
    }

    @Test("PUT numVFs: above total 400, in use 409, unknown PF 404, empty body 400")
    func numVFs() async throws {
        let pf = host.pf
        try await withApp { client in
            func put(_ path: String, _ json: String) async throws -> HTTPResponse.Status {
                try await client.execute(
                    uri: path, method: .put, headers: [.contentType: "application/json"], body: ByteBuffer(string: json)
                ) { $0.status }
            }
            #expect(try await put("/v1/pfs/\(pf)", #"{"numVFs":9}"#) == .badRequest)
            #expect(try await put("/v1/pfs/\(pf)", #"{}"#) == .badRequest)
            #expect(try await put("/v1/pfs/0000:09:00.0", #"{"numVFs":1}"#) == .notFound)
            let (status, _) = try await patch(client, host.address(2), #"{"trust":true}"#)
            #expect(status == .ok)
            #expect(try await put("/v1/pfs/\(pf)", #"{"numVFs":1}"#) == .conflict)
        }
        #expect(host.state.withLock { $0.numVFsWrites.isEmpty })
    }

    @Test("driver: unknown name 400, vfio-pci accepted")
    func driver() async throws {
        let vf = host.address(0)
        try await withApp { client in
            try await client.execute(
                uri: "/v1/vfs/\(vf)/driver", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"driver":"e1000"}"#)
            ) { response in
                #expect(response.status == .badRequest)
                let body = try jsonObject(response.body)
                #expect(body["field"] as? String == "driver")
            }
        }
        #expect(host.state.withLock { $0.drivers.isEmpty })
    }
}

@Suite("Control API edge cases found by fuzzing")
struct ControlAPIFuzzFindings {
    let host = FakeHost.threeVFs()

    func withApp(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let store = try StateStore(directory: NSTemporaryDirectory() + "sriovd-api-\(UUID().uuidString)")
        let controller = VFController(
            host: host, store: store, logger: Logger(label: "test"), verifyAttempts: 3, verifyInterval: .milliseconds(1))
        let app = Application(router: makeRouter(inventory: try FakeHost.twoPFs(), controller: controller))
        try await app.test(.router, body)
    }

    @Test("percent-escaped ':' in a path parameter is understood")
    func percentEscapes() async throws {
        try await withApp { client in
            try await client.execute(uri: "/v1/pfs/0000%3A01%3A00.0", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("a fractional or huge number names its field; a range error names it once", arguments: [
        (#"{"vlan":1.5}"#, "vlan"), (#"{"vlan":9223372036854775808}"#, "vlan"), (#"{"maxTxRate":1e30}"#, "maxTxRate"),
    ])
    func numbers(json: String, field: String) async throws {
        let vf = host.address(0)
        try await withApp { client in
            try await client.execute(
                uri: "/v1/vfs/\(vf)", method: .patch, headers: [.contentType: "application/json"], body: ByteBuffer(string: json)
            ) { response in
                #expect(response.status == .badRequest)
                let body = try jsonObject(response.body)
                #expect(body["field"] as? String == field, "\(json): \(body)")
            }
            try await client.execute(
                uri: "/v1/vfs/\(vf)", method: .patch, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"vlan":10,"qos":391}"#)
            ) { response in
                let detail = try jsonObject(response.body)["detail"] as? String ?? ""
                #expect(detail.components(separatedBy: "qos").count == 2, "the field is named once: \(detail)")
            }
        }
    }

    @Test("POST scrub clears a VF: zero MAC, no VLAN, spoof check on, trust off; unsupported link state reported")
    func scrub() async throws {
        let vf = host.address(1)
        try await withApp { client in
            try await client.execute(
                uri: "/v1/vfs/\(vf)", method: .patch, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"mac":"52:54:00:00:00:31","vlan":31,"trust":true,"spoofCheck":false}"#)
            ) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/vfs/\(vf)/scrub", method: .post) { response in
                #expect(response.status == .ok)
                let body = try jsonObject(response.body)
                let results = try #require(body["results"] as? [[String: Any]])
                let outcomes = Dictionary(
                    uniqueKeysWithValues: results.compactMap { r in (r["setting"] as? String).map { ($0, r["outcome"] as? String) } })
                #expect(outcomes["mac"] == "applied" && outcomes["vlan"] == "applied")
                #expect(outcomes["linkState"] == "unsupported")
            }
        }
        let now = host.state.withLock { $0.vfs[1]! }
        #expect(now.mac == .zero && now.vlan == VLANID.none && now.trust == false && now.spoofCheck == true)
    }

    @Test("settings that all come back unsupported leave the VF free (no original recorded)")
    func unsupportedOnly() async throws {
        let vf = host.address(0)
        try await withApp { client in
            try await client.execute(
                uri: "/v1/vfs/\(vf)", method: .patch, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"linkState":"enable"}"#)
            ) { response in
                #expect(response.status == .ok)
            }
            // Lowering the count is not blocked by it.
            try await client.execute(
                uri: "/v1/pfs/\(host.pf)", method: .put, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"numVFs":0}"#)
            ) { response in
                #expect(response.status == .ok)
            }
        }
    }
}
