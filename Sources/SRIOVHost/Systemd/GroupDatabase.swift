#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The system's user and group database (NSS: `/etc/group`, LDAP, ...).
public enum GroupDatabase {
    /// The id of the group called `name`; nil when there is none.
    public static func gid(named name: String) -> gid_t? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 1024)
        while true {
            let status = getgrnam_r(name, &entry, &buffer, buffer.count, &result)
            if status == ERANGE && buffer.count < 1 << 20 {
                buffer = [CChar](repeating: 0, count: buffer.count * 4)
                continue
            }
            guard status == 0, result != nil else { return nil }
            return entry.gr_gid
        }
    }

    /// The groups the database lists for the user with id `uid`, its primary
    /// group included (`getgrouplist`); empty when no user has that id.
    @Sendable
    public static func groups(ofUID uid: uid_t) -> Set<gid_t> {
        guard let (name, primary) = user(uid) else { return [] }
        var count: Int32 = 32
        while true {
            var gids = [gid_t](repeating: 0, count: Int(count))
            let wanted = count
            if getgrouplist(name, primary, &gids, &count) >= 0 {
                return Set(gids.prefix(Int(count)))
            }
            // -1: the list did not fit; `count` now says how many there are.
            guard count > wanted else { return [primary] }
        }
    }

    /// Name and primary group of the user with id `uid` (`getpwuid_r`).
    static func user(_ uid: uid_t) -> (name: String, gid: gid_t)? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 1024)
        while true {
            let status = getpwuid_r(uid, &entry, &buffer, buffer.count, &result)
            if status == ERANGE && buffer.count < 1 << 20 {
                buffer = [CChar](repeating: 0, count: buffer.count * 4)
                continue
            }
            guard status == 0, result != nil, let name = entry.pw_name else { return nil }
            return (String(cString: name), entry.pw_gid)
        }
    }
}
