import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SRIOVAPI
import SRIOVCore
import SRIOVHost
import Synchronization
import SRIOVRouterTesting
import Testing

import SRIOVHostTesting
@testable import SRIOVDaemon

#if canImport(Glibc)
import Glibc
#endif

/// docs/openapi.yaml describes the API the daemon serves: every route the
/// router registers is documented (and nothing else), the document is valid
/// OpenAPI 3.1, and a live sriovd (on a fake sysfs tree) answers as it says,
/// under schemathesis fuzzing (scripts/api-fuzz.sh).
@Suite struct OpenAPIConformanceTests {
    static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    static var documentPath: String { repoRoot.appendingPathComponent("docs/openapi.yaml").path }

    /// A python3 with these modules, or nil: on PATH, or in the usual places.
    static func python(with modules: [String]) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/python3" }
            + ["/usr/local/bin/python3", "/usr/bin/python3"]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            let check = "import " + modules.joined(separator: ", ")
            if let result = try? run(candidate, ["-c", check]), result.status == 0 { return candidate }
        }
        return nil
    }

    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs a program to its end; stdout and stderr together.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = repoRoot
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    // MARK: The document covers the router

    /// `router.get("/v1/...")` and friends in Sources/SRIOVDaemon/API, as "GET /v1/...".
    static func registeredRoutes() throws -> Set<String> {
        let folder = repoRoot.appendingPathComponent("Sources/SRIOVDaemon/API")
        let pattern = try NSRegularExpression(pattern: #"router\.(get|put|patch|post|delete|head|options)\(\s*"([^"]+)""#)
        var routes: Set<String> = []
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".swift") {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            let range = NSRange(text.startIndex..., in: text)
            for match in pattern.matches(in: text, range: range) {
                let method = String(text[Range(match.range(at: 1), in: text)!]).uppercased()
                let path = String(text[Range(match.range(at: 2), in: text)!])
                routes.insert("\(method) \(path)")
            }
        }
        return routes
    }

    /// Validates the document (openapi-spec-validator, when installed) and
    /// lists its operations as "GET /v1/...".
    static let documentScript = #"""
        import json, sys, yaml
        path = sys.argv[1]
        with open(path) as f:
            doc = yaml.safe_load(f)
        try:
            from openapi_spec_validator import validate
            from openapi_spec_validator.readers import read_from_filename
        except ImportError:
            validator = "openapi-spec-validator not installed: document not validated"
        else:
            spec, _ = read_from_filename(path)
            validate(spec)
            validator = "valid OpenAPI " + str(doc.get("openapi"))
        methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
        operations = sorted(f"{m.upper()} {p}" for p, item in doc.get("paths", {}).items() for m in item if m in methods)
        print(json.dumps({"validator": validator, "operations": operations}))
        """#

    @Test func everyRegisteredRouteIsDocumentedAndTheDocumentIsValid() throws {
        let routes = try Self.registeredRoutes()
        #expect(routes.count >= 13, "found only \(routes.sorted()) in Sources/SRIOVDaemon/API")

        let python = try #require(Self.python(with: ["yaml"]), "no python3 with PyYAML")
        let result = try Self.run(python, ["-c", Self.documentScript, Self.documentPath])
        try #require(result.status == 0, "docs/openapi.yaml does not load or is not valid:\n\(result.output)")
        let line = try #require(result.output.split(separator: "\n").last.map(String.init))
        struct Listing: Decodable {
            var validator: String
            var operations: [String]
        }
        let listing = try JSONDecoder().decode(Listing.self, from: Data(line.utf8))
        print("docs/openapi.yaml: \(listing.validator); \(listing.operations.count) operations")
        #expect(listing.validator.hasPrefix("valid OpenAPI 3.1"), "\(listing.validator)")

        let documented = Set(listing.operations)
        let undocumented = routes.subtracting(documented).sorted()
        let stale = documented.subtracting(routes).sorted()
        #expect(undocumented.isEmpty, "routes the router registers but docs/openapi.yaml does not describe: \(undocumented)")
        #expect(stale.isEmpty, "operations docs/openapi.yaml describes but no router registers: \(stale)")
    }

    // MARK: The schemas match the Swift encoding

    /// Checks samples against the document: `{"schema": name, "body": ...}`
    /// against components/schemas/name, or `{"path", "method", "status",
    /// "contentType", "body"}` against that operation's documented response.
    static let validatorScript = #"""
        import json, sys, yaml, jsonschema
        with open(sys.argv[1]) as f:
            doc = yaml.safe_load(f)
        def resolve(node):
            while "$ref" in node:
                target = doc
                for part in node["$ref"].lstrip("#/").split("/"):
                    target = target[part]
                node = target
            return node
        errors = []
        for sample in json.load(sys.stdin):
            label = sample.get("schema") or f'{sample["method"]} {sample["path"]} {sample["status"]}'
            if "schema" in sample:
                schema = {"$ref": "#/components/schemas/" + sample["schema"]}
            else:
                operation = doc["paths"][sample["path"]][sample["method"].lower()]
                response = operation["responses"].get(str(sample["status"]))
                if response is None:
                    errors.append(f"{label}: status not documented")
                    continue
                content = resolve(response).get("content", {})
                media = sample["contentType"].split(";")[0]
                if media not in content:
                    errors.append(f"{label}: content type {media} not documented")
                    continue
                schema = content[media]["schema"]
            validator = jsonschema.Draft202012Validator({**doc, **schema}, format_checker=jsonschema.FormatChecker())
            for error in validator.iter_errors(sample["body"]):
                path = "/".join(map(str, error.absolute_path)) or "(body)"
                errors.append(f"{label}: {path}: {error.message}")
            print(f"checked {label}")
        for error in errors:
            print("ERROR " + error)
        sys.exit(1 if errors else 0)
        """#

    static func encoded(_ value: some Encodable) throws -> Any {
        try JSONSerialization.jsonObject(with: try APIResponse.makeEncoder().encode(value), options: [.fragmentsAllowed])
    }

    /// Every kind of value the API answers with, encoded by the daemon's own
    /// encoder, fields set and unset: what the live fuzzing cannot reach (a
    /// fake host reports no VF settings, and its VF writes never fail).
    static func samples() async throws -> [[String: Any]] {
        var samples: [[String: Any]] = []
        func schema(_ name: String, _ value: some Encodable) throws {
            samples.append(["schema": name, "body": try encoded(value)])
        }
        let pf = try PCIAddress.parse("0000:01:00.0", field: "pf")
        let vf = try PCIAddress.parse("0000:01:10.0", field: "vf")
        let full = VFSettings(
            mac: try .parse("52:54:00:12:34:56", field: "mac"), vlan: try VLANID(4094), qos: try VLANQoS(7),
            vlanProto: .dot1AD, spoofCheck: true, trust: false, linkState: .disable, minTxRate: 0,
            maxTxRate: UInt32.max, rssQuery: true)
        try schema("VirtualFunction", VirtualFunction(index: 0, pciAddress: vf, pf: pf))
        try schema(
            "VirtualFunction",
            VirtualFunction(
                index: 6, pciAddress: vf, pf: pf, driver: "vfio-pci", netdev: "enp1s16", iommuGroup: 42, numaNode: 1,
                settings: full))
        try schema(
            "PhysicalFunction", PhysicalFunction(pciAddress: pf, vendorID: 0, deviceID: 0, totalVFs: 0, numVFs: 0, driversAutoprobe: false))
        let fullPF = PhysicalFunction(
            pciAddress: pf, vendorID: 0xffff, deviceID: 0x10c9, vendorName: "Intel Corporation",
            deviceName: "82576 Gigabit Network Connection", driver: "igb", netdev: "enp1s0", ifindex: 2,
            mac: try .parse("00:1b:21:00:00:01", field: "mac"), adminUp: true, linkUp: false, operState: "lowerlayerdown",
            mtu: 9000, numaNode: 0, totalVFs: 7, numVFs: 2, driversAutoprobe: true, vfDeviceID: 0x10ca,
            warnings: ["could not read link enp1s0"])
        try schema("PhysicalFunction", fullPF)
        try schema("PhysicalFunctionDetail", PhysicalFunctionDetail(pf: fullPF, vfs: [VirtualFunction(index: 0, pciAddress: vf, pf: pf)]))
        let date = Date(timeIntervalSince1970: 1_760_000_000.123)
        let minimal = Assignment(
            vm: "vm1", nic: "net0", vf: vf, pf: pf, vfIndex: 0, pool: nil, driver: .vfio, config: VFConfig(),
            state: .assigning, previousDriver: nil, netdev: nil, vfioDevice: nil, iommuGroup: nil, numaNode: nil,
            createdAt: date, updatedAt: date)
        try schema("Assignment", minimal)
        var everything = minimal
        everything.pool = "pool-a"
        everything.driver = .host
        everything.config = VFConfig(
            mac: full.mac, vlan: full.vlan, qos: full.qos, vlanProto: .dot1Q, spoofCheck: false, trust: true,
            linkState: .auto, minTxRate: 10, maxTxRate: 100)
        everything.state = .released
        everything.previousDriver = "igbvf"
        everything.netdev = "enp1s16"
        everything.vfioDevice = "/dev/vfio/42"
        everything.iommuGroup = 42
        everything.numaNode = 0
        try schema("Assignment", everything)
        let results = [VFController.SettingResult.Outcome.applied, .unchanged, .unsupported, .failed, .rolledBack, .skipped]
            .enumerated().map { i, outcome in
            VFController.SettingResult(
                setting: VFSettingGroup.allCases[i % VFSettingGroup.allCases.count], outcome: outcome,
                detail: i.isMultiple(of: 2) ? nil : "Operation not supported")
        }
        let apiResults = results.map(SettingResult.init)
        try schema("AssignmentChangeResponse", AssignmentChangeResponse(assignment: everything, results: apiResults))
        try schema(
            "VFChangeResponse",
            VFChangeResponse(vf: VirtualFunction(index: 0, pciAddress: vf, pf: pf, settings: full), results: apiResults))
        for line in try EventLineSamples.all() { try schema("EventLine", line) }
        try schema("Problem", APIError.invalid(ValidationError(field: "vlan", value: "4095", reason: "is outside")).problem)
        for error in [
            APIError.notFound("x"), .conflict("x"), .forbidden("x"), .payloadTooLarge(limit: 1), .unsupportedMediaType("x"),
            .hostFailure("x"), .unavailable("x"),
        ] {
            try schema("Problem", error.problem)
        }

        // Through the router, with a fake host that reports every setting.
        let host = FakeHost.threeVFs()
        let store = try StateStore(directory: NSTemporaryDirectory() + "sriovd-openapi-\(UUID().uuidString)")
        let controller = VFController(
            host: host, store: store, logger: Logger(label: "test"), verifyAttempts: 2, verifyInterval: .milliseconds(1))
        let app = Application(router: makeRouter(inventory: try FakeHost.twoPFs(), controller: controller))
        let exchanges: [(String, HTTPRequest.Method, String, String?, (@Sendable () -> Void)?)] = [
            ("/v1/health", .get, "/v1/health", nil, nil),
            ("/v1/pfs", .get, "/v1/pfs", nil, nil),
            ("/v1/pfs/0000:01:00.0", .get, "/v1/pfs/{pciAddress}", nil, nil),
            ("/v1/vfs", .get, "/v1/vfs", nil, nil),
            ("/v1/vfs/\(host.address(1))", .patch, "/v1/vfs/{pciAddress}",
             #"{"mac":"52:54:00:00:00:01","vlan":10,"qos":2,"linkState":"enable","maxTxRate":100}"#, nil),
            ("/v1/vfs/\(host.address(1))/restore", .post, "/v1/vfs/{pciAddress}/restore", nil, nil),
            ("/v1/vfs/\(host.address(2))", .patch, "/v1/vfs/{pciAddress}", #"{"mac":"52:54:00:00:00:09","trust":true}"#,
             { host.state.withLock { $0.failing = [.trust] } }),
            ("/v1/vfs/\(host.address(2))", .patch, "/v1/vfs/{pciAddress}", #"{"vlan":4095}"#, nil),
            ("/v1/vfs/0000:01:1f.0", .patch, "/v1/vfs/{pciAddress}", #"{"vlan":1}"#, nil),
        ]
        struct Exchange: Sendable {
            var template: String
            var method: String
            var status: Int
            var contentType: String
            var body: Data
        }
        let collected = Mutex<[Exchange]>([])
        try await app.test(.router) { client in
            for (uri, method, template, body, prepare) in exchanges {
                prepare?()
                try await client.execute(
                    uri: uri, method: method, headers: body == nil ? [:] : [.contentType: "application/json"],
                    body: body.map { ByteBuffer(string: $0) }
                ) { response in
                    let exchange = Exchange(
                        template: template, method: method.rawValue, status: Int(response.status.code),
                        contentType: response.headers[.contentType] ?? "", body: Data(response.body.readableBytesView))
                    collected.withLock { $0.append(exchange) }
                }
            }
        }
        for exchange in collected.withLock({ $0 }) {
            samples.append([
                "path": exchange.template, "method": exchange.method, "status": exchange.status,
                "contentType": exchange.contentType, "body": try JSONSerialization.jsonObject(with: exchange.body),
            ])
        }
        let statuses = Set(samples.compactMap { $0["status"] as? Int })
        #expect(statuses.isSuperset(of: [200, 400, 404, 500]), "the exchanges should cover 200, 400, 404 and 500: \(statuses)")
        return samples
    }

    @Test func documentedSchemasMatchTheSwiftEncoding() async throws {
        let python = try #require(Self.python(with: ["yaml", "jsonschema"]), "no python3 with PyYAML and jsonschema")
        let input = try JSONSerialization.data(withJSONObject: try await Self.samples())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", Self.validatorScript, Self.documentPath]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print(output)
        #expect(process.terminationStatus == 0, "encoded values that docs/openapi.yaml does not describe:\n\(output)")
    }

    // MARK: A live daemon conforms, under fuzzing

    static var isRequired: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["SRIOVD_REQUIRE_API_FUZZ"] == "1" || environment["SRIOVD_REQUIRE_RIG"] == "1"
    }

    /// Why scripts/api-fuzz.sh cannot run here, or nil when it can.
    static var fuzzUnavailableReason: String? {
        if getuid() != 0 { return "needs root (sriovd runs in a private network namespace)" }
        let sriovd = ProcessInfo.processInfo.environment["SRIOVD_BIN_DIR"].map { $0 + "/sriovd" }
            ?? repoRoot.appendingPathComponent(".build/debug/sriovd").path
        if !FileManager.default.isExecutableFile(atPath: sriovd) { return "sriovd is not built at \(sriovd) (swift build)" }
        if python(with: ["schemathesis", "yaml"]) == nil {
            return "schemathesis is not installed (scripts/install-deps.sh)"
        }
        return nil
    }

    @Test(
        .enabled(
            if: fuzzUnavailableReason == nil || isRequired,
            "API fuzzing unavailable: \(fuzzUnavailableReason ?? "")"),
        .timeLimit(.minutes(4)))
    func liveDaemonConformsToTheDocumentUnderFuzzing() throws {
        var environment = ProcessInfo.processInfo.environment
        if let dir = environment["SRIOVD_BIN_DIR"] { environment["SRIOVD_BIN"] = dir + "/sriovd" }
        let result = try Self.run("/bin/bash", ["scripts/api-fuzz.sh"], environment: environment)
        print(result.output)
        #expect(result.status == 0, "scripts/api-fuzz.sh exited \(result.status):\n\(result.output)")
    }
}
