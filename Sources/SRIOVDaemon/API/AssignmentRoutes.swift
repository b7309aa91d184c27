import Foundation
import Hummingbird
import SRIOVAPI
import SRIOVCore

/// What orchestration calls: give a VM NIC a VF, change it, take it back.
struct AssignmentRoutes<Context: RequestContext> {
    let service: AssignmentService
    let maxBodyBytes: Int

    func register(on router: Router<Context>) {
        router.post("/v1/assignments") { request, _ in
            let body = try await RequestBody.decode(
                AssignmentRequest.self, from: request, allowedKeys: AssignmentRequest.keys, limit: maxBodyBytes)
            switch try await APIError.mapping({ try await service.assign(body) }) {
            case .created(let a): return try APIResponse.json(a, status: .created)
            case .existing(let a): return try APIResponse.json(a, status: .ok)
            }
        }

        router.get("/v1/assignments") { request, _ in
            let query = request.uri.queryParameters
            let pf = try query.get("pf").map { text throws(APIError) in try pciParameter(text, field: "pf") }
            let list = try await APIError.mapping {
                try await service.list(vm: query.get("vm"), pf: pf, pool: query.get("pool"))
            }
            return try APIResponse.json(AssignmentList(assignments: list))
        }

        router.get("/v1/assignments/{vm}/{nic}") { _, context in
            let key = try nicKey(context)
            return try APIResponse.json(try await APIError.mapping { try await service.get(key) })
        }

        router.patch("/v1/assignments/{vm}/{nic}") { request, context in
            let key = try nicKey(context)
            let change = try await RequestBody.decode(
                VFConfig.self, from: request, allowedKeys: AssignmentChangeBody.keys, limit: maxBodyBytes)
            guard !change.isEmpty else {
                throw APIError.invalid(ValidationError(
                    field: "body", value: "", reason: "sets nothing; give at least one of \(AssignmentChangeBody.keys.sorted().joined(separator: ", "))"))
            }
            let (assignment, report) = try await APIError.mapping { try await service.update(key, change) }
            return try APIResponse.json(AssignmentChangeResponse(assignment: assignment, results: report.results.map(SettingResult.init)))
        }

        router.delete("/v1/assignments/{vm}/{nic}") { _, context in
            let key = try nicKey(context)
            return try APIResponse.json(try await APIError.mapping { try await service.release(key) })
        }
    }

    private func nicKey(_ context: Context) throws(APIError) -> NICKey {
        do {
            let vm = context.parameters.get("vm") ?? "", nic = context.parameters.get("nic") ?? ""
            return try NICKey(vm: vm.removingPercentEncoding ?? vm, nic: nic.removingPercentEncoding ?? nic)
        } catch {
            throw .invalid(error)
        }
    }
}
