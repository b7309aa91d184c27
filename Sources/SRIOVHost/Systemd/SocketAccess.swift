import CSRIOVShim

#if canImport(Glibc)
import Glibc
#endif

/// Lets the read-only group connect to the API socket without widening its
/// mode: a POSIX access ACL (`system.posix_acl_access`) that adds one group
/// entry with read and write (connecting to a Unix socket needs write). The
/// mode keeps its owner, group and other bits; `ls -l` shows 0660 with a `+`,
/// and `getfacl` the extra group. sriovd still decides per request what the
/// caller may do; this only lets the reader group reach it.
///
/// The xattr is written directly (the kernel's `posix_acl_xattr` layout:
/// version 2, then sorted entries of tag, permissions, id, little-endian),
/// so libacl and setfacl are not needed.
public enum SocketAccess {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    // include/uapi/linux/posix_acl.h, posix_acl_xattr.h
    static let version: UInt32 = 2
    static let userObject: UInt16 = 0x01
    static let groupObject: UInt16 = 0x04
    static let group: UInt16 = 0x08
    static let mask: UInt16 = 0x10
    static let other: UInt16 = 0x20
    static let undefinedID: UInt32 = 0xFFFF_FFFF
    static let readWrite: UInt16 = 6

    /// The ACL for a file of `mode` with `gid` given read and write: the
    /// owner, owning group and other entries from the mode, the group entry,
    /// and a mask that lets both groups' permissions through.
    public static func accessACL(mode: mode_t, granting gid: gid_t) -> [UInt8] {
        let ownerBits = UInt16((mode >> 6) & 7)
        let groupBits = UInt16((mode >> 3) & 7)
        let otherBits = UInt16(mode & 7)
        var bytes: [UInt8] = []
        func append32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        func entry(_ tag: UInt16, _ perm: UInt16, _ id: UInt32) {
            withUnsafeBytes(of: tag.littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: perm.littleEndian) { bytes.append(contentsOf: $0) }
            append32(id)
        }
        append32(version)
        entry(userObject, ownerBits, undefinedID)
        entry(groupObject, groupBits, undefinedID)
        entry(group, readWrite, UInt32(gid))
        entry(mask, groupBits | readWrite, undefinedID)
        entry(other, otherBits, undefinedID)
        return bytes
    }

    /// Gives group `gid` read and write on `path` (its mode otherwise as is).
    /// Nothing to do when `gid` is the file's own group.
    public static func grant(readWriteTo gid: gid_t, on path: String) throws(Failure) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw Failure(description: "stat \(path): \(String(cString: strerror(errno)))")
        }
        if st.st_gid == gid { return }
        let acl = accessACL(mode: st.st_mode & 0o777, granting: gid)
        let result = acl.withUnsafeBytes {
            sriov_shim_set_xattr(path, "system.posix_acl_access", $0.baseAddress, $0.count)
        }
        guard result == 0 else {
            let reason = -result == EOPNOTSUPP ? "the file system has no POSIX ACLs" : String(cString: strerror(-result))
            throw Failure(description: "giving group \(gid) access to \(path): \(reason)")
        }
    }
}
