import Foundation
import TokenVaultCore

/// JSON for `--json` output (the text helpers are the core's `Format`).
extension Format {
    /// The one place a report becomes `--json` output: keys sorted by their bytes, two spaces of indentation and
    /// `"key" : value` (what JSONSerialization's pretty printing wrote before), slashes not escaped, times as
    /// `Format.timestamp` writes them. `make bench` measured this against the hand-written writer it replaces
    /// (BENCHMARKS.md, "JSONEncoder and a static ISO8601FormatStyle against the hand-written code").
    static func json<Report: Encodable>(_ report: Report) -> String {
        json(report, timestamp: Format.timestamp)
    }

    /// `json` with another way of writing times (for the benchmark's A/B).
    static func json<Report: Encodable>(_ report: Report, timestamp: @escaping @Sendable (Date) -> String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        // Only a non-finite number fails, and no report holds one.
        guard let data = try? encoder.encode(report) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}
