import Foundation
import Testing

@testable import TokenVaultCore

@Suite struct FormatTests {
    /// The hand-written timestamp writes what ISO8601DateFormatter's internet date-time writes, for dates around
    /// now, far ahead, before 1970 and with fractions of a second (whole milliseconds first, as ICU takes them).
    @Test func timestampIsTheInternetDateTimeOfISO8601DateFormatter() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        var dates: [Date] = [
            Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -1), Date(timeIntervalSince1970: -0.5),
            Date(timeIntervalSince1970: 1_795_000_000.999), Date(timeIntervalSince1970: 1_795_000_000.9996),
            Date(timeIntervalSince1970: 951_782_400),
        ]  // 2000-02-29
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            dates.append(
                Date(timeIntervalSince1970: Double.random(in: -2_000_000_000...40_000_000_000, using: &generator)))
        }
        for date in dates {
            #expect(Format.timestamp(date) == formatter.string(from: date), "\(date.timeIntervalSince1970)")
        }
        #expect(Format.timestamp(Date(timeIntervalSince1970: 1_795_000_000)) == "2026-11-18T11:06:40Z")
    }
}
