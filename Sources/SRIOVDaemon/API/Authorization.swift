import HTTPTypes
import Hummingbird
import Logging
import SRIOVCore
import SRIOVHost

#if canImport(Glibc)
import Glibc
#endif

/// Who may use the API, decided from the connecting process's credentials
/// (`SO_PEERCRED`): root and members of the admin group may do anything,
/// members of the reader group may only read (GET, HEAD), anyone else
/// nothing.
///
/// A peer's groups are its primary group as the kernel recorded it at
/// `connect()`, plus the groups the group database (`getgrouplist`, through
/// NSS) lists for its user. The database, not `/proc/<pid>/status`, because
/// the pid in `SO_PEERCRED` may belong to another process by the time it is
/// read (the client exited, the pid was reused), `/proc` of other users is
/// hidden under `ProtectProc=`/`hidepid=`, and the database answers the same
/// for every connection of a user: removing someone from the group takes
/// effect on their next request, not on their next login. The cost: groups
/// a process holds without the database listing them (`SupplementaryGroups=`
/// of a systemd service, `setpriv --groups`) do not count; add the user to
/// the group, or make it the user's primary group.
public struct AuthorizationPolicy: Sendable {
    /// A group named in the configuration, resolved to its id at start.
    public struct Group: Sendable, Hashable, CustomStringConvertible {
        public var name: String
        public var gid: gid_t

        public init(name: String, gid: gid_t) {
            self.name = name
            self.gid = gid
        }

        public var description: String { name }
    }

    /// What a peer may do.
    public enum Access: Sendable, Hashable {
        case none
        case read
        case readAndChange
    }

    /// Members may do anything; nil: only root may change things.
    public var adminGroup: Group?
    /// Members may read; nil: no read-only access.
    public var readerGroup: Group?
    /// The groups the database lists for `uid` (its primary group included);
    /// empty when the uid has no user entry.
    let databaseGroups: @Sendable (uid_t) -> Set<gid_t>

    public init(
        adminGroup: Group?, readerGroup: Group?,
        databaseGroups: @escaping @Sendable (uid_t) -> Set<gid_t> = GroupDatabase.groups(ofUID:)
    ) {
        self.adminGroup = adminGroup
        self.readerGroup = readerGroup
        self.databaseGroups = databaseGroups
    }

    /// The policy for `daemon.admin_group` and `daemon.reader_group` (nil or
    /// "" = none). A name that is not a group is logged and treated as none:
    /// access only narrows.
    public static func resolving(
        adminGroup: String?, readerGroup: String?, logger: Logger,
        lookup: (String) -> gid_t? = GroupDatabase.gid(named:)
    ) -> AuthorizationPolicy {
        func resolve(_ name: String?, setting: String, grants: String) -> Group? {
            guard let name, !name.isEmpty else { return nil }
            guard let gid = lookup(name) else {
                logger.warning(
                    "access group does not exist; treating it as not configured",
                    metadata: [
                        "setting": "\(setting)", "group": "\(name)",
                        "detail": "no one gets \(grants) through it; create the group (systemd-sysusers sriovd.sysusers)",
                    ])
                return nil
            }
            return Group(name: name, gid: gid)
        }
        return AuthorizationPolicy(
            adminGroup: resolve(adminGroup, setting: "daemon.admin_group", grants: "change access"),
            readerGroup: resolve(readerGroup, setting: "daemon.reader_group", grants: "read access"))
    }

    public func access(for peer: PeerCredentials) -> Access {
        if peer.uid == 0 { return .readAndChange }
        guard adminGroup != nil || readerGroup != nil else { return .none }
        let groups = databaseGroups(peer.uid).union([peer.gid])
        if let adminGroup, groups.contains(adminGroup.gid) { return .readAndChange }
        if let readerGroup, groups.contains(readerGroup.gid) { return .read }
        return .none
    }

    /// Methods that only read.
    static func isRead(_ method: HTTPRequest.Method) -> Bool {
        method == .get || method == .head
    }

    /// Why `peer` may not make a `method` request, as a 403's detail; nil when
    /// it may. Says which group grants what, so the reader knows the fix.
    public func refusal(of method: HTTPRequest.Method, by peer: PeerCredentials) -> String? {
        let access = access(for: peer)
        let reading = Self.isRead(method)
        switch access {
        case .readAndChange: return nil
        case .read where reading: return nil
        case .read:
            let changers = adminGroup.map { "members of group \($0) may" } ?? "only root may"
            return "uid \(peer.uid) may only read, not change VFs: \(changers)"
        case .none where reading:
            switch (adminGroup, readerGroup) {
            case (nil, nil):
                return "uid \(peer.uid) may not read: only root may use sriovd's API (no admin or reader group is configured)"
            case (let admin?, nil):
                return "uid \(peer.uid) may not read: members of group \(admin) may"
            case (nil, let reader?):
                return "uid \(peer.uid) may not read: members of group \(reader) may; only root may change VFs"
            case (let admin?, let reader?):
                return "uid \(peer.uid) may not read: members of group \(reader) may; members of group \(admin) may read and change VFs"
            }
        case .none:
            let changers = adminGroup.map { "members of group \($0) may" } ?? "only root may"
            let readers = readerGroup.map { "; members of group \($0) may read" } ?? ""
            return "uid \(peer.uid) may not change VFs: \(changers)\(readers)"
        }
    }
}

/// Refuses, before any route runs, a request its peer may not make: 403 with
/// the reason. Adds the peer's uid and pid to the request's logger, so every
/// record a change writes says who asked for it.
struct AuthorizationMiddleware<Context: PeerIdentifyingContext>: RouterMiddleware {
    let policy: AuthorizationPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let peer = await context.peerCredentials() else {
            context.logger.warning(
                "request refused: client unknown", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)"])
            throw APIError.forbidden("cannot tell who sent this request: sriovd identifies clients by the credentials of its Unix socket's peer")
        }
        if let refusal = policy.refusal(of: request.method, by: peer) {
            context.logger.notice(
                "request refused",
                metadata: [
                    "peer.uid": "\(peer.uid)", "peer.pid": "\(peer.pid)", "method": "\(request.method)",
                    "path": "\(request.uri.path)",
                ])
            throw APIError.forbidden(refusal)
        }
        var context = context
        context.logger[metadataKey: "peer.uid"] = "\(peer.uid)"
        context.logger[metadataKey: "peer.pid"] = "\(peer.pid)"
        return try await next(request, context)
    }
}

/// Refuses a request whose declared body (`Content-Length`) is larger than
/// `limit` with 413 before any of it is read. Bodies without a length
/// (chunked) are bounded where they are read (`RequestBody.decode`).
struct RequestSizeLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // NIO's HTTP parser has already refused a Content-Length that is not
        // a number; one too large for Int is over any limit.
        if let declared = request.headers[.contentLength], Int(declared) ?? .max > limit {
            throw APIError.payloadTooLarge(limit: limit)
        }
        return try await next(request, context)
    }
}

extension Router where Context: PeerIdentifyingContext {
    /// Adds the checks every request passes before its route runs: who is
    /// asking (when `authorization` is given), then how much it sends. Add
    /// after the problem middleware, before any route.
    func addAdmissionChecks(authorization: AuthorizationPolicy?, maxRequestBytes: Int) {
        if let authorization {
            middlewares.add(AuthorizationMiddleware<Context>(policy: authorization))
        }
        middlewares.add(RequestSizeLimitMiddleware<Context>(limit: maxRequestBytes))
    }
}
