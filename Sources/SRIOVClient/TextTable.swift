/// Rows of text in aligned columns, for people reading a terminal. A missing
/// value is shown as "-", so that every column has a cell in every row and
/// `awk`/`column` still line up.
public struct TextTable: Hashable, Sendable {
    public enum Alignment: Hashable, Sendable {
        case left, right
    }

    public struct Column: Hashable, Sendable {
        public var title: String
        public var alignment: Alignment

        public init(_ title: String, _ alignment: Alignment = .left) {
            self.title = title
            self.alignment = alignment
        }
    }

    /// What a nil or empty cell shows.
    public static let missing = "-"
    /// Between two columns.
    public static let gap = "  "

    public var columns: [Column]
    /// Whether the first line shows the column titles.
    public var showsTitles: Bool
    public private(set) var rows: [[String]] = []

    public init(_ columns: [Column], showsTitles: Bool = true) {
        self.columns = columns
        self.showsTitles = showsTitles
    }

    /// Adds a row; it must have one cell per column.
    public mutating func append(_ cells: [String?]) {
        precondition(cells.count == columns.count, "a row needs \(columns.count) cells, not \(cells.count)")
        rows.append(
            cells.map { cell in
                guard let cell, !cell.isEmpty else { return Self.missing }
                return cell
            })
    }

    /// The table, one line per row, each line without trailing spaces and
    /// ending in a newline.
    public func rendered() -> String {
        let lines = (showsTitles ? [columns.map(\.title)] : []) + rows
        let widths = columns.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        var text = ""
        for line in lines {
            var rendered = ""
            for (column, cell) in line.enumerated() {
                if column > 0 { rendered += Self.gap }
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                rendered += columns[column].alignment == .left ? cell + padding : padding + cell
            }
            while rendered.last == " " { rendered.removeLast() }
            text += rendered + "\n"
        }
        return text
    }
}
