import Testing

@testable import SRIOVCore
@testable import SRIOVDaemon

/// The shipped `config/sriovd.toml` stays valid and honest.
@Suite struct ConfigExampleTests {
    static let examplePath: String = {
        // Tests/SRIOVDaemonTests/ConfigExampleTests.swift -> the package root.
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/config/sriovd.toml"
    }()

    /// The example with every example setting (`#key = value`, `#[header]`)
    /// uncommented. Prose comments (`# ...`) stay.
    static func uncommented(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let indent = line.prefix { $0 == " " }
            let rest = line.dropFirst(indent.count)
            guard rest.hasPrefix("#"), let next = rest.dropFirst().first, next != " ", next != "#", next != "-" else {
                return String(line)
            }
            return String(indent + rest.dropFirst())
        }.joined(separator: "\n")
    }

    @Test func shippedFileParsesToTheDefaults() throws {
        let configuration = try SRIOVConfiguration.load(path: Self.examplePath)
        #expect(configuration == SRIOVConfiguration.defaults)
        #expect(configuration.pfs.isEmpty)
    }

    @Test func everyExampleSettingIsValidAndDaemonExamplesShowTheDefaults() throws {
        let text = try #require(String(validating: try ConfigurationFile.contents(of: Self.examplePath), as: UTF8.self))
        let configuration = try SRIOVConfiguration.parse(Self.uncommented(text), fileName: "sriovd.toml")
        #expect(configuration.daemon == SRIOVConfiguration.defaults.daemon)

        #expect(configuration.pfs.count == 2)
        let pf = try #require(configuration.pfs.first)
        #expect(pf.match == .pciAddress(try PCIAddress.parse("0000:01:00.0", field: "pci")))
        #expect(pf.numVFs == 4)
        #expect(pf.driversAutoprobe == false)
        #expect(pf.vfDriver == .vfio)
        #expect(
            pf.vfDefaults
                == VFConfig(
                    vlan: VLANID.none, qos: .zero, vlanProto: .dot1Q, spoofCheck: true, trust: false, linkState: .auto,
                    minTxRate: 0, maxTxRate: 0, rssQuery: false))
        #expect(
            pf.pools == [
                .init(name: "physnet1", vfs: .init([0...3]), labels: ["physical_network": "physnet1"])
            ])
        #expect(configuration.pfs[1].match == .ids(vendorID: 0x8086, deviceID: 0x10c9, index: 1))
        #expect(configuration.pfs[1].numVFs == 2)

        let vf = try #require(configuration.vfs.first)
        #expect(configuration.vfs.count == 1)
        #expect(vf.index == 2)
        #expect(vf.config.mac?.description == "52:54:00:00:00:02")
        #expect(vf.config.vlan == (try VLANID(100)))
        #expect(vf.config.qos == (try VLANQoS(3)))
        #expect(vf.config.trust == true)
    }

    @Test func everyKeyTheDecoderKnowsIsDocumented() throws {
        let example = try #require(
            String(validating: try ConfigurationFile.contents(of: Self.examplePath), as: UTF8.self))
        var parts = Self.examplePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        let reference = try #require(
            String(
                validating: try ConfigurationFile.contents(of: parts.joined(separator: "/") + "/docs/configuration.md"),
                as: UTF8.self))
        let keys =
            ConfigurationDecoder.daemonKeys + ConfigurationDecoder.pfKeys + ConfigurationDecoder.vfSettingKeys
            + ConfigurationDecoder.poolKeys
        for key in keys where key != "pool" && key != "vf_defaults" {
            #expect(example.contains("#\(key) = "), "config/sriovd.toml does not show \(key)")
            #expect(reference.contains("`\(key)`"), "docs/configuration.md does not describe \(key)")
        }
        #expect(example.contains("#[pf.vf_defaults]") && example.contains("#[[pf.pool]]"))
    }
}
