import Foundation
import Testing
@testable import SRIOVCore

@Suite("PCI addresses")
struct PCIAddressTests {
    @Test("full and short forms parse and print canonically")
    func parsesForms() throws {
        let full = try PCIAddress.parse("0000:01:10.2", field: "pf")
        #expect(full == PCIAddress(domain: 0, bus: 1, device: 0x10, function: 2))
        #expect(full.description == "0000:01:10.2")
        let short = try PCIAddress.parse("3B:1F.7", field: "pf")
        #expect(short.description == "0000:3b:1f.7")
        let domain = try PCIAddress.parse("ffff:ff:00.0", field: "pf")
        #expect(domain.domain == 0xffff)
    }

    @Test(
        "malformed addresses are refused, naming the field and the value",
        arguments: ["", "0000:01:10", "0000:01:10.8", "0000:01:20.0", "00000:01:10.0", "0000:001:10.0",
                    "zz:00.0", "0000:01:10.0 ", "01.10.0", "0000:01:10.-1", "eth0", "0000::10.0"])
    func rejectsMalformed(text: String) {
        #expect {
            try PCIAddress.parse(text, field: "pciAddress")
        } throws: { error in
            guard let error = error as? ValidationError else { return false }
            return error.field == "pciAddress" && error.value == text && !error.reason.isEmpty
                && error.description.contains("pciAddress")
        }
    }

    @Test("device and function limits are explained")
    func explainsLimits() {
        do {
            _ = try PCIAddress.parse("0000:01:10.9", field: "pf")
            Issue.record("accepted function 9")
        } catch {
            #expect(error.reason.contains("0-7"))
        }
    }

    @Test("addresses order by domain, bus, device, function")
    func ordering() throws {
        let list = try ["0000:02:00.0", "0000:01:10.4", "0000:01:10.2", "0001:00:00.0"].map {
            try PCIAddress.parse($0, field: "x")
        }
        #expect(list.sorted().map(\.description) == ["0000:01:10.2", "0000:01:10.4", "0000:02:00.0", "0001:00:00.0"])
    }

    @Test("JSON round trip and a decoding error that names the path")
    func json() throws {
        struct Box: Codable { var pf: PCIAddress }
        let data = try JSONEncoder().encode(Box(pf: try .parse("0000:01:00.0", field: "pf")))
        #expect(String(decoding: data, as: UTF8.self) == #"{"pf":"0000:01:00.0"}"#)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Box.self, from: Data(#"{"pf":"01:00"}"#.utf8))
        }
    }
}

@Suite("MAC addresses")
struct MACAddressTests {
    @Test("colon and dash forms parse to lower case")
    func parses() throws {
        #expect(try MACAddress.parse("52:54:00:AB:cd:EF", field: "mac").description == "52:54:00:ab:cd:ef")
        #expect(try MACAddress.parse("52-54-00-ab-cd-ef", field: "mac").description == "52:54:00:ab:cd:ef")
    }

    @Test("malformed MACs are refused with the field and value", arguments: [
        "", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:01", "5:54:00:ab:cd:ef", "52:54:00:ab:cd:eg", "525400abcdef",
        "52:54:00:ab:cd:e f",
    ])
    func rejects(text: String) {
        #expect {
            try MACAddress.parse(text, field: "vfs[3].mac")
        } throws: { error in
            (error as? ValidationError).map { $0.field == "vfs[3].mac" && $0.value == text } ?? false
        }
    }

    @Test("zero, multicast and broadcast are not unicast VF addresses")
    func unicast() throws {
        #expect(throws: ValidationError.self) { try MACAddress.zero.validatedAsUnicast(field: "mac") }
        #expect(throws: ValidationError.self) {
            try MACAddress.parse("01:00:5e:00:00:01", field: "mac").validatedAsUnicast(field: "mac")
        }
        #expect(throws: ValidationError.self) {
            try MACAddress.parse("ff:ff:ff:ff:ff:ff", field: "mac").validatedAsUnicast(field: "mac")
        }
        let local = try MACAddress.parse("02:00:00:00:00:01", field: "mac")
        #expect(try local.validatedAsUnicast(field: "mac") == local)
        #expect(local.isLocallyAdministered)
    }
}

