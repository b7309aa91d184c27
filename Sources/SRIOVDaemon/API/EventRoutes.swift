import Foundation
import Hummingbird
import NIOCore
import SRIOVAPI
import SRIOVCore

/// `GET /v1/events`: the event stream, newline-delimited JSON over a chunked
/// response that lasts as long as the reader follows it (`EventStream`).
struct EventRoutes<Context: RequestContext> {
    let stream: EventStream

    func register(on router: Router<Context>) {
        router.get("/v1/events") { request, context in
            // Refused (400) before the response starts.
            let query = try EventQuery(request.uri.queryParameters)
            let stream = self.stream
            let logger = context.logger
            return Response(
                status: .ok,
                headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    let encoder = APIResponse.makeEncoder()
                    do {
                        try await stream.follow(since: query.since, filter: query.filter) { line in
                            var data = try encoder.encode(line)
                            data.append(UInt8(ascii: "\n"))
                            try await writer.write(ByteBuffer(bytes: data))
                        }
                    } catch is CancellationError {
                    } catch {
                        // The reader went away: nothing to tell it.
                        logger.debug("event stream ended", metadata: ["error": "\(error)"])
                        return
                    }
                    try await writer.finish(nil)
                })
        }
    }
}

/// The event stream's query: `type` (repeatable, a type or prefix), `pf`,
/// `vm`, `since`. Any other parameter, or a bad value, is a 400 naming it.
struct EventQuery: Sendable, Equatable {
    var since: UInt64?
    var filter = EventFilter()

    static let parameters: Set<String> = ["type", "pf", "vm", "since"]

    init(_ query: Parameters) throws(APIError) {
        for (name, _) in query where !Self.parameters.contains(String(name)) {
            throw .invalid(
                .message(field: String(name), "is not a parameter of /v1/events; use type, pf, vm or since"))
        }
        do throws(ValidationError) {
            filter.typePrefixes = try query.getAll("type").map { text throws(ValidationError) in
                try EventLine.checkedTypePrefix(text, field: "type")
            }
            if let pf = query.get("pf") { filter.pf = try PCIAddress.parse(pf, field: "pf") }
            if let vm = query.get("vm") { filter.vm = try NICKey.checkedName(vm, field: "vm") }
            if let text = query.get("since") {
                guard let seq = UInt64(text) else {
                    throw ValidationError(field: "since", value: text, reason: "is not an event seq: a whole number, 0 or more")
                }
                since = seq
            }
        } catch {
            throw .invalid(error)
        }
    }
}
