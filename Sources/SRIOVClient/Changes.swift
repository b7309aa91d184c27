import SRIOVAPI
import SRIOVCore

/// The bodies of the API's write requests, built from typed values, and the
/// command-line text they are parsed from. Everything is parsed and checked
/// here, once, before anything is sent: a refusal names the option.
extension SRIOVClient {
    /// Command-line input refused before any request was sent; a tool ends
    /// with status 64 (EX_USAGE) on it.
    public struct UsageError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String

        public init(_ description: String) { self.description = description }

        /// SRIOVCore's refusal, which already names the field and the value.
        public init(_ error: ValidationError) { description = error.description }
    }

    /// `PUT /v1/pfs/{pci}`: a PF's VF count and/or `sriov_drivers_autoprobe`.
    public typealias PFChange = SRIOVAPI.PFChange
    /// The driver a VF is bound to, as `POST /v1/vfs/{pci}/driver` names it.
    public typealias VFDriver = SRIOVAPI.VFDriver

    /// `PATCH /v1/vfs/{pci}`: the VF settings to change. A nil field is left
    /// alone, and is not sent.
    public struct VFChange: Hashable, Sendable, Encodable {
        public let config: VFConfig

        /// Checked as the daemon checks it: a unicast MAC; QoS and a protocol
        /// other than 802.1Q only with a VLAN; minimum rate not above maximum.
        public init(_ config: VFConfig) throws(ValidationError) {
            try config.validate()
            self.config = config
        }

        /// Parses `sriovctl vf set`'s options, each with its SRIOVCore type;
        /// refusals name the option (`--vlan: "5000" is outside ...`).
        public init(parsing options: Options) throws(UsageError) {
            guard !options.isEmpty else {
                throw UsageError(
                    "nothing to change: give at least one of \(Options.names.map(\.option).joined(separator: ", "))")
            }
            try self.init(checking: options.parsed())
        }

        /// `config` checked as `init(_:)` checks it, the refusal naming the
        /// options rather than the API's fields. An empty config is allowed:
        /// for requests whose settings are optional (`sriovctl assign`).
        init(checking config: VFConfig) throws(UsageError) {
            do {
                try self.init(config)
            } catch {
                throw UsageError(Options.namingOptions(error))
            }
        }

        public var isEmpty: Bool { config.isEmpty }

        public func encode(to encoder: any Encoder) throws { try config.encode(to: encoder) }

        /// `sriovctl vf set`'s options as typed, before parsing. nil: not given.
        public struct Options: Hashable, Sendable {
            public var mac: String?
            public var vlan: String?
            public var qos: String?
            public var vlanProto: String?
            public var spoofCheck: String?
            public var trust: String?
            public var linkState: String?
            public var minTxRate: String?
            public var maxTxRate: String?
            public var rssQuery: String?

            public init(
                mac: String? = nil, vlan: String? = nil, qos: String? = nil, vlanProto: String? = nil,
                spoofCheck: String? = nil, trust: String? = nil, linkState: String? = nil, minTxRate: String? = nil,
                maxTxRate: String? = nil, rssQuery: String? = nil
            ) {
                self.mac = mac
                self.vlan = vlan
                self.qos = qos
                self.vlanProto = vlanProto
                self.spoofCheck = spoofCheck
                self.trust = trust
                self.linkState = linkState
                self.minTxRate = minTxRate
                self.maxTxRate = maxTxRate
                self.rssQuery = rssQuery
            }

            public var isEmpty: Bool { self == Options() }

            /// Each option given, parsed to its SRIOVCore type; refusals name
            /// the option. Combinations (QoS needs a VLAN...) are not checked
            /// here: see `VFChange.init(checking:)`.
            func parsed() throws(UsageError) -> VFConfig {
                var config = VFConfig()
                do throws(ValidationError) {
                    config.mac = try mac.map { text throws(ValidationError) in
                        try MACAddress.parse(text, field: "--mac")
                    }
                    config.vlan = try vlan.map { text throws(ValidationError) in
                        try VLANID(
                            OptionText.integer(text, field: "--vlan", expected: "a VLAN id 0-4094"), field: "--vlan")
                    }
                    config.qos = try qos.map { text throws(ValidationError) in
                        try VLANQoS(
                            OptionText.integer(text, field: "--qos", expected: "a priority 0-7"), field: "--qos")
                    }
                    config.vlanProto = try vlanProto.map { text throws(ValidationError) in
                        try VLANProtocol.parse(text, field: "--vlan-proto")
                    }
                    config.spoofCheck = try spoofCheck.map { text throws(ValidationError) in
                        try OptionText.onOff(text, field: "--spoof-check")
                    }
                    config.trust = try trust.map { text throws(ValidationError) in
                        try OptionText.onOff(text, field: "--trust")
                    }
                    config.linkState = try linkState.map { text throws(ValidationError) in
                        try VFLinkState.parse(text, field: "--link-state")
                    }
                    config.minTxRate = try minTxRate.map { text throws(ValidationError) in
                        try OptionText.rate(text, field: "--min-tx-rate")
                    }
                    config.maxTxRate = try maxTxRate.map { text throws(ValidationError) in
                        try OptionText.rate(text, field: "--max-tx-rate")
                    }
                    config.rssQuery = try rssQuery.map { text throws(ValidationError) in
                        try OptionText.onOff(text, field: "--rss-query")
                    }
                } catch {
                    throw UsageError(Self.namingOptions(error))
                }
                return config
            }

            /// `error` from `VFConfig.validate()`, which names fields as the API
            /// does ("set vlan to 1-4094 too"), with the options named instead.
            static func namingOptions(_ error: ValidationError) -> ValidationError {
                var reason = ""
                var word = ""
                func flush() {
                    reason += names.first { $0.field == word }?.option ?? word
                    word = ""
                }
                for character in error.reason {
                    if character.isLetter {
                        word.append(character)
                    } else {
                        flush()
                        reason.append(character)
                    }
                }
                flush()
                let field = names.first { $0.field == error.field }?.option ?? error.field
                return ValidationError(field: field, value: error.value, reason: reason)
            }

            /// Each API field with the option that sets it, in the order `--help` lists them.
            static let names: [(field: String, option: String)] = [
                ("mac", "--mac"), ("vlan", "--vlan"), ("qos", "--qos"), ("vlanProto", "--vlan-proto"),
                ("spoofCheck", "--spoof-check"), ("trust", "--trust"), ("linkState", "--link-state"),
                ("minTxRate", "--min-tx-rate"), ("maxTxRate", "--max-tx-rate"), ("rssQuery", "--rss-query"),
            ]
        }
    }
}