@Suite("VLANs, QoS and VF configs")
struct VLANTests {
    @Test("VLAN ids 0-4094 are accepted, others refused", arguments: [-1, 4095, 4096, 65536])
    func vlanRange(bad: Int) throws {
        #expect(try VLANID(0).value == 0)
        #expect(try VLANID(4094).value == 4094)
        #expect {
            try VLANID(bad, field: "vlan")
        } throws: { error in
            (error as? ValidationError).map { $0.field == "vlan" && $0.value == String(bad) && $0.reason.contains("0-4094") }
                ?? false
        }
    }

    @Test("QoS 0-7 only")
    func qosRange() throws {
        #expect(try VLANQoS(7).value == 7)
        #expect(throws: ValidationError.self) { try VLANQoS(8) }
        #expect(throws: ValidationError.self) { try VLANQoS(-1) }
    }

    @Test("VLAN protocol names and EtherTypes")
    func protocols() throws {
        #expect(try VLANProtocol.parse("802.1ad", field: "p") == .dot1AD)
        #expect(try VLANProtocol.parse("802.1Q", field: "p").etherType == 0x8100)
        #expect(VLANProtocol(etherType: 0x88a8) == .dot1AD)
        #expect(VLANProtocol(etherType: 0x9100) == nil)
        #expect(throws: ValidationError.self) { try VLANProtocol.parse("802.1x", field: "p") }
    }

    @Test("link states map to the kernel's values")
    func linkStates() throws {
        for state in VFLinkState.allCases {
            #expect(VFLinkState(kernelValue: state.kernelValue) == state)
        }
        #expect(VFLinkState(kernelValue: 3) == nil)
        #expect(throws: ValidationError.self) { try VFLinkState.parse("up", field: "linkState") }
    }

    @Test("a VF config decodes from JSON and rejects an out-of-range VLAN")
    func vfConfigJSON() throws {
        let config = try JSONDecoder().decode(
            VFConfig.self, from: Data(#"{"mac":"52:54:00:00:00:01","vlan":100,"qos":3,"linkState":"disable"}"#.utf8))
        #expect(config.mac?.description == "52:54:00:00:00:01")
        #expect(config.vlan?.value == 100 && config.qos?.value == 3 && config.linkState == .disable)
        #expect(config.trust == nil && config.spoofCheck == nil)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(VFConfig.self, from: Data(#"{"vlan":5000}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(VFConfig.self, from: Data(#"{"qos":9}"#.utf8)) }
    }

    @Test("cross-field rules: QoS needs a VLAN, min rate not above max, MAC unicast")
    func crossField() throws {
        #expect(throws: ValidationError.self) { try VFConfig(qos: try VLANQoS(3)).validate() }
        #expect(throws: ValidationError.self) { try VFConfig(minTxRate: 200, maxTxRate: 100).validate() }
        #expect(throws: ValidationError.self) { try VFConfig(mac: .zero).validate() }
        try VFConfig(vlan: try VLANID(10), qos: try VLANQoS(3), minTxRate: 10, maxTxRate: 100).validate()
        try VFConfig(minTxRate: 200, maxTxRate: 0).validate()  // 0 = unlimited
        #expect(VFConfig().isEmpty)
    }

    @Test("a VF encodes flat, with its settings beside its identity")
    func vfEncoding() throws {
        let vf = VirtualFunction(
            index: 2, pciAddress: try .parse("0000:01:10.4", field: "x"), pf: try .parse("0000:01:00.0", field: "x"),
            driver: "igbvf", netdev: nil, iommuGroup: 12,
            settings: VFSettings(mac: try .parse("52:54:00:00:00:02", field: "m"), vlan: try VLANID(7), spoofCheck: true))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(vf), as: UTF8.self)
        #expect(json.contains(#""index":2"#) && json.contains(#""mac":"52:54:00:00:00:02""#))
        #expect(json.contains(#""vlan":7"#) && json.contains(#""spoofCheck":true"#) && json.contains(#""netdev":null"#))
        #expect(!json.contains("trust"))
        let back = try JSONDecoder().decode(VirtualFunction.self, from: Data(json.utf8))
        #expect(back == vf)
    }
}
