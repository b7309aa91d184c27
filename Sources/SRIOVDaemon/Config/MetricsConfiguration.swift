import SRIOVCore

extension SRIOVConfiguration {
    /// `[metrics]`: where Prometheus may scrape `/metrics` over TCP. The API
    /// socket serves `/metrics` whatever this says.
    public struct Metrics: Hashable, Sendable {
        /// `listen`: serve `/metrics` alone on this TCP address; nil (the
        /// default, or "") serves it on the API socket only.
        public var listen: MetricsListenAddress?

        public init(listen: MetricsListenAddress? = nil) {
            self.listen = listen
        }
    }
}

/// A TCP address to listen on: an IPv4 address, or an IPv6 one in brackets,
/// and a port: `127.0.0.1:9477`, `[::1]:9477`. A host name is refused: what
/// it resolves to may change, and a metrics port is easy to expose by mistake.
public struct MetricsListenAddress: Hashable, Sendable, CustomStringConvertible, TextParsable {
    /// The address as NIO binds it (no brackets).
    public var host: String
    public var port: Int

    public static func parse(_ text: String, field: String) throws(ValidationError) -> MetricsListenAddress {
        func refuse(_ why: String) -> ValidationError {
            ValidationError(field: field, value: text, reason: "is not a listen address: \(why) (e.g. \"127.0.0.1:9477\" or \"[::1]:9477\")")
        }
        guard let colon = text.lastIndex(of: ":") else { throw refuse("it has no port") }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard let port = Int(portText), (1...65535).contains(port), portText.allSatisfy(\.isASCII) else {
            throw refuse("the port must be 1-65535")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard isIPv6(host) else { throw refuse("\(host) is not an IPv6 address") }
        } else {
            guard isIPv4(host) else { throw refuse("the host must be an IPv4 address, or an IPv6 one in brackets") }
        }
        return MetricsListenAddress(host: host, port: port)
    }

    private static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                !part.isEmpty && part.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber } && Int(part)! <= 255
            }
    }

    private static func isIPv6(_ text: String) -> Bool {
        let hexOrColon = text.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == ":" || $0 == "." }
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        return !text.isEmpty && hexOrColon && text.contains(":") && groups.count <= 8
            && groups.allSatisfy { $0.count <= 4 || $0.contains(".") }
            && text.ranges(of: "::").count <= 1
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension ConfigurationDecoder {
    static let metricsKeys = ["listen"]

    func decodeMetrics(_ t: ConfigurationTable) -> SRIOVConfiguration.Metrics {
        t.rejectUnknownKeys(Self.metricsKeys)
        var metrics = SRIOVConfiguration.Metrics()
        if let listen = t.string("listen", hint: "write the address as a string such as \"127.0.0.1:9477\""),
            !listen.value.isEmpty
        {
            do {
                metrics.listen = try MetricsListenAddress.parse(listen.value, field: "metrics.listen")
            } catch {
                t.report("listen", at: listen.position, "\(TOMLValue.quoted(listen.value)) \(error.reason)")
            }
        }
        return metrics
    }
}
