import SRIOVCore

extension SRIOVConfiguration {
    /// A set of VF indices written as ranges: `"0-3,5"`.
    public struct VFIndexSet: Hashable, Sendable, CustomStringConvertible {
        /// Sorted, disjoint and not adjacent (`0-3,5`, never `0-2,3`).
        public private(set) var ranges: [ClosedRange<Int>]

        /// Largest VF index: a PF has at most 65535 VFs (`TotalVFs` is 16 bits).
        public static let maxIndex = 65534

        /// Ranges may overlap or touch; they are merged.
        public init(_ ranges: [ClosedRange<Int>]) {
            var merged: [ClosedRange<Int>] = []
            for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if let last = merged.last, r.lowerBound <= last.upperBound + 1 {
                    merged[merged.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
                } else {
                    merged.append(r)
                }
            }
            self.ranges = merged
        }

        /// Parses comma-separated indices and inclusive ranges (`0-3, 5`).
        /// An index listed twice is refused: it is almost always a typo.
        public static func parse(_ text: String, field: String) throws(ValidationError) -> VFIndexSet {
            func fail(_ reason: String) -> ValidationError {
                ValidationError(field: field, value: text, reason: reason)
            }
            let items = text.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingWhitespace() }
            guard !(items.count == 1 && items[0].isEmpty) else {
                throw fail("lists no VFs; leave vfs out to mean every VF of the PF")
            }
            var ranges: [ClosedRange<Int>] = []
            for item in items {
                guard !item.isEmpty else { throw fail("has an empty item between commas") }
                let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2, let low = index(bounds[0]), let high = index(bounds[bounds.count - 1]) else {
                    throw fail(
                        "is not a list of VF indices: \"\(item)\" is neither an index nor a range such as 0-3"
                            + " (indices are 0-\(maxIndex))")
                }
                guard low <= high else {
                    throw fail("has the range \(item), which runs backwards; write \(high)-\(low)")
                }
                if let clash = ranges.first(where: { $0.overlaps(low...high) }) {
                    let shared = max(clash.lowerBound, low)
                    throw fail("lists VF \(shared) more than once")
                }
                ranges.append(low...high)
            }
            return VFIndexSet(ranges)
        }

        private static func index(_ s: Substring) -> Int? {
            let digits = s.trimmingWhitespace()
            guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                let v = Int(digits), v <= maxIndex
            else { return nil }
            return v
        }

        public func contains(_ index: Int) -> Bool {
            ranges.contains { $0.contains(index) }
        }

        public var isEmpty: Bool { ranges.isEmpty }

        /// The smallest index in both sets, if any.
        public func firstCommonIndex(with other: VFIndexSet) -> Int? {
            var best: Int?
            for a in ranges {
                for b in other.ranges where a.overlaps(b) {
                    let low = max(a.lowerBound, b.lowerBound)
                    best = min(best ?? low, low)
                }
            }
            return best
        }

        /// The largest index, if any.
        public var last: Int? { ranges.last?.upperBound }

        /// The indices, in order.
        public var indices: [Int] { ranges.flatMap { Array($0) } }

        public var description: String {
            ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
                .joined(separator: ",")
        }
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
