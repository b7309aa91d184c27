import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// JSON responses with one encoder configuration: camelCase as declared,
/// sorted keys (stable output for scripts and diffs).
enum APIResponse {
    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try makeEncoder().encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A problem document with the per-setting results of a VF change.
    static func problem(_ problem: Problem, results: [VFController.SettingResult]) -> Response {
        struct WithResults: Encodable {
            var problem: Problem
            var results: [VFController.SettingResult]
            enum Keys: String, CodingKey { case results }
            func encode(to encoder: any Encoder) throws {
                try problem.encode(to: encoder)
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(results, forKey: .results)
            }
        }
        let data = (try? makeEncoder().encode(WithResults(problem: problem, results: results))) ?? Data("{}".utf8)
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
