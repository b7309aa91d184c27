import HTTPTypes
import Hummingbird
import SRIOVAPI
import SRIOVCore
import SRIOVHost

/// Endpoints that change the host: VF counts, VF settings, VF drivers.
struct ControlRoutes<Context: RequestContext> {
    let inventory: any InventorySource
    let controller: VFController
    let maxBodyBytes: Int

    static var vfConfigKeys: Set<String> { VFConfig.keys }

    func register(on router: Router<Context>) {
        router.put("/v1/pfs/{pciAddress}") { request, context in
            let pf = try pciParameter(context.parameters.get("pciAddress") ?? "", field: "pciAddress")
            let change = try await RequestBody.decode(PFChange.self, from: request, allowedKeys: PFChange.keys, limit: maxBodyBytes)
            guard !change.isEmpty else {
                throw APIError.invalid(ValidationError(field: "body", value: "", reason: "sets nothing; give numVFs and/or driversAutoprobe"))
            }
            try await APIError.mapping {
                try await controller.setNumVFs(
                    pf: pf, count: change.numVFs, driversAutoprobe: change.driversAutoprobe, force: change.force)
            }
            guard let detail = try await inventory.physicalFunction(pf) else {
                throw APIError.notFound("no SR-IOV physical function at \(pf)")
            }
            return try APIResponse.json(detail)
        }

        router.patch("/v1/vfs/{pciAddress}") { request, context in
            let vf = try pciParameter(context.parameters.get("pciAddress") ?? "", field: "pciAddress")
            let config = try await RequestBody.decode(VFConfig.self, from: request, allowedKeys: Self.vfConfigKeys, limit: maxBodyBytes)
            guard !config.isEmpty else {
                throw APIError.invalid(ValidationError(field: "body", value: "", reason: "sets nothing; give at least one of \(Self.vfConfigKeys.sorted().joined(separator: ", "))"))
            }
            let report = try await APIError.mapping { try await controller.configure(vf: vf, config) }
            // The durations sriovd_operation_duration_seconds and
            // sriovd_host_duration_seconds recorded for this request.
            return try await vfResponse(report, elapsed: report.duration)
        }

        router.post("/v1/vfs/{pciAddress}/restore") { _, context in
            let vf = try pciParameter(context.parameters.get("pciAddress") ?? "", field: "pciAddress")
            let report = try await APIError.mapping { try await controller.restore(vf: vf) }
            return try await vfResponse(report, elapsed: nil)
        }

        router.post("/v1/vfs/{pciAddress}/scrub") { _, context in
            let vf = try pciParameter(context.parameters.get("pciAddress") ?? "", field: "pciAddress")
            let report = try await APIError.mapping { try await controller.scrub(vf: vf) }
            return try await vfResponse(report, elapsed: nil)
        }

        router.post("/v1/vfs/{pciAddress}/driver") { request, context in
            let vf = try pciParameter(context.parameters.get("pciAddress") ?? "", field: "pciAddress")
            let change = try await RequestBody.decode(DriverChange.self, from: request, allowedKeys: DriverChange.keys, limit: maxBodyBytes)
            _ = try await APIError.mapping { try await controller.bind(vf: vf, to: change.driver) }
            return try APIResponse.json(try await currentVF(vf))
        }
    }

    private func currentVF(_ address: PCIAddress) async throws -> VirtualFunction {
        let all = try await inventory.virtualFunctions(pf: nil)
        guard let vf = all.first(where: { $0.pciAddress == address }) else {
            throw APIError.notFound("no SR-IOV virtual function at \(address)")
        }
        return vf
    }

    private func vfResponse(_ report: VFController.VFReport, elapsed: Duration?) async throws -> Response {
        let location = report.location
        let vf = await controller.describe(location, settings: report.settings)
        let body = VFChangeResponse(vf: vf, results: report.results.map(SettingResult.init))
        if report.failed {
            return APIResponse.problem(
                Problem(title: "VF settings not applied", status: 500,
                        detail: "VF \(location.index) of \(location.pf): \(report.failures); settings applied by this request were undone"),
                results: report.results)
        }
        var response = try APIResponse.json(body)
        if let elapsed {
            // Standard Server-Timing: the whole controller call, and the part
            // of it spent in netlink (reads and writes).
            response.headers[.serverTiming] =
                "controller;dur=\(Self.milliseconds(elapsed)), netlink;dur=\(Self.milliseconds(report.hostTime))"
        }
        return response
    }

    static func milliseconds(_ d: Duration) -> String {
        String((d.milliseconds * 1000).rounded() / 1000)
    }
}

extension HTTPField.Name {
    static let serverTiming = Self("Server-Timing")!
}
