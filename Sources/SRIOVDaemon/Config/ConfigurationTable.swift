import SRIOVCore

/// The problems found while one file is read. Readers report into it and go
/// on, so that one run finds every problem.
final class ConfigurationDiagnostics {
    let file: String
    private(set) var errors: [ConfigurationError] = []

    init(file: String) {
        self.file = file
    }

    func report(_ key: String?, at position: TOMLPosition, _ message: String) {
        errors.append(
            ConfigurationError(file: file, line: position.line, column: position.column, key: key, message: message))
    }

    /// In file order; errors at the same place keep the order they were found in.
    var sortedErrors: [ConfigurationError] {
        errors.enumerated().sorted { a, b in
            (a.element.line ?? 0, a.element.column ?? 0, a.offset) < (
                b.element.line ?? 0, b.element.column ?? 0, b.offset
            )
        }.map(\.element)
    }
}

/// One TOML table of the configuration, read with typed accessors that report
/// a missing or mistyped value and return nil, instead of throwing.
struct ConfigurationTable {
    /// A value read from the file, with where it was written and its key.
    struct Located<Value> {
        var value: Value
        var position: TOMLPosition
        var key: String
    }

    let table: TOMLTable
    /// The table's key as messages name it: `""` for the document, `daemon`, `pf[0]`.
    let path: String
    let diagnostics: ConfigurationDiagnostics

    var position: TOMLPosition { table.position }

    /// `name` qualified by this table's path: `pf[0].num_vfs`.
    func key(_ name: String) -> String {
        let part = TOMLKey.display([name])
        return path.isEmpty ? part : "\(path).\(part)"
    }

    func report(_ name: String, at position: TOMLPosition, _ message: String) {
        diagnostics.report(key(name), at: position, message)
    }

    /// A problem with the table as a whole (e.g. a missing key), at its header.
    func reportTable(_ message: String) {
        diagnostics.report(path.isEmpty ? nil : path, at: table.position, message)
    }

    // MARK: Keys

    /// Reports every key that is not in `known`: with `hint`'s advice when it
    /// has some for that key, else with the closest known key, if one is close.
    func rejectUnknownKeys(_ known: [String], hint: (String) -> String? = { _ in nil }) {
        for entry in table.entries where !known.contains(entry.key) {
            var message = "unknown key"
            if let advice = hint(entry.key) {
                message += "; \(advice)"
            } else if let close = Self.closest(to: entry.key, among: known) {
                message += "; did you mean \(close)?"
            }
            diagnostics.report(key(entry.key), at: entry.keyPosition, message)
        }
    }

    /// The known key within a small edit distance of `key`, if there is one.
    static func closest(to key: String, among known: [String]) -> String? {
        func normalized(_ s: String) -> [Character] {
            Array(s.lowercased().map { $0 == "-" ? "_" : $0 })
        }
        let typed = normalized(key)
        var best: (name: String, distance: Int)?
        for candidate in known {
            let d = editDistance(typed, normalized(candidate))
            let allowed = max(1, min(3, candidate.count / 3))
            if d <= allowed, d < (best?.distance ?? .max) { best = (candidate, d) }
        }
        return best?.name
    }

