import Foundation

/// Removes secrets from what `--verbose` prints. Pure functions so tests can feed them every shape of request.
///
/// Redacts by field name (form fields, query parameters, JSON keys) and the `Authorization` header, so it
/// works without knowing the secret values. Bodies that are neither form nor JSON (an HTML error page) are
/// summarised by size, since they may echo anything back.
public enum Redaction {
    public static let marker = "[redacted]"

    /// Field names whose values are secrets, in forms, queries and JSON (compared case-insensitively).
    public static let secretFields: Set<String> = [
        "client_secret", "code", "code_verifier", "refresh_token", "access_token", "device_code", "id_token",
        "token", "password", "assertion", "client_assertion",
        "accesstoken", "refreshtoken", "clientsecret", "idtoken",
    ]

    /// Header names whose values are secrets.
    public static let secretHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

    /// Compares the name as a receiver decodes it (callers decode escapes first), ignoring case and the
    /// whitespace a lenient parser would trim.
    static func isSecret(_ name: String) -> Bool {
        secretFields.contains(name.trimmingCharacters(in: .whitespacesAndNewlines).lowercased())
    }

    /// `a=1&client_secret=xyz` → `a=1&client_secret=[redacted]`; keeps the original encoding of other fields.
    /// Keys are compared percent-decoded (`client%5Fsecret` is `client_secret` to every server), leniently: a
    /// stray `%` elsewhere in the key must not stop `%5F` from being decoded.
    public static func form(_ text: String) -> String {
        text.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return isSecret(lenientFormDecode(parts[0])) ? "\(parts[0])=\(marker)" : String(pair)
        }.joined(separator: "&")
    }

    /// `+` as space and every valid `%XX` decoded; invalid escapes kept as text.
    static func lenientFormDecode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "%"), i + 2 < u.count, let hi = hexValue(u[i + 1]), let lo = hexValue(u[i + 2]) {
                bytes.append(hi << 4 | lo)
                i += 3
            } else {
                bytes.append(u[i] == UInt8(ascii: "+") ? UInt8(ascii: " ") : u[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The URL with secret query parameters redacted.
    public static func url(_ url: URL) -> String {
        let s = url.absoluteString
        guard let q = s.firstIndex(of: "?") else { return s }
        let fragment = s[q...].firstIndex(of: "#")
        let query = String(s[s.index(after: q)..<(fragment ?? s.endIndex)])
        return String(s[...q]) + form(query) + (fragment.map { String(s[$0...]) } ?? "")
    }

    /// Headers as `Name: value` lines, secrets redacted, sorted for stable output.
    public static func headers(_ headers: [String: String]) -> String {
        headers.sorted { $0.key.lowercased() < $1.key.lowercased() }.map { name, value in
            "\(name): \(secretHeaders.contains(name.lowercased()) ? marker : value)"
        }.joined(separator: ", ")
    }

    /// JSON text with the values of secret keys, at any depth, replaced by the marker.
    ///
    /// A body that parses is redacted on the decoded value, so escaped key names (`"access\u005ftoken"`) are
    /// the keys a receiver sees, and printed again compactly with sorted keys (``JSONValue``'s objects keep no
    /// order; duplicate keys keep the last, as the decoder does). A body that does not parse (cut off, or not
    /// quite JSON) goes through ``jsonScan(_:)``.
    public static func json(_ text: String) -> String {
        guard let value = JSONValue.parse(Data(text.utf8)) else { return jsonScan(text) }
        var out = ""
        render(value, into: &out)
        return out
    }

    static func render(_ value: JSONValue, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? String(d) : "null"
        case .string(let s): quote(s, into: &out)
        case .array(let items):
            out += "["
            for (n, item) in items.enumerated() {
                if n > 0 { out += "," }
                render(item, into: &out)
            }
            out += "]"
        case .object(let object):
            out += "{"
            for (n, key) in object.keys.sorted().enumerated() {
                if n > 0 { out += "," }
                quote(key, into: &out)
                out += ":"
                if isSecret(key) { quote(marker, into: &out) } else { render(object[key]!, into: &out) }
            }
            out += "}"
        }
    }

    /// A JSON string literal; control characters escaped so a trace line stays one line.
    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || (0x7F...0x9F).contains(u.value):
                out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    /// Replaces the values of secret keys in JSON text that does not parse, on a token scan, so a truncated or
    /// invalid body is redacted too: an unterminated secret string is cut to the marker, and an object or list
    /// under a secret key is replaced whole (to its end, or to the end of the text). Key names are compared
    /// after decoding their escapes.
    static func jsonScan(_ text: String) -> String {
        let chars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        var lastString: String?  // the most recent complete string token, escapes decoded
        var redactNext = false  // the previous tokens were a secret key and a colon
        while i < chars.count {
            let c = chars[i]
            if c == "\"" {
                let (content, end, closed) = scanString(chars, from: i)
                if redactNext {
                    out.append(contentsOf: "\"\(marker)\"".unicodeScalars)
                    redactNext = false
                    lastString = nil
                } else {
                    out.append(contentsOf: chars[i..<end])
                    lastString = closed ? decodeEscapes(content) : nil
                }
                i = end
                continue
            }
            if redactNext && (c == "{" || c == "[") {
                out.append(contentsOf: "\"\(marker)\"".unicodeScalars)
                i = skipContainer(chars, from: i)
                redactNext = false
                lastString = nil
                continue
            }
            if c == ":" {
                redactNext = lastString.map(isSecret) ?? false
            } else if !c.properties.isWhitespace {
                // A number, literal or separator after a secret key: nothing to hide.
                redactNext = false
                lastString = nil
            }
            out.append(c)
            i += 1
        }
        return String(out)
    }

    /// The raw content of the string token starting at `start` (a quote), the index after it, and whether it closed.
    static func scanString(_ chars: [Unicode.Scalar], from start: Int) -> (
        content: ArraySlice<Unicode.Scalar>, end: Int, closed: Bool
    ) {
        var j = start + 1
        while j < chars.count {
            if chars[j] == "\\" {
                j += 2
                continue
            }
            if chars[j] == "\"" { return (chars[(start + 1)..<j], j + 1, true) }
            j += 1
        }
        return (chars[min(start + 1, chars.count)..<chars.count], chars.count, false)
    }

    /// The index after the object or list starting at `start`, strings skipped; the end of the text if it never closes.
    static func skipContainer(_ chars: [Unicode.Scalar], from start: Int) -> Int {
        var depth = 0
        var i = start
        while i < chars.count {
            switch chars[i] {
            case "\"":
                i = scanString(chars, from: i).end
                continue
            case "{", "[": depth += 1
            case "}", "]":
                depth -= 1
                if depth == 0 { return i + 1 }
            default: break
            }
            i += 1
        }
        return chars.count
    }

    /// JSON string escapes decoded (`\u005f` → `_`, `\/` → `/`, surrogate pairs joined); malformed escapes kept.
    static func decodeEscapes(_ raw: ArraySlice<Unicode.Scalar>) -> String {
        var out = String.UnicodeScalarView()
        var pendingHigh: UInt32?
        let c = Array(raw)
        var i = 0
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= c.count else { return nil }
            var v: UInt32 = 0
            for k in at..<(at + 4) {
                guard c[k].isASCII, let d = hexValue(UInt8(c[k].value)) else { return nil }
                v = v << 4 | UInt32(d)
            }
            return v
        }
        while i < c.count {
            guard c[i] == "\\", i + 1 < c.count else {
                out.append(c[i])
                i += 1
                continue
            }
            let e = c[i + 1]
            switch e {
            case "u":
                guard let v = hex4(i + 2) else {
                    out.append(c[i])
                    i += 1
                    continue
                }
                i += 6
                if (0xD800...0xDBFF).contains(v) {
                    pendingHigh = v
                    continue
                }
                if (0xDC00...0xDFFF).contains(v), let high = pendingHigh {
                    pendingHigh = nil
                    if let s = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (v - 0xDC00)) { out.append(s) }
                    continue
                }
                pendingHigh = nil
                if let s = Unicode.Scalar(v) { out.append(s) }
                continue
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            default: out.append(e)  // \" \\ \/ and anything lenient parsers accept
            }
            pendingHigh = nil
            i += 2
        }
        return String(out)
    }

    /// A body as printable text: form or JSON redacted, anything else summarised.
    public static func body(_ data: Data?, contentType: String?) -> String {
        guard let data, !data.isEmpty else { return "(no body)" }
        guard let text = String(data: data, encoding: .utf8) else { return "(\(data.count) bytes, binary)" }
        let type = contentType?.lowercased() ?? ""
        let trimmed = text.drop(while: { $0.isWhitespace })
        if type.contains("json") || trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
            return json(text)
        }
        if type.contains("x-www-form-urlencoded") {
            return form(text)
        }
        if type.contains("html") || trimmed.hasPrefix("<") {
            return "(HTML, \(data.count) bytes)"
        }
        return "(\(data.count) bytes of \(type.isEmpty ? "unknown type" : type))"
    }

    /// Longest trace line; the rest of a body is not worth a screenful.
    public static let maxTraceLine = 16_384

    /// One trace line for a request.
    public static func describe(_ request: HTTPRequest) -> String {
        var line = "→ \(request.method) \(url(request.url))"
        if !request.headers.isEmpty { line += " [\(headers(request.headers))]" }
        if let b = request.body, !b.isEmpty { line += " " + body(b, contentType: request.header("Content-Type")) }
        return ProviderText.displayable(line, limit: maxTraceLine)
    }

    /// One trace line for a response. The provider wrote most of it (trackingId, body), and it goes to a
    /// terminal: no control characters, one line, clipped.
    public static func describe(_ response: HTTPResponse, for request: HTTPRequest, duration: String) -> String {
        var line = "← \(response.status) \(request.method) \(url(request.url)) in \(duration)"
        if let t = response.header("trackingid") { line += " trackingId=\(t)" }
        line += " " + body(response.body, contentType: response.header("Content-Type"))
        return ProviderText.displayable(line, limit: maxTraceLine)
    }
}
