/// A bounds-checked window on received bytes. Every read checks its range and
/// throws rather than trapping, so a truncated or garbled reply is an error,
/// never a crash. Integers are in host byte order, as the kernel writes them,
/// unless the reader's name says big-endian.
struct NetlinkBytes {
    private let storage: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) { storage = bytes[...] }

    private init(slice: ArraySlice<UInt8>) { storage = slice }

    var count: Int { storage.count }

    /// `count` bytes from `offset`.
    func slice(from offset: Int, count: Int) throws(NetlinkParseError) -> NetlinkBytes {
        try checkRange(offset, count)
        let start = storage.startIndex + offset
        return NetlinkBytes(slice: storage[start..<start + count])
    }

    /// Everything from `offset` to the end.
    func slice(from offset: Int) throws(NetlinkParseError) -> NetlinkBytes {
        try slice(from: offset, count: count - offset)
    }

    func bytes(at offset: Int, count: Int) throws(NetlinkParseError) -> [UInt8] {
        Array(try slice(from: offset, count: count).storage)
    }

    func uint8(at offset: Int) throws(NetlinkParseError) -> UInt8 {
        try checkRange(offset, 1)
        return storage[storage.startIndex + offset]
    }

    func uint16(at offset: Int) throws(NetlinkParseError) -> UInt16 { try load(UInt16.self, at: offset) }
    func uint32(at offset: Int) throws(NetlinkParseError) -> UInt32 { try load(UInt32.self, at: offset) }
    func int32(at offset: Int) throws(NetlinkParseError) -> Int32 { try load(Int32.self, at: offset) }

    /// A `__be16` field, such as `vlan_proto`.
    func bigEndianUInt16(at offset: Int) throws(NetlinkParseError) -> UInt16 {
        UInt16(bigEndian: try load(UInt16.self, at: offset))
    }

    /// The text before the first NUL (or all of it), as UTF-8.
    var nulTerminatedString: String {
        String(decoding: storage.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Throws unless at least `size` bytes are present; `what` names the field.
    func require(atLeast size: Int, for what: String) throws(NetlinkParseError) {
        guard count >= size else {
            throw NetlinkParseError("\(what) has \(count) bytes; at least \(size) expected")
        }
    }

    private func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) throws(NetlinkParseError) -> T {
        try checkRange(offset, MemoryLayout<T>.size)
        return storage.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    private func checkRange(_ offset: Int, _ length: Int) throws(NetlinkParseError) {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
            throw NetlinkParseError("read of \(length) bytes at offset \(offset) overruns a \(count)-byte field")
        }
    }
}

/// Rounds `length` up to netlink's 4-byte alignment (NLMSG_ALIGN, NLA_ALIGN).
func netlinkAligned(_ length: Int) -> Int {
    (length + NetlinkABI.alignment - 1) & ~(NetlinkABI.alignment - 1)
}

/// One attribute (struct nlattr and its payload).
struct NetlinkAttribute {
    /// The type without the NLA_F_NESTED / NLA_F_NET_BYTEORDER flag bits:
    /// the kernel sets NLA_F_NESTED on some nests and not on others.
    let type: UInt16
    let payload: NetlinkBytes
}

/// Walks a run of attributes, each a 4-byte header and a payload padded to
/// 4 bytes. An attribute whose length is below the header size or runs past
/// the end is an error.
struct NetlinkAttributeCursor {
    private let bytes: NetlinkBytes
    private var offset = 0

    init(_ bytes: NetlinkBytes) { self.bytes = bytes }

    mutating func next() throws(NetlinkParseError) -> NetlinkAttribute? {
        let header = NetlinkABI.attributeHeaderSize
        guard offset < bytes.count else { return nil }
        guard bytes.count - offset >= header else {
            throw NetlinkParseError("\(bytes.count - offset) stray bytes after the last attribute")
        }
        let length = Int(try bytes.uint16(at: offset))
        let type = try bytes.uint16(at: offset + 2) & NetlinkABI.attributeTypeMask
        guard length >= header, length <= bytes.count - offset else {
            throw NetlinkParseError(
                "attribute type \(type) at offset \(offset) claims \(length) bytes; \(bytes.count - offset) remain")
        }
        return try take(type: type, length: length)
    }

