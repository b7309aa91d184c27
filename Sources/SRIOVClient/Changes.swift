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
    public typealias VFDriver = VFDriverChoice

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

        /// `sriovctl vf set`'s options as typed, before parsing: the text given
        /// for each setting field (`VFSettingField.option`); absent: not given.
        public struct Options: Hashable, Sendable {
            private var texts: [String: String] = [:]

            /// The text given, by field name (`VFSettingField.key`).
            public init(byKey texts: [String: String?] = [:]) {
                for (key, text) in texts {
                    guard let field = VFSettingField.named(key) else { preconditionFailure("no VF setting \(key)") }
                    self[field] = text
                }
            }

            /// By field name, for the settings this version knows.
            public init(
                mac: String? = nil, vlan: String? = nil, qos: String? = nil, vlanProto: String? = nil,
                spoofCheck: String? = nil, trust: String? = nil, linkState: String? = nil, minTxRate: String? = nil,
                maxTxRate: String? = nil, rssQuery: String? = nil
            ) {
                self.init(byKey: [
                    "mac": mac, "vlan": vlan, "qos": qos, "vlanProto": vlanProto, "spoofCheck": spoofCheck,
                    "trust": trust, "linkState": linkState, "minTxRate": minTxRate, "maxTxRate": maxTxRate,
                    "rssQuery": rssQuery,
                ])
            }

            /// The text given for `field`'s option.
            public subscript(field: VFSettingField) -> String? {
                get { texts[field.key] }
                set { texts[field.key] = newValue }
            }

            public var isEmpty: Bool { texts.isEmpty }

            /// Each option given, parsed to its SRIOVCore type; refusals name
            /// the option. Combinations (QoS needs a VLAN...) are not checked
            /// here: see `VFChange.init(checking:)`.
            func parsed() throws(UsageError) -> VFConfig {
                var config = VFConfig()
                do throws(ValidationError) {
                    for field in VFSettingField.all {
                        if let text = self[field] { try field.set(.text(text), field: field.option, in: &config) }
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
            static let names: [(field: String, option: String)] = VFSettingField.all.map { ($0.key, $0.option) }
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
        try Bool.parseSwitch(text, field: field)
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
}
