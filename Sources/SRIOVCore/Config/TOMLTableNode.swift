/// A table while its document is being parsed.
///
/// Tables are shared, mutable nodes here because a later header may reopen a
/// table an earlier line implied (`[a.b]` then `[a]`), or add an element to
/// an array of tables. The rules that make a document ambiguous (a key
/// defined twice, a table defined twice, a dotted key reaching into a table
/// defined elsewhere) are enforced as nodes are created. `build()` turns the
/// finished tree into plain `TOMLTable` values.
final class TOMLTableNode {
    enum Origin {
        case root
        /// Named only as part of a longer header (`a` in `[a.b]`); a later
        /// `[a]` may still define it, once.
        case implicit
        /// Opened by its own `[header]`.
        case header
        /// Created by a dotted key (`a.b = 1` creates table `a`).
        case dotted
        /// `{ ... }`: complete when its `}` is read; never extended.
        case inline
        /// One `[[header]]` element.
        case arrayElement
    }

    enum Content {
        case value(TOMLValue)
        case table(TOMLTableNode)
        case tableArray([TOMLTableNode])
    }

    struct Slot {
        var keyPosition: TOMLPosition
        var content: Content
    }

    /// Deepest nesting of tables and arrays accepted: keeps recursion (here
    /// and in every consumer) far from the stack's limit.
    static let maxDepth = 64

    var origin: Origin
    var position: TOMLPosition
    /// The header or inline table whose keys created this table. Dotted keys
    /// may only extend tables created by dotted keys of the same section.
    let section: Int
    let path: [String]
    let depth: Int
    private var order: [String] = []
    private var slots: [String: Slot] = [:]

    init(origin: Origin, position: TOMLPosition, section: Int, path: [String], depth: Int) {
        self.origin = origin
        self.position = position
        self.section = section
        self.path = path
        self.depth = depth
    }

    static func root() -> TOMLTableNode {
        TOMLTableNode(origin: .root, position: TOMLPosition(line: 1, column: 1), section: 0, path: [], depth: 0)
    }

    // MARK: Key/value lines

    /// The table a dotted key's inner part names (`a` in `a.b = 1`), created if needed.
    func dottedChild(_ name: String, at keyPosition: TOMLPosition, section: Int) throws(TOMLError) -> TOMLTableNode {
        if let slot = slots[name] {
            if case .table(let node) = slot.content, node.origin == .dotted, node.section == section {
                return node
            }
            throw TOMLError(
                at: keyPosition, key: TOMLKey.display(path + [name]),
                "cannot add keys with a dotted key: \(describe(slot)); set them where it is defined")
        }
        let node = try child(name, origin: .dotted, at: keyPosition, section: section)
        slots[name] = Slot(keyPosition: keyPosition, content: .table(node))
        order.append(name)
        return node
    }

    func insert(_ value: TOMLValue, key name: String, at keyPosition: TOMLPosition) throws(TOMLError) {
        if let slot = slots[name] {
            throw TOMLError(
                at: keyPosition, key: TOMLKey.display(path + [name]),
                "duplicate key: \(describe(slot))")
        }
        slots[name] = Slot(keyPosition: keyPosition, content: .value(value))
        order.append(name)
    }

    // MARK: Headers

    /// A table a header passes through (`a` in `[a.b]`): an existing table,
    /// the last element of an array of tables, or a new implicit table.
    func headerChild(_ name: String, at keyPosition: TOMLPosition, section: Int) throws(TOMLError) -> TOMLTableNode {
        if let slot = slots[name] {
            switch slot.content {
            case .table(let node): return node
            case .tableArray(let nodes): return nodes[nodes.count - 1]
            case .value:
                throw TOMLError(
                    at: keyPosition, key: TOMLKey.display(path + [name]),
                    "cannot open a table inside it: \(describe(slot))")
            }
        }
        let node = try child(name, origin: .implicit, at: keyPosition, section: section)
        slots[name] = Slot(keyPosition: keyPosition, content: .table(node))
        order.append(name)
        return node
    }

