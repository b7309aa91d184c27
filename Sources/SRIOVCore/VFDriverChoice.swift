/// The driver a VF is bound to, as the API, the configuration file and
/// sriovctl name it.
public enum VFDriverChoice: String, Sendable, Hashable, Codable, CaseIterable, TextParsable, CustomStringConvertible {
    /// For passing the VF to a VM.
    case vfio = "vfio-pci"
    /// The kernel's own VF driver (igbvf, iavf, ...).
    case host
    /// No driver.
    case none

    public static func parse(_ text: String, field: String) throws(ValidationError) -> VFDriverChoice {
        guard let driver = VFDriverChoice(rawValue: text.lowercased()) else {
            throw ValidationError(
                field: field, value: text, reason: "is not a driver choice; use \"vfio-pci\", \"host\" or \"none\"")
        }
        return driver
    }

    /// Whether a device bound to `driver` (nil: none) is bound as this asks.
    public func isSatisfied(by driver: String?) -> Bool {
        switch self {
        case .vfio: driver == Self.vfio.rawValue
        case .none: driver == nil
        case .host: driver != nil && driver != Self.vfio.rawValue
        }
    }

    public var description: String { rawValue }
}
