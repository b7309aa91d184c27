import Foundation
import SRIOVAPI
import SRIOVCore
import SRIOVHost

extension AssignmentDriver {
    /// What the controller binds for it (only known drivers are accepted).
    var choice: VFDriverChoice { self == .vfio ? .vfio : .host }
}