    /// Optimal string alignment distance: insertions, deletions,
    /// substitutions and swaps of neighbours each cost 1.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var row = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            row[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    row[j] = min(row[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, row) = (previous, row, previous2)
        }
        return previous[b.count]
    }

    // MARK: Typed values

    func value(_ name: String) -> TOMLValue? { table[name] }

    func string(_ name: String, hint: String? = nil) -> Located<String>? {
        guard let v = table[name] else { return nil }
        guard let s = v.string else {
            wrongType(name, v, expected: "a string", hint: hint)
            return nil
        }
        return Located(value: s, position: v.position, key: key(name))
    }

    /// A string that must name one of `T`'s cases; anything else is
    /// reported as "is not a WHAT; use a, b or c" and gives nil.
    func choice<T: RawRepresentable & CaseIterable>(_ name: String, _ what: String) -> T? where T.RawValue == String {
        guard let text = string(name) else { return nil }
        if let value = T(rawValue: text.value) { return value }
        let names = T.allCases.map(\.rawValue)
        let list = names.count > 1 ? names.dropLast().joined(separator: ", ") + " or " + names.last! : names.joined()
        report(name, at: text.position, "\(TOMLValue.quoted(text.value)) is not a \(what); use \(list)")
        return nil
    }

    func boolean(_ name: String) -> Located<Bool>? {
        guard let v = table[name] else { return nil }
        guard let b = v.boolean else {
            wrongType(name, v, expected: "a boolean (true or false)")
            return nil
        }
        return Located(value: b, position: v.position, key: key(name))
    }

    /// An integer in `range`; `meaning` follows the range in the message
    /// (e.g. "seconds; 0 turns it off").
    func integer(_ name: String, in range: ClosedRange<Int>, meaning: String? = nil) -> Located<Int>? {
        guard let v = table[name] else { return nil }
        guard let i = v.integer else {
            wrongType(name, v, expected: "an integer")
            return nil
        }
        guard let n = Int(exactly: i), range.contains(n) else {
            let unit = meaning.map { " (\($0))" } ?? ""
            report(name, at: v.position, "\(i) is outside \(range.lowerBound)-\(range.upperBound)\(unit)")
            return nil
        }
        return Located(value: n, position: v.position, key: key(name))
    }

    /// A string turned into a domain value by `parse`, which names the key
    /// in its error.
    func parsed<T>(
        _ name: String, hint: String? = nil, _ parse: (String, String) throws(ValidationError) -> T
    ) -> Located<T>? {
        guard let s = string(name, hint: hint) else { return nil }
        do {
            return Located(value: try parse(s.value, s.key), position: s.position, key: s.key)
        } catch {
            report(name, at: s.position, "\(TOMLValue.quoted(error.value)) \(error.reason)")
            return nil
        }
    }

    /// An integer turned into a domain value by `make`, which checks its range.
    func integerValue<T>(_ name: String, _ make: (Int, String) throws(ValidationError) -> T) -> Located<T>? {
        guard let v = table[name] else { return nil }
        guard let i = v.integer else {
            wrongType(name, v, expected: "an integer")
            return nil
        }
        do throws(ValidationError) {
            guard let n = Int(exactly: i) else {
                throw ValidationError(field: key(name), value: String(i), reason: "is out of range")
            }
            return Located(value: try make(n, key(name)), position: v.position, key: key(name))
        } catch {
            report(name, at: v.position, "\(error.value) \(error.reason)")
            return nil
        }
    }

    /// A table, `[name]` or `name = { ... }`.
    func subtable(_ name: String) -> ConfigurationTable? {
        guard let v = table[name] else { return nil }
        guard let t = v.table else {
            wrongType(name, v, expected: "a table")
            return nil
        }
        return ConfigurationTable(table: t, path: key(name), diagnostics: diagnostics)
    }

    /// An array of tables, `[[name]]`; each element's path is `name[i]`.
    func tables(_ name: String) -> [ConfigurationTable] {
        guard let v = table[name] else { return [] }
        let header = path.isEmpty ? name : "\(path.replacingIndices()).\(name)"
        guard let items = v.array else {
            wrongType(name, v, expected: "an array of tables (write each entry under its own [[\(header)]] header)")
            return []
        }
        var result: [ConfigurationTable] = []
        for (n, item) in items.enumerated() {
            guard let t = item.table else {
                diagnostics.report(
                    "\(key(name))[\(n)]", at: item.position, "expected a table, found \(item.summary)")
                continue
            }
            result.append(ConfigurationTable(table: t, path: "\(key(name))[\(n)]", diagnostics: diagnostics))
        }
        return result
    }

    private func wrongType(_ name: String, _ v: TOMLValue, expected: String, hint: String? = nil) {
        report(name, at: v.position, "expected \(expected), found \(v.summary)" + (hint.map { "; \($0)" } ?? ""))
    }
}

extension String {
    /// `pf[0].pool` as its TOML header spells it: `pf.pool`.
    fileprivate func replacingIndices() -> String {
        var out = ""
        var skipping = false
        for c in self {
            if c == "[" {
                skipping = true
            } else if c == "]" {
                skipping = false
            } else if !skipping {
                out.append(c)
            }
        }
        return out
    }
}