    /// Like `next()`, but measures a `listType` nest by its entries when its
    /// stored length is theirs wrapped past 64 KiB.
    ///
    /// The kernel closes nests with `nla_nest_end()`, which stores the length
    /// in the 16-bit `nla_len` unchecked, so a longer list arrives with its
    /// length modulo 65536. IFLA_VFINFO_LIST does this from about 220 VFs when
    /// VF stats are included, and at any VF count that lands on exactly
    /// 64 KiB its stored length is 0. Each entry (one VF) stays far below
    /// 64 KiB, and nothing of `entryType` follows the list in rtnl_fill_ifinfo.
    mutating func next(measuringWrappedList listType: UInt16, entryType: UInt16) throws(NetlinkParseError)
        -> NetlinkAttribute?
    {
        let header = NetlinkABI.attributeHeaderSize
        guard let storedLength = try? Int(bytes.uint16(at: offset)),
            let type = try? bytes.uint16(at: offset + 2) & NetlinkABI.attributeTypeMask,
            type == listType
        else { return try next() }

        var end = offset + header
        while let length = try? Int(bytes.uint16(at: end)),
            let entry = try? bytes.uint16(at: end + 2) & NetlinkABI.attributeTypeMask,
            entry == entryType, length >= header, length <= bytes.count - end
        {
            end = min(end + netlinkAligned(length), bytes.count)
        }
        let walkedLength = end - offset
        guard walkedLength > 0xFFFF, walkedLength & 0xFFFF == storedLength else { return try next() }
        return try take(type: type, length: walkedLength)
    }

    /// The attribute of `length` bytes at the cursor; moves past it and its padding.
    private mutating func take(type: UInt16, length: Int) throws(NetlinkParseError) -> NetlinkAttribute {
        let header = NetlinkABI.attributeHeaderSize
        let payload = try bytes.slice(from: offset + header, count: length - header)
        offset = min(offset + netlinkAligned(length), bytes.count)
        return NetlinkAttribute(type: type, payload: payload)
    }
}

extension NetlinkBytes {
    /// All attributes in these bytes, in order.
    func attributes() throws(NetlinkParseError) -> [NetlinkAttribute] {
        var cursor = NetlinkAttributeCursor(self)
        var result: [NetlinkAttribute] = []
        while let attribute = try cursor.next() { result.append(attribute) }
        return result
    }
}

/// One netlink message: struct nlmsghdr and its payload.
struct NetlinkMessage {
    let type: UInt16
    let flags: UInt16
    let sequence: UInt32
    let payload: NetlinkBytes

    /// The messages of one datagram, each padded to 4 bytes.
    static func split(datagram: [UInt8]) throws(NetlinkParseError) -> [NetlinkMessage] {
        let bytes = NetlinkBytes(datagram)
        let header = NetlinkABI.messageHeaderSize
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= header else {
                throw NetlinkParseError(
                    "\(bytes.count - offset) bytes at offset \(offset) are too short for a message header")
            }
            let length = Int(try bytes.uint32(at: offset))
            guard length >= header, length <= bytes.count - offset else {
                throw NetlinkParseError(
                    "message at offset \(offset) claims \(length) bytes; the datagram has \(bytes.count - offset) left")
            }
            messages.append(
                NetlinkMessage(
                    type: try bytes.uint16(at: offset + 4),
                    flags: try bytes.uint16(at: offset + 6),
                    sequence: try bytes.uint32(at: offset + 8),
                    payload: try bytes.slice(from: offset + header, count: length - header)))
            offset = min(offset + netlinkAligned(length), bytes.count)
        }
        return messages
    }
}

/// The outcome carried by NLMSG_ERROR (0 is an acknowledgement) or NLMSG_DONE,
/// with the extended-ack text when the kernel attached one.
struct NetlinkStatus {
    /// A positive errno, or 0 for success.
    let errno: Int32
    let extAckMessage: String?

