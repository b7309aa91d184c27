import Foundation
import Hummingbird
import SRIOVAPI
import SRIOVCore
import SRIOVHost

/// Read-only inventory endpoints: PFs, VFs, health.
struct InventoryRoutes<Context: RequestContext> {
    let inventory: any InventorySource
    let version: String

    func register(on router: Router<Context>) {
        router.get("/v1/health") { _, _ in
            let pfs = try await inventory.physicalFunctions()
            return try APIResponse.json(Health(status: "ok", version: version, pfCount: pfs.count))
        }
        router.get("/v1/pfs") { _, _ in
            try APIResponse.json(PFList(pfs: try await inventory.physicalFunctions()))
        }
        router.get("/v1/pfs/{pciAddress}") { _, context in
            let address = try pciParameter(context.parameters.get("pciAddress") ?? "", field: "pciAddress")
            guard let detail = try await inventory.physicalFunction(address) else {
                throw APIError.notFound("no SR-IOV physical function at \(address)")
            }
            return try APIResponse.json(detail)
        }
        router.get("/v1/vfs") { request, _ in
            var pf: PCIAddress?
            if let text = request.uri.queryParameters.get("pf") {
                let address = try pciParameter(text, field: "pf")
                guard try await inventory.physicalFunction(address) != nil else {
                    throw APIError.notFound("no SR-IOV physical function at \(address)")
                }
                pf = address
            }
            return try APIResponse.json(VFList(vfs: try await inventory.virtualFunctions(pf: pf)))
        }
    }
}

/// Parses a PCI address from a path or query parameter, as a 400 naming the field.
func pciParameter(_ text: String, field: String) throws(APIError) -> PCIAddress {
    do {
        // Generic clients escape ':' in paths (%3A).
        return try PCIAddress.parse(text.removingPercentEncoding ?? text, field: field)
    } catch {
        throw .invalid(error)
    }
}
