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
    /// Written by hand: a formatter made per call cost refresh-all --json a third of its CPU (ICU builds one for
    /// every date of every account's report), and a shared one would need a lock.
    public static func timestamp(_ date: Date) -> String {
        // To the millisecond first, as ICU does, so that x.9999 s is the next second for both.
        var seconds = time_t(((date.timeIntervalSince1970 * 1000).rounded() / 1000).rounded(.down))
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return "\(date)" }
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let year = Int(parts.tm_year) + 1900
        let yearText = year >= 0 && year < 1000 ? String(repeating: "0", count: 4 - String(year).count) + String(year) : String(year)
        return "\(yearText)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    /// "13d 23h", "4h 10m", "52s", "expired 2d ago".
    public static func remaining(_ date: Date?, now: Date) -> String {
        guard let date else { return "-" }
        let seconds = Int(date.timeIntervalSince(now).rounded(.down))
        if seconds < 0 { return "expired \(span(-seconds)) ago" }
        return span(seconds)
    }

    public static func span(_ seconds: Int) -> String {
        let d = seconds / 86400, h = (seconds % 86400) / 3600, m = (seconds % 3600) / 60
        if d > 0 { return "\(d)d \(h)h" }
        if h > 0 { return "\(h)h \(m)m" }
        if m > 0 { return "\(m)m" }
        return "\(seconds)s"
    }
}
