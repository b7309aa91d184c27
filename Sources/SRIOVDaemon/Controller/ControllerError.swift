import SRIOVCore

/// Why a controller operation was refused or failed. Mapped to API status
/// in one place (APIError.init(_:)).
public enum ControllerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Bad input; nothing was touched.
    case invalid(ValidationError)
    case notFound(String)
    /// The request conflicts with the host's state (a VF in use, ...).
    case conflict(String)
    /// The host failed an operation; what could be undone was undone.
    case hostFailure(String)

    public var description: String {
        switch self {
        case .invalid(let e): e.description
        case .notFound(let s), .conflict(let s), .hostFailure(let s): s
        }
    }
}