    /// `[name]` as the last part of a header.
    func defineTable(
        _ name: String, keyPosition: TOMLPosition, headerPosition: TOMLPosition, section: Int
    ) throws(TOMLError) -> TOMLTableNode {
        if let slot = slots[name] {
            if case .table(let node) = slot.content, node.origin == .implicit {
                node.origin = .header
                node.position = headerPosition
                return node
            }
            let hint: String
            if case .tableArray = slot.content {
                hint = "; use [[\(TOMLKey.display(path + [name]))]] to add an element"
            } else {
                hint = ""
            }
            throw TOMLError(
                at: keyPosition, key: TOMLKey.display(path + [name]),
                "table defined twice: \(describe(slot))\(hint)")
        }
        let node = try child(name, origin: .header, at: headerPosition, section: section)
        slots[name] = Slot(keyPosition: keyPosition, content: .table(node))
        order.append(name)
        return node
    }

    /// `[[name]]` as the last part of a header: a new element.
    func appendArrayElement(
        _ name: String, keyPosition: TOMLPosition, headerPosition: TOMLPosition, section: Int
    ) throws(TOMLError) -> TOMLTableNode {
        let node = try child(name, origin: .arrayElement, at: headerPosition, section: section)
        if let slot = slots[name] {
            guard case .tableArray(let nodes) = slot.content else {
                throw TOMLError(
                    at: keyPosition, key: TOMLKey.display(path + [name]),
                    "cannot be an array of tables: \(describe(slot))")
            }
            slots[name] = Slot(keyPosition: slot.keyPosition, content: .tableArray(nodes + [node]))
        } else {
            slots[name] = Slot(keyPosition: keyPosition, content: .tableArray([node]))
            order.append(name)
        }
        return node
    }

    // MARK: Building values

    func build() -> TOMLTable {
        var table = TOMLTable(position: position)
        for name in order {
            guard let slot = slots[name] else { continue }
            let value: TOMLValue
            switch slot.content {
            case .value(let v):
                value = v
            case .table(let node):
                value = TOMLValue(.table(node.build()), at: node.position)
            case .tableArray(let nodes):
                value = TOMLValue(
                    .array(nodes.map { TOMLValue(.table($0.build()), at: $0.position) }),
                    at: nodes[0].position)
            }
            table.set(TOMLTable.Entry(key: name, keyPosition: slot.keyPosition, value: value))
        }
        return table
    }

    // MARK: Helpers

    private func child(
        _ name: String, origin: Origin, at position: TOMLPosition, section: Int
    ) throws(TOMLError) -> TOMLTableNode {
        guard depth < Self.maxDepth else {
            throw TOMLError(
                at: position, key: TOMLKey.display(path + [name]),
                "tables are nested more than \(Self.maxDepth) levels deep")
        }
        return TOMLTableNode(
            origin: origin, position: position, section: section, path: path + [name], depth: depth + 1)
    }

    /// What a slot already holds, for "defined twice" messages.
    private func describe(_ slot: Slot) -> String {
        let line = slot.keyPosition.line
        switch slot.content {
        case .value(let v):
            if case .table = v.storage {
                return "already an inline table (line \(line)), which cannot be extended"
            }
            return "already \(v.typeDescription) (line \(line))"
        case .table(let node):
            switch node.origin {
            case .dotted: return "already a table created by a dotted key (line \(line))"
            case .header: return "already a table defined by its header (line \(node.position.line))"
            case .implicit, .root, .inline, .arrayElement: return "already a table (line \(line))"
            }
        case .tableArray:
            return "already an array of tables (line \(line))"
        }
    }
}

/// Writing keys back as TOML, for messages.
public enum TOMLKey {
    /// True when `name` can be written without quotes.
    public static func isBare(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(isBareKeyByte)
    }

    /// A dotted key as a TOML document would write it: `pf.vf_defaults`,
    /// `labels."rack id"`.
    public static func display(_ parts: [String]) -> String {
        parts.map { isBare($0) ? $0 : TOMLValue.quoted($0) }.joined(separator: ".")
    }

    static func isBareKeyByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