    /// NLMSG_ERROR: `int error`, the echoed request (its header only when
    /// NLM_F_CAPPED, else all of it), then TLVs when NLM_F_ACK_TLVS.
    init(errorMessage message: NetlinkMessage) throws(NetlinkParseError) {
        let payload = message.payload
        try payload.require(atLeast: 4 + NetlinkABI.messageHeaderSize, for: "NLMSG_ERROR")
        let echoedLength: Int
        if message.flags & NetlinkABI.flagCapped != 0 {
            echoedLength = NetlinkABI.messageHeaderSize
        } else {
            echoedLength = netlinkAligned(Int(try payload.uint32(at: 4)))
        }
        try self.init(code: payload.int32(at: 0), payload: payload, tlvOffset: 4 + echoedLength, flags: message.flags)
    }

    /// NLMSG_DONE: `int error`, then TLVs when NLM_F_ACK_TLVS.
    init(doneMessage message: NetlinkMessage) throws(NetlinkParseError) {
        let payload = message.payload
        // A done message without a payload is what very old kernels sent.
        let code = payload.count >= 4 ? try payload.int32(at: 0) : 0
        try self.init(code: code, payload: payload, tlvOffset: 4, flags: message.flags)
    }

    private init(code: Int32, payload: NetlinkBytes, tlvOffset: Int, flags: UInt16) throws(NetlinkParseError) {
        errno = Int32(clamping: code.magnitude)  // the kernel sends -errno
        var text: String?
        if flags & NetlinkABI.flagAckTLVs != 0, tlvOffset < payload.count {
            for tlv in try payload.slice(from: tlvOffset).attributes() where tlv.type == NetlinkABI.extAckMessage {
                text = tlv.payload.nulTerminatedString
            }
        }
        extAckMessage = text
    }
}

/// Lays out a request: the message header, a fixed header, attributes.
struct NetlinkRequestWriter {
    private var bytes: [UInt8] = []

    init(type: UInt16, flags: UInt16, sequence: UInt32) {
        append(UInt32(0))  // nlmsg_len, set by `finish()`
        append(type)
        append(flags)
        append(sequence)
        append(UInt32(0))  // nlmsg_pid: 0 addresses the kernel
    }

    /// Appends an integer in host byte order.
    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }

    mutating func appendAttribute(type: UInt16, _ value: UInt32) {
        append(UInt16(NetlinkABI.attributeHeaderSize + 4))
        append(type)
        append(value)
    }

    mutating func appendAttribute(type: UInt16, int32 value: Int32) {
        appendAttribute(type: type, UInt32(bitPattern: value))
    }

    /// An attribute whose payload is `payload`, padded to 4 bytes.
    mutating func appendAttribute(type: UInt16, bytes payload: [UInt8]) {
        append(UInt16(NetlinkABI.attributeHeaderSize + payload.count))
        append(type)
        bytes.append(contentsOf: payload)
        bytes.append(contentsOf: [UInt8](repeating: 0, count: netlinkAligned(payload.count) - payload.count))
    }

    /// A NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND).
    mutating func appendAttribute(type: UInt16, string: String) {
        appendAttribute(type: type, bytes: Array(string.utf8) + [0])
    }

    /// Opens a nested attribute; `endNest` with the returned offset closes it.
    mutating func beginNest(type: UInt16) -> Int {
        let start = bytes.count
        append(UInt16(0))
        append(type | NetlinkABI.attributeNested)
        return start
    }

    mutating func endNest(_ start: Int) {
        withUnsafeBytes(of: UInt16(bytes.count - start)) { length in
            bytes.replaceSubrange(start..<start + 2, with: length)
        }
    }

    /// The request, with its length filled in.
    func finish() -> [UInt8] {
        var result = bytes
        withUnsafeBytes(of: UInt32(result.count)) { length in
            result.replaceSubrange(0..<4, with: length)
        }
        return result
    }
}
