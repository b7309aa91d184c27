import SRIOVAPI
import SRIOVCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension SRIOVClient {
    /// What to follow of `GET /v1/events`: events after `since` (replayed
    /// from what sriovd still holds), of the given types or type prefixes
    /// (`assignment.`), of one PF, of one VM.
    public struct EventQuery: Hashable, Sendable {
        public var since: UInt64?
        public var types: [String]
        public var pf: PCIAddress?
        public var vm: String?

        public init(since: UInt64? = nil, types: [String] = [], pf: PCIAddress? = nil, vm: String? = nil) {
            self.since = since
            self.types = types
            self.pf = pf
            self.vm = vm
        }

        /// A type or type prefix as the daemon accepts it (`assignment.`).
        public static func checkedType(_ text: String, field: String) throws(ValidationError) -> String {
            try EventLine.checkedTypePrefix(text, field: field)
        }

        /// The request path. Types and VM names are checked before they get
        /// here (letters, digits, '.', '_', ':', '-'): nothing needs escaping.
        public var path: String {
            var parameters: [String] = []
            if let since { parameters.append("since=\(since)") }
            parameters += types.map { "type=\($0)" }
            if let pf { parameters.append("pf=\(pf)") }
            if let vm { parameters.append("vm=\(vm)") }
            return parameters.isEmpty ? "/v1/events" : "/v1/events?" + parameters.joined(separator: "&")
        }
    }

    /// One line of the event stream: the text as received, and its object.
    public struct EventStreamLine: Sendable {
        public var text: String
        public var value: JSONValue

        /// `type`, `seq`: what every line has.
        public var type: String { value["type"]?.stringValue ?? "" }
        public var seq: UInt64? { value["seq"]?.intValue.flatMap { UInt64(exactly: $0) } }
    }

    /// Follows the event stream, handing each line to `each` as it arrives,
    /// until `each` returns false or the daemon ends the stream. When the
    /// daemon cuts the stream off because this reader fell behind (an
    /// `overflow` line), it follows again from where that line says, after
    /// handing `each` the overflow line too. An error status is thrown as
    /// `ClientError.api` or `.forbidden`, a line that is not a JSON object as
    /// `.malformedResponse`.
    public func followEvents(
        _ query: EventQuery, _ each: (EventStreamLine) async throws(ClientError) -> Bool
    ) async throws(ClientError) {
        var query = query
        while true {
            let resume: UInt64? = try await withStreamingResponse(Request(method: .get, path: query.path)) {
                response throws(ClientError) -> UInt64? in
                guard response.isSuccess else { _ = try await response.collected().checked(); return nil }
                let decoder = APIJSON.decoder()
                for try await text in response.lines where !text.isEmpty {
                    let value: JSONValue
                    do { value = try decoder.decode(JSONValue.self, from: Data(text.utf8)) } catch {
                        throw .malformedResponse("an event line is not JSON: \(text.prefix(200))")
                    }
                    guard case .object = value else {
                        throw .malformedResponse("an event line is not a JSON object: \(text.prefix(200))")
                    }
                    let line = EventStreamLine(text: text, value: value)
                    guard try await each(line) else { return nil }
                    if line.type == EventLine.overflow { return line.value["details"]?["since"]?.intValue.map(UInt64.init) ?? line.seq }
                }
                return nil
            }
            guard let resume else { return }
            query.since = resume
        }
    }
}
