import Foundation
import Hummingbird
import SRIOVAPI
import SRIOVCore

/// A VM's live migration, per host: `incoming` and `complete` on the
/// destination, `prepare` on the source, `abort` on either, and its state
/// and timeline.
struct MigrationRoutes<Context: RequestContext> {
    let service: MigrationService
    let maxBodyBytes: Int

    func register(on router: Router<Context>) {
        router.get("/v1/vms/{vm}/migration") { _, context in
            let vm = try vmName(context)
            return try APIResponse.json(try await APIError.mapping { try service.show(vm: vm) })
        }

        router.post("/v1/vms/{vm}/migration/incoming") { request, context in
            let vm = try vmName(context)
            let body = try await RequestBody.decode(
                MigrationIncomingBody.self, from: request, allowedKeys: MigrationIncomingBody.keys, limit: maxBodyBytes)
            return try APIResponse.json(try await APIError.mapping { try await service.incoming(vm: vm, body) }, status: .created)
        }

        router.post("/v1/vms/{vm}/migration/prepare") { request, context in
            let vm = try vmName(context)
            try await Self.noBody(request, limit: maxBodyBytes)
            return try APIResponse.json(try await APIError.mapping { try await service.prepare(vm: vm) })
        }

        router.post("/v1/vms/{vm}/migration/complete") { request, context in
            let vm = try vmName(context)
            try await Self.noBody(request, limit: maxBodyBytes)
            return try APIResponse.json(try await APIError.mapping { try await service.complete(vm: vm) })
        }

        router.post("/v1/vms/{vm}/migration/abort") { request, context in
            let vm = try vmName(context)
            try await Self.noBody(request, limit: maxBodyBytes)
            return try APIResponse.json(try await APIError.mapping { try await service.abort(vm: vm) })
        }
    }

    /// These calls take no body; an empty JSON object is accepted too.
    static func noBody(_ request: Request, limit: Int) async throws {
        let buffer = try await request.body.collect(upTo: limit)
        let text = String(buffer: buffer).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.isEmpty || text == "{}" else {
            throw APIError.invalid(ValidationError(field: "body", value: "", reason: "must be empty (or {}): this call takes no fields"))
        }
    }

    private func vmName(_ context: Context) throws(APIError) -> String {
        let raw = context.parameters.get("vm") ?? ""
        do { return try NICKey.checkedName(raw.removingPercentEncoding ?? raw, field: "vm") } catch { throw .invalid(error) }
    }
}
