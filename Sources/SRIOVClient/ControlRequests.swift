import SRIOVAPI
import SRIOVCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The write requests: VF counts, VF settings, VF drivers.
extension SRIOVClient {
    /// `PUT /v1/pfs/{address}`: sets a PF's VF count and/or autoprobe; answers
    /// with the PF and its VFs afterwards. A count above `sriov_totalvfs` is a
    /// 400; lowering the count while a VF that would go is in use is a 409
    /// naming the VFs, unless `change.force`.
    public func changePF(
        _ address: PCIAddress, _ change: PFChange
    ) async throws(ClientError) -> PhysicalFunctionDetail {
        try await send(.changePF(address, change)).checked().decode(PhysicalFunctionDetail.self)
    }

    /// `PATCH /v1/vfs/{address}`. A setting that failed is not thrown: the
    /// report says which, with `failure` set; any other refusal is.
    public func changeVF(_ address: PCIAddress, _ change: VFChange) async throws(ClientError) -> VFChangeReport {
        try VFChangeReport(response: try await send(.changeVF(address, change)))
    }

    /// `POST /v1/vfs/{address}/restore`: puts back what sriovd changed on the
    /// VF. Empty `results` when sriovd has changed nothing on it.
    public func restoreVF(_ address: PCIAddress) async throws(ClientError) -> VFChangeReport {
        try VFChangeReport(response: try await send(.restoreVF(address)))
    }

    /// `POST /v1/vfs/{address}/scrub`: clears a free VF (no MAC or VLAN, spoof
    /// check on, trust off, link disabled where the driver can). 409 when assigned.
    public func scrubVF(_ address: PCIAddress) async throws(ClientError) -> VFChangeReport {
        try VFChangeReport(response: try await send(.scrubVF(address)))
    }

    /// `POST /v1/vfs/{address}/driver`: binds the VF; answers with the VF afterwards.
    public func bindVF(_ address: PCIAddress, to driver: VFDriverChoice) async throws(ClientError) -> VirtualFunction {
        try await send(.bindVF(address, to: driver)).checked().decode(VirtualFunction.self)
    }
}

extension SRIOVClient.Endpoint {
    /// One VF, for changing its settings.
    public static func vf(_ address: PCIAddress) -> Self { Self(path: "/v1/vfs/\(address)") }
    public static func vfRestore(_ address: PCIAddress) -> Self { Self(path: "/v1/vfs/\(address)/restore") }
    public static func vfDriver(_ address: PCIAddress) -> Self { Self(path: "/v1/vfs/\(address)/driver") }
    public static func vfScrub(_ address: PCIAddress) -> Self { Self(path: "/v1/vfs/\(address)/scrub") }
}

extension SRIOVClient.Request {
    public static func changePF(_ address: PCIAddress, _ change: SRIOVClient.PFChange) throws(ClientError) -> Self {
        Self(method: .put, path: SRIOVClient.Endpoint.pf(address).path, body: try jsonBody(change))
    }

    public static func changeVF(_ address: PCIAddress, _ change: SRIOVClient.VFChange) throws(ClientError) -> Self {
        Self(method: .patch, path: SRIOVClient.Endpoint.vf(address).path, body: try jsonBody(change))
    }

    /// Without a body: the daemon knows what it changed.
    public static func restoreVF(_ address: PCIAddress) -> Self {
        Self(method: .post, path: SRIOVClient.Endpoint.vfRestore(address).path)
    }

    /// Without a body, as restore.
    public static func scrubVF(_ address: PCIAddress) -> Self {
        Self(method: .post, path: SRIOVClient.Endpoint.vfScrub(address).path)
    }

    public static func bindVF(_ address: PCIAddress, to driver: VFDriverChoice) throws(ClientError) -> Self {
        Self(
            method: .post, path: SRIOVClient.Endpoint.vfDriver(address).path,
            body: try jsonBody(DriverChange(driver: driver)))
    }

    /// Keys sorted, so that the same change is always the same bytes.
    static func jsonBody(_ value: some Encodable) throws(ClientError) -> [UInt8] {
        do {
            return Array(try APIJSON.encoder().encode(value))
        } catch {
            throw .invalidRequest("the body cannot be encoded as JSON: \(error)")
        }
    }
}

extension SRIOVClient {
    /// The outcome of one group of VF settings.
    public typealias SettingResult = SRIOVAPI.SettingResult

    /// The answer to a VF change or restore, failed or not.
    public struct VFChangeReport: Hashable, Sendable {
        /// The VF afterwards. nil when a setting failed: the daemon's problem
        /// document carries the results but not the VF.
        public var vf: VirtualFunction?
        /// One per setting group the request touched, in the daemon's order.
        public var results: [SettingResult]
        /// Why the change failed; the settings it had applied were rolled
        /// back (see `results`). nil when nothing failed.
        public var failure: Problem?

        public init(vf: VirtualFunction?, results: [SettingResult], failure: Problem? = nil) {
            self.vf = vf
            self.results = results
            self.failure = failure
        }

        /// A 2xx with `{"vf":...,"results":[...]}`, or an error status whose
        /// problem document has a `results` member. Any other error status is
        /// thrown, as `Response.checked()` throws it.
        public init(response: Response) throws(ClientError) {
            if response.isSuccess {
                let body = try response.decode(VFChangeResponse.self)
                self.init(vf: body.vf, results: body.results)
                return
            }
            guard let results = try? response.decode(FailedVFChange.self).results else {
                throw ClientError(response: response)
            }
            guard case .api(let problem) = ClientError(response: response) else {
                throw ClientError(response: response)
            }
            self.init(vf: nil, results: results, failure: problem)
        }

        /// The results with this outcome.
        public func results(_ outcome: SettingResult.Outcome) -> [SettingResult] {
            results.filter { $0.outcome == outcome }
        }
    }
}