extension SRIOVAPI.PFChange {
    /// Parses `sriovctl pf set`'s options. Refuses a change that sets
    /// nothing, a negative count, and `--force` without `--num-vfs`.
    /// Whether the count fits the PF's `sriov_totalvfs` is the daemon's to say.
    public init(numVFs: String?, autoprobe: String?, force: Bool) throws(SRIOVClient.UsageError) {
        guard numVFs != nil || autoprobe != nil else {
            throw SRIOVClient.UsageError("nothing to change: give --num-vfs and/or --autoprobe")
        }
        guard !force || numVFs != nil else {
            throw SRIOVClient.UsageError(
                "--force only matters with --num-vfs: it lets a lower count remove VFs in use")
        }
        do throws(ValidationError) {
            self.init(
                numVFs: try numVFs.map { text throws(ValidationError) in
                    try OptionText.integer(
                        text, field: "--num-vfs", in: 0...Int(Int32.max), expected: "a VF count, 0 or more")
                },
                driversAutoprobe: try autoprobe.map { text throws(ValidationError) in
                    try OptionText.onOff(text, field: "--autoprobe")
                },
                force: force)
        } catch {
            throw SRIOVClient.UsageError(error)
        }
    }
}

/// Values of command-line options that SRIOVCore has no type for.
enum OptionText {
    /// "on" or "off"; "true"/"false" and "yes"/"no" too, any case.
    static func onOff(_ text: String, field: String) throws(ValidationError) -> Bool {
        switch text.lowercased() {
        case "on", "true", "yes": return true
        case "off", "false", "no": return false
        default: throw ValidationError(field: field, value: text, reason: "is not a switch; use \"on\" or \"off\"")
        }
    }

    /// A decimal integer; the range, when given, is checked here, else by the type it becomes.
    static func integer(
        _ text: String, field: String, in range: ClosedRange<Int>? = nil, expected: String
    ) throws(ValidationError) -> Int {
        guard let value = Int(text), range?.contains(value) ?? true else {
            throw ValidationError(field: field, value: text, reason: "is not \(expected)")
        }
        return value
    }

    /// A TX rate in Mbit/s, 0 meaning no limit.
    static func rate(_ text: String, field: String) throws(ValidationError) -> UInt32 {
        guard let value = UInt32(text) else {
            throw ValidationError(
                field: field, value: text, reason: "is not a rate in Mbit/s; expected 0 (no limit) to \(UInt32.max)")
        }
        return value
    }
}
