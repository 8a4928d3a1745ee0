import Foundation
@_spi(Bench) import TokenVaultCLI
import TokenVaultCore
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

// `make bench`, section "reports": `Format.json` (Codable report types through JSONEncoder with .sortedKeys)
// against the code it replaced (dictionaries through a hand-written writer), and the hand-written timestamp against
// a static Date.ISO8601FormatStyle, in process, on list --json of 1,000 accounts and audit --json of 10,000
// entries. `BENCH_ONLY=reports .build/release/tokenvault-bench` runs this section alone.

/// The hand-written timestamp `Format.timestamp` was before the reports became Codable (git history:
/// Sources/TokenVaultCore/Format.swift), kept here as the A side of the benchmark; `Format.timestamp` is now a
/// static Date.ISO8601FormatStyle.
@Sendable func handWrittenTimestamp(_ date: Date) -> String {
    // To the millisecond first, as ICU does, so that x.9999 s is the next second for both.
    var seconds = time_t(((date.timeIntervalSince1970 * 1000).rounded() / 1000).rounded(.down))
    var parts = tm()
    guard gmtime_r(&seconds, &parts) != nil else { return "\(date)" }
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    let year = Int(parts.tm_year) + 1900
    let yearText =
        year >= 0 && year < 1000 ? String(repeating: "0", count: 4 - String(year).count) + String(year) : String(year)
    return
        "\(yearText)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
}

/// The reports as the old code built them: dictionaries of the same values as `ReportSamples`.
func oldListObjects(accounts n: Int, now: Date) -> [[String: Any]] {
    (0..<n).map { i in
        let a = ReportSamples.account(i, now: now)
        var o: [String: Any] = ["account": a.name, "integration": "bench", "provider": "webex", "state": "ok"]
        o["email"] = a.email
        o["display_name"] = a.displayName
        o["org_id"] = a.orgId
        o["access_expires_at"] = handWrittenTimestamp(a.accessExpiresAt)
        o["refresh_expires_at"] = a.refreshExpiresAt.map(handWrittenTimestamp)
        o["access_expires_in_seconds"] = Int(a.accessExpiresAt.timeIntervalSince(now))
        o["refresh_expires_in_seconds"] = a.refreshExpiresAt.map { Int($0.timeIntervalSince(now)) }
        o["scopes"] = a.scopes
        return o
    }
}

func oldAuditObjects(entries n: Int, start: Date) -> [[String: Any]] {
    (0..<n).map { i in
        let e = ReportSamples.auditEntry(i, start: start)
        var o: [String: Any] = [
            "seq": e.seq, "at": handWrittenTimestamp(e.at), "account": e.account, "event": "refreshed",
            "trigger": "refresh-all", "outcome": "ok",
        ]
        o["integration"] = "bench"
        o["access_expires_before"] = handWrittenTimestamp(e.before)
        o["access_expires_after"] = handWrittenTimestamp(e.after)
        o["refresh_expires_before"] = handWrittenTimestamp(e.before)
        o["refresh_expires_after"] = handWrittenTimestamp(e.after)
        o["refresh_token_changed"] = true
        o["detail"] = e.detail
        return o
    }
}

/// Seconds of one call of `body`, median of `runs`, the variants interleaved (each run takes them in a rotated order).
func interleavedMedians(_ variants: [() -> String], runs: Int) -> [Double] {
    var times = Array(repeating: [Double](), count: variants.count)
    for v in variants { _ = v() }  // warm up
    for run in 0..<runs {
        for k in 0..<variants.count {
            let v = (k + run) % variants.count
            let started = monotonic()
            let text = variants[v]()
            times[v].append(monotonic() - started)
            precondition(!text.isEmpty)
        }
    }
    return times.map(median)
}

