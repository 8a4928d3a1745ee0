import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How names, times and lifetimes read in messages (the CLI's tables and the core's errors alike).
public enum Format {
    /// Quotes a user-supplied string for an error message, with control characters made visible.
    public static func quoted(_ text: String) -> String {
        let shown = text.prefix(80).unicodeScalars.map { scalar -> String in
            scalar.properties.generalCategory == .control ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }.joined()
        return "'\(shown)\(text.count > 80 ? "…" : "")'"
    }

    /// "2026-11-30T15:04:05Z", what ISO8601DateFormatter's `.withInternetDateTime` writes (whole seconds, UTC).
    /// A static ISO8601FormatStyle: a formatter made per call cost refresh-all --json a third of its CPU, and
    /// `make bench` measured the style at 0.59 × the hand-written code that replaced that formatter (BENCHMARKS.md,
    /// "JSONEncoder and a static ISO8601FormatStyle against the hand-written code").
    public static func timestamp(_ date: Date) -> String {
        // To the millisecond first, as ICU does, so that x.9996 s is the next second for both (the style alone
        // drops the fraction).
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000).formatted(iso8601)
    }

    private static let iso8601 = Date.ISO8601FormatStyle()

    /// "13d 23h", "4h 10m", "52s", "expired 2d ago".
    public static func remaining(_ date: Date?, now: Date) -> String {
        guard let date else { return "-" }
        let seconds = Int(date.timeIntervalSince(now).rounded(.down))
        if seconds < 0 { return "expired \(span(-seconds)) ago" }
        return span(seconds)
    }

    public static func span(_ seconds: Int) -> String {
        let d = seconds / 86400
        let h = (seconds % 86400) / 3600
        let m = (seconds % 3600) / 60
        if d > 0 { return "\(d)d \(h)h" }
        if h > 0 { return "\(h)h \(m)m" }
        if m > 0 { return "\(m)m" }
        return "\(seconds)s"
    }
}
