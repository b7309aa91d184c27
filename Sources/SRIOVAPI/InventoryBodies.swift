import SRIOVCore

/// `GET /v1/health`.
public struct Health: Hashable, Sendable, Codable {
    /// "ok" when the daemon is serving.
    public var status: String
    public var version: String
    public var pfCount: Int

    public init(status: String, version: String, pfCount: Int) {
        self.status = status
        self.version = version
        self.pfCount = pfCount
    }
}

/// `GET /v1/pfs`.
public struct PFList: Hashable, Sendable, Codable {
    public var pfs: [PhysicalFunction]
    public init(pfs: [PhysicalFunction]) { self.pfs = pfs }
}

/// `GET /v1/vfs`.
public struct VFList: Hashable, Sendable, Codable {
    public var vfs: [VirtualFunction]
    public init(vfs: [VirtualFunction]) { self.vfs = vfs }
}
