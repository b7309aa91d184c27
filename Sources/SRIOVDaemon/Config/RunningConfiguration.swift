import Synchronization

/// The configuration in force, shared by the services that read it. The
/// reconciler replaces it when a reloaded file is accepted (SIGHUP), so
/// assignments see pools added or removed without a restart.
public final class RunningConfiguration: Sendable {
    private let value: Mutex<SRIOVConfiguration>

    public init(_ configuration: SRIOVConfiguration) {
        value = Mutex(configuration)
    }

    /// A snapshot: one request works with one configuration throughout.
    public var current: SRIOVConfiguration { value.withLock { $0 } }

    func replace(_ configuration: SRIOVConfiguration) {
        value.withLock { $0 = configuration }
    }
}
