import Hummingbird
import Logging
import NIOCore

/// The per-request context of sriovd's router.
public struct SRIOVRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }
}