func reportFigures(runs: Int) throws -> [Figure] {
    var figures: [Figure] = []
    let now = Date(timeIntervalSince1970: 1_796_000_000.5)
    func ms(_ s: Double) -> String { fmt(s * 1000, 2) + " ms" }

    for (what, n, encoderHand, shipped) in [
        (
            "list --json", 1_000,
            ReportSamples.listJSON(accounts: 1_000, now: now, timestamp: handWrittenTimestamp),
            ReportSamples.listJSON(accounts: 1_000, now: now, timestamp: Format.timestamp)
        ),
        (
            "audit --json", 10_000,
            ReportSamples.auditJSON(entries: 10_000, start: now, timestamp: handWrittenTimestamp),
            ReportSamples.auditJSON(entries: 10_000, start: now, timestamp: Format.timestamp)
        ),
    ] {
        // Both sides build their report from the sample values in the timed part, as a command does: the old side its
        // dictionaries (times written into them), the new side its structs (times written by the formatter).
        let old: () -> String = {
            let objects =
                what == "list --json" ? oldListObjects(accounts: n, now: now) : oldAuditObjects(entries: n, start: now)
            return HandWrittenJSON.text(objects)!
        }
        let serialization: () -> String = {
            let objects =
                what == "list --json" ? oldListObjects(accounts: n, now: now) : oldAuditObjects(entries: n, start: now)
            return String(
                decoding: try! JSONSerialization.data(
                    withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
                as: UTF8.self)
        }
        let expected = old()
        guard encoderHand() == expected, shipped() == expected, serialization() == expected else {
            throw TestFailure("\(what): the writers disagree on the sample's bytes")
        }
        let t = interleavedMedians([old, encoderHand, shipped, serialization], runs: runs)
        figures.append(
            Figure(
                section: "reports",
                name:
                    "\(what), \(n) \(what.hasPrefix("list") ? "accounts" : "entries"), in process: Format.json (JSONEncoder, static ISO8601FormatStyle) ÷ the hand-written writer and timestamp before it",
                value: "\(fmt(t[2] / t[0])) (\(ms(t[2])) ÷ \(ms(t[0])))", target: "(reported: ≤ 1 keeps JSONEncoder)",
                met: nil,
                detail:
                    "median of \(runs) interleaved runs, \(expected.utf8.count / 1024) KiB of JSON, the same bytes from every writer, report built in the timed part; "
                    + "JSONEncoder with the hand-written timestamp \(ms(t[1])) (\(fmt(t[1] / t[0])) ×); "
                    + "JSONSerialization of the old dictionaries \(ms(t[3])) (\(fmt(t[3] / t[0])) ×)"))
        log(figures.last!.line)
    }

    // The timestamp alone: 100,000 dates.
    let dates = (0..<100_000).map { now.addingTimeInterval(Double($0) * 97.531) }
    guard dates.allSatisfy({ handWrittenTimestamp($0) == Format.timestamp($0) }) else {
        throw TestFailure("the timestamps disagree")
    }
    let t = interleavedMedians(
        [
            {
                var n = 0
                for d in dates { n &+= handWrittenTimestamp(d).utf8.count }
                return String(n)
            },
            {
                var n = 0
                for d in dates { n &+= Format.timestamp(d).utf8.count }
                return String(n)
            },
        ], runs: runs)
    figures.append(
        Figure(
            section: "reports",
            name:
                "timestamps, 100000 dates: Format.timestamp (static ISO8601FormatStyle) ÷ the hand-written code before it",
            value: "\(fmt(t[1] / t[0])) (\(ms(t[1])) ÷ \(ms(t[0])))", target: "(reported: ≤ 1 keeps the style)",
            met: nil,
            detail: "median of \(runs) interleaved runs; the same text for every date"))
    log(figures.last!.line)
    return figures
}

/// The hand-written JSON writer `--json` used before the reports became Codable (git history:
/// Sources/TokenVaultCLI/Presentation/Format.swift), kept here as the A side of the benchmark.
enum HandWrittenJSON {
    static func text(_ value: Any) -> String? {
        var out = ""
        return write(value, indent: 0, to: &out) ? out : nil
    }

    private static func write(_ value: Any, indent: Int, to out: inout String) -> Bool {
        switch value {
        case let b as Bool: out += b ? "true" : "false"
        case let s as String: string(s, to: &out)
        case let n as Int: out += String(n)
        case let n as Int64: out += String(n)
        case is NSNull: out += "null"
        case let d as Double:
            // Foundation's own digits (the few doubles of a report, such as duration_seconds).
            guard let data = try? JSONSerialization.data(withJSONObject: d, options: .fragmentsAllowed) else {
                return false
            }
            out += String(decoding: data, as: UTF8.self)
        case let d as [String: Any]:
            guard d.keys.allSatisfy(isPlainKey) else { return false }
            out += "{\n"
            var first = true
            for key in d.keys.sorted() {
                if !first { out += ",\n" }
                first = false
                out += String(repeating: "  ", count: indent + 1)
                string(key, to: &out)
                out += " : "
                guard write(d[key]!, indent: indent + 1, to: &out) else { return false }
            }
            out += "\n" + String(repeating: "  ", count: indent) + "}"
        case let a as [Any]:
            out += "[\n"
            for (i, element) in a.enumerated() {
                if i > 0 { out += ",\n" }
                out += String(repeating: "  ", count: indent + 1)
                guard write(element, indent: indent + 1, to: &out) else { return false }
            }
            out += "\n" + String(repeating: "  ", count: indent) + "]"
        default: return false
        }
        return true
    }

    private static func isPlainKey(_ key: String) -> Bool {
        !key.isEmpty
            && key.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || $0 == UInt8(ascii: "_") }
    }

    private static func string(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
