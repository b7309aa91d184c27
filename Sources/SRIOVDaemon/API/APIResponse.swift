import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SRIOVAPI

/// JSON responses with the API's one encoder configuration (`APIJSON`):
/// camelCase as declared, sorted keys (stable output for scripts and diffs).
enum APIResponse {
    static func makeEncoder() -> JSONEncoder { APIJSON.encoder() }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try makeEncoder().encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A problem document with the per-setting results of a VF change.
    static func problem(_ problem: Problem, results: [VFController.SettingResult]) -> Response {
        let body = FailedVFChange(problem: problem, results: results.map(SettingResult.init))
        let data = (try? makeEncoder().encode(body)) ?? Data("{}".utf8)
        return Response(
            status: HTTPResponse.Status(code: problem.status),
            headers: [.contentType: "application/problem+json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func problem(_ problem: Problem) -> Response {
        let data = (try? makeEncoder().encode(problem)) ?? Data("{}".utf8)
        return Response(
            status: HTTPResponse.Status(code: problem.status),
            headers: [.contentType: "application/problem+json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension SettingResult {
    /// The controller's result as the API shows it.
    init(_ result: VFController.SettingResult) {
        self.init(
            setting: Setting(rawValue: result.setting.rawValue), outcome: Outcome(rawValue: result.outcome.rawValue),
            detail: result.detail)
    }
}
