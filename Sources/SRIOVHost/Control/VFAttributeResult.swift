import CNetlink

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A VF setting that is sent to the kernel on its own (one RTM_SETLINK each).
public enum VFAttribute: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case mac
    /// VLAN id, QoS and protocol: one kernel attribute.
    case vlan
    case spoofCheck
    case trust
    /// IFLA_VF_RSS_QUERY_EN: the VF may query the PF's RSS key and table.
    case rssQuery
    case linkState
    /// Minimum and maximum TX rate: one kernel attribute (IFLA_VF_RATE).
    case txRate

    public var description: String { rawValue }
}

/// What became of one VF attribute.
public struct VFAttributeResult: Sendable, Hashable, CustomStringConvertible {
    public enum Outcome: Sendable, Hashable {
        /// The kernel accepted it. Some drivers apply a change later
        /// (i40e/iavf MACs): read it back to be sure.
        case applied
        /// The PF's driver has no operation for this attribute (EOPNOTSUPP):
        /// igb has none for link state, for example.
        case unsupported(reason: String)
        /// Refused or not sent. `code` is the kernel's errno (positive) when
        /// the kernel answered, and libnl's negative NLE_* code when the
        /// failure was on this side (socket, memory, no answer).
        case failed(code: Int32, message: String)
    }

    public var attribute: VFAttribute
    public var outcome: Outcome

    public init(attribute: VFAttribute, outcome: Outcome) {
        self.attribute = attribute
        self.outcome = outcome
    }

    public var description: String {
        switch outcome {
        case .applied: "\(attribute): applied"
        case .unsupported(let reason): "\(attribute): unsupported: \(reason)"
        case .failed(let code, let message): "\(attribute): failed: \(message) (code \(code))"
        }
    }
}

extension VFAttributeResult.Outcome {
    /// Maps one request's result. `libnlCode` is what libnl returned: 0 or a
    /// negative NLE_* code. libnl folds errnos together (every errno it has
    /// no code for becomes NLE_FAILURE), so when the kernel answered, its own
    /// errno and extended-ack text are used instead.
    init(libnlCode: Int32, kernelErrno: Int32?, kernelMessage: String?) {
        if let kernelErrno, kernelErrno != 0 {
            let text = String(cString: strerror(kernelErrno))
            switch kernelErrno {
            case EOPNOTSUPP, ENOTSUP:
                self = .unsupported(reason: kernelMessage ?? "the PF's driver does not support it (\(text))")
            default:
                self = .failed(code: kernelErrno, message: kernelMessage.map { "\(text): \($0)" } ?? text)
            }
            return
        }
        if libnlCode >= 0 {
            self = .applied
            return
        }
        let text = String(cString: nl_geterror(libnlCode))
        if -libnlCode == NLE_OPNOTSUPP {
            self = .unsupported(reason: "the PF's driver does not support it (\(text))")
        } else {
            self = .failed(code: libnlCode, message: text)
        }
    }
}
