import Foundation
import HTTPTypes
import Hummingbird
import SRIOVAPI
import SRIOVCore

/// An API failure, mapped to an HTTP status and an RFC 9457 problem document
/// here and nowhere else.
public enum APIError: Error, Sendable, Equatable {
    /// Input refused: names the field and why. Nothing was changed.
    case invalid(ValidationError)
    case notFound(String)
    case conflict(String)
    case forbidden(String)
    case payloadTooLarge(limit: Int)
    case unsupportedMediaType(String)
    /// The host refused or failed an operation.
    case hostFailure(String)
    case unavailable(String)
}

extension APIError: HTTPResponseError {
    public var status: HTTPResponse.Status {
        switch self {
        case .invalid: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .forbidden: .forbidden
        case .payloadTooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .hostFailure: .internalServerError
        case .unavailable: .serviceUnavailable
        }
    }

    public var problem: Problem {
        switch self {
        case .invalid(let error):
            Problem(title: "Invalid request", status: 400, detail: error.description, field: error.field)
        case .notFound(let detail):
            Problem(title: "Not found", status: 404, detail: detail)
        case .conflict(let detail):
            Problem(title: "Conflict", status: 409, detail: detail)
        case .forbidden(let detail):
            Problem(title: "Forbidden", status: 403, detail: detail)
        case .payloadTooLarge(let limit):
            Problem(title: "Request body too large", status: 413, detail: "the request body is larger than \(limit) bytes")
        case .unsupportedMediaType(let detail):
            Problem(title: "Unsupported media type", status: 415, detail: detail)
        case .hostFailure(let detail):
            Problem(title: "Host operation failed", status: 500, detail: detail)
        case .unavailable(let detail):
            Problem(title: "Service unavailable", status: 503, detail: detail)
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        APIResponse.problem(problem)
    }
}

/// Turns every error that reaches the top, including the router's own 404 and
/// Hummingbird's HTTP errors, into a problem document, and anything unexpected
/// into a 500 that is logged with its cause.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            if case .hostFailure = error {
                context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            }
            return APIResponse.problem(error.problem)
        } catch let error as HTTPError {
            let status = Int(error.status.code)
            let detail: String
            if let body = error.body, !body.isEmpty {
                detail = body
            } else if error.status == .notFound {
                detail = "no such endpoint: \(request.method) \(request.uri.path)"
            } else {
                detail = error.status.reasonPhrase
            }
            return APIResponse.problem(Problem(title: error.status.reasonPhrase, status: status, detail: detail))
        } catch {
            context.logger.error(
                "unexpected error", metadata: ["path": "\(request.uri.path)", "error": "\(String(reflecting: error))"])
            return APIResponse.problem(
                Problem(title: "Internal error", status: 500, detail: "internal error: \(error)"))
        }
    }
}

extension APIError {
    /// The one place controller errors become API errors.
    init(_ error: ControllerError) {
        switch error {
        case .invalid(let e): self = .invalid(e)
        case .notFound(let s): self = .notFound(s)
        case .conflict(let s): self = .conflict(s)
        case .hostFailure(let s): self = .hostFailure(s)
        }
    }

    /// Runs a controller call, turning its error into an API error.
    static func mapping<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ControllerError {
            throw APIError(error)
        }
    }
}
