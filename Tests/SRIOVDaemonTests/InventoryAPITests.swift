import Foundation
import Hummingbird
import SRIOVCore
import SRIOVHost
import SRIOVRouterTesting
import Testing
import SRIOVHostTesting
@testable import SRIOVDaemon

extension FakeHost {
    /// Two igb PFs: 0000:01:00.0 with 3 VFs, 0000:02:00.0 with 2, each VF
    /// bound to igbvf with its own MAC and VLAN (VF i: VLAN i).
    static func twoPFs() throws -> FakeHost {
        func pf(_ text: String, vfCount: Int) throws -> PF {
            let address = try PCIAddress.parse(text, field: "pf")
            var pf = PF(address: address, vfs: vfCount)
            for i in 0..<vfCount {
                pf.vfs[i]?.settings.mac = try .parse("52:54:00:00:0\(address.bus):0\(i)", field: "mac")
                pf.vfs[i]?.settings.vlan = try VLANID(i)
            }
            return pf
        }
        return FakeHost([try pf("0000:01:00.0", vfCount: 3), try pf("0000:02:00.0", vfCount: 2)])
    }
}

func jsonObject(_ buffer: ByteBuffer) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
    return try #require(object as? [String: Any])
}

@Suite("Inventory API")
struct InventoryAPITests {
    func withApp(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: makeRouter(inventory: try FakeHost.twoPFs()))
        try await app.test(.router, body)
    }

    @Test("GET /v1/health reports ok and the PF count")
    func health() async throws {
        try await withApp { client in
            try await client.execute(uri: "/v1/health", method: .get) { response in
                #expect(response.status == .ok)
                let body = try jsonObject(response.body)
                #expect(body["status"] as? String == "ok")
                #expect(body["pfCount"] as? Int == 2)
            }
        }
    }

    @Test("GET /v1/pfs lists PFs with camelCase fields")
    func pfs() async throws {
        try await withApp { client in
            try await client.execute(uri: "/v1/pfs", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let pfs = try #require(try jsonObject(response.body)["pfs"] as? [[String: Any]])
                #expect(pfs.count == 2)
                #expect(pfs[0]["pciAddress"] as? String == "0000:01:00.0")
                #expect(pfs[0]["totalVFs"] as? Int == 7)
                #expect(pfs[0]["numVFs"] as? Int == 3)
                #expect(pfs[0]["driver"] as? String == "igb")
                #expect(pfs[0]["netdev"] as? String == "enp1s0")
            }
        }
    }

    @Test("GET /v1/pfs/{pciAddress} returns the PF with its VFs; short form accepted")
    func onePF() async throws {
        try await withApp { client in
            try await client.execute(uri: "/v1/pfs/02:00.0", method: .get) { response in
                #expect(response.status == .ok)
                let body = try jsonObject(response.body)
                let pf = try #require(body["pf"] as? [String: Any])
                #expect(pf["pciAddress"] as? String == "0000:02:00.0")
                #expect((body["vfs"] as? [Any])?.count == 2)
            }
        }
    }

    @Test("an unknown PF is a 404 problem document")
    func unknownPF() async throws {
        try await withApp { client in
            try await client.execute(uri: "/v1/pfs/0000:09:00.0", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
                let body = try jsonObject(response.body)
                #expect(body["status"] as? Int == 404)
                #expect((body["detail"] as? String)?.contains("0000:09:00.0") == true)
            }
        }
    }

    @Test("a malformed PCI address is a 400 naming the field")
    func badAddress() async throws {
        try await withApp { client in
            try await client.execute(uri: "/v1/pfs/0000:zz:00.0", method: .get) { response in
                #expect(response.status == .badRequest)
                let body = try jsonObject(response.body)
                #expect(body["field"] as? String == "pciAddress")
                #expect((body["detail"] as? String)?.contains("0000:zz:00.0") == true)
            }
            try await client.execute(uri: "/v1/vfs?pf=eth0", method: .get) { response in
                #expect(response.status == .badRequest)
                let body = try jsonObject(response.body)
                #expect(body["field"] as? String == "pf")
            }
        }
    }

    @Test("GET /v1/vfs lists every VF, flat, and filters by PF")
    func vfs() async throws {
        try await withApp { client in
            try await client.execute(uri: "/v1/vfs", method: .get) { response in
                let vfs = try #require(try jsonObject(response.body)["vfs"] as? [[String: Any]])
                #expect(vfs.count == 5)
                let first = vfs[0]
                for key in ["index", "pf", "pciAddress", "mac", "vlan", "qos", "spoofCheck", "trust", "linkState", "iommuGroup"] {
                    #expect(first[key] != nil, "missing \(key)")
                }
            }
            try await client.execute(uri: "/v1/vfs?pf=0000:02:00.0", method: .get) { response in
                let vfs = try #require(try jsonObject(response.body)["vfs"] as? [[String: Any]])
                #expect(vfs.count == 2)
                #expect(vfs.allSatisfy { $0["pf"] as? String == "0000:02:00.0" })
            }
            try await client.execute(uri: "/v1/vfs?pf=0000:07:00.0", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("an unknown endpoint is a problem document too")
    func unknownEndpoint() async throws {
        try await withApp { client in
            try await client.execute(uri: "/v2/nothing", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
            }
        }
    }
}
