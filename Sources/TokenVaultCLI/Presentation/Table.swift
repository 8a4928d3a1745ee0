import Foundation
import VaultOAuth

/// Left-aligned columns for human output.
enum Table {
    /// Every cell is cleaned as provider text is: a table shows what the store holds (names, identities, scopes,
    /// the audit log), and whoever can write the store must not reach the terminal through it.
    static func render(_ rows: [[String]]) -> String {
        let rows = rows.map { $0.map(cell) }
        guard let first = rows.first else { return "" }
        // Widths in Unicode scalars: close enough for names and emails, and far cheaper than counting
        // grapheme clusters twice per cell of a 100,000-row list.
        let counts = rows.map { $0.map(\.unicodeScalars.count) }
        var widths = [Int](repeating: 0, count: first.count)
        for row in counts { for (i, n) in row.enumerated() { widths[i] = max(widths[i], n) } }
        var out = ""
        out.reserveCapacity(rows.count * (widths.reduce(0, +) + 2 * widths.count + 1))
        let spaces = String(repeating: " ", count: (widths.max() ?? 0) + 2)
        for (row, rowCounts) in zip(rows, counts) {
            for (i, cell) in row.enumerated() {
                out += cell
                if i < row.count - 1 { out += spaces.prefix(widths[i] - rowCounts[i] + 2) }
            }
            out += "\n"
        }
        return out
    }

    /// `text` without control characters or bidi overrides (``ProviderText/displayable(_:limit:)``), not clipped;
    /// printable ASCII, nearly every cell, as it is.
    static func cell(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) { return text }
        return ProviderText.displayable(text, limit: Int.max)
    }
}
