import CNetlink
import SRIOVCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What became of one VF setting group: one netlink attribute, sent on its own.
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

    public var group: VFSettingGroup
    public var outcome: Outcome

    public init(group: VFSettingGroup, outcome: Outcome) {
        self.group = group
        self.outcome = outcome
    }

    public var description: String {
        switch outcome {
        case .applied: "\(group): applied"
        case .unsupported(let reason): "\(group): unsupported: \(reason)"
        case .failed(let code, let message): "\(group): failed: \(message) (code \(code))"
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
