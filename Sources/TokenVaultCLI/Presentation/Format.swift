import Foundation
import TokenVaultCore

/// JSON for `--json` output (the text helpers are the core's `Format`).
extension Format {
    static func json(_ value: Any) -> String {
        if let text = PrettyJSON.text(value) { return text }
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("null".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// Writes what JSONSerialization writes with `.prettyPrinted, .sortedKeys, .withoutEscapingSlashes`, byte for
/// byte, for the values `--json` reports hold: strings, booleans, integers, null, arrays and dictionaries whose
/// keys are lowercase letters and underscores (sorted the same by Foundation's key order and by bytes); doubles
/// through JSONSerialization one by one. Anything else (a key with digits or capitals, another type) gives nil
/// and the whole value is left to JSONSerialization, whose key sorting
/// compares NSStrings: for refresh-all --json of 1000 accounts that sort was a tenth of the whole run's CPU.
enum PrettyJSON {
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
            guard let data = try? JSONSerialization.data(withJSONObject: d, options: .fragmentsAllowed) else { return false }
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
        !key.isEmpty && key.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || $0 == UInt8(ascii: "_") }
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
