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

    static func isSecret(_ name: String) -> Bool { secretFields.contains(name.lowercased()) }

    /// `a=1&client_secret=xyz` → `a=1&client_secret=[redacted]`; keeps the original encoding of other fields.
    public static func form(_ text: String) -> String {
        text.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = FormEncoding.unescape(String(parts[0]))
            return isSecret(key) ? "\(parts[0])=\(marker)" : String(pair)
        }.joined(separator: "&")
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

    /// Replaces the string values of secret keys in JSON text. Works on a token scan rather than a parse, so a
    /// truncated or invalid body is redacted too (an unterminated secret string is cut to the marker).
    public static func json(_ text: String) -> String {
        let chars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        var lastString: String?  // the most recent complete string token
        var redactNext = false  // the previous tokens were a secret key and a colon
        while i < chars.count {
            let c = chars[i]
            if c == "\"" {
                // Read one string token, honouring escapes.
                var j = i + 1
                var content = String.UnicodeScalarView()
                var closed = false
                while j < chars.count {
                    if chars[j] == "\\", j + 1 < chars.count {
                        content.append(chars[j]); content.append(chars[j + 1]); j += 2; continue
                    }
                    if chars[j] == "\"" { closed = true; break }
                    content.append(chars[j]); j += 1
                }
                if redactNext {
                    out.append(contentsOf: "\"\(marker)\"".unicodeScalars)
                    redactNext = false
                    lastString = nil
                } else {
                    out.append("\"")
                    out.append(contentsOf: content)
                    if closed { out.append("\"") }
                    lastString = String(content)
                }
                i = closed ? j + 1 : chars.count
                continue
            }
            if c == ":" {
                redactNext = lastString.map(isSecret) ?? false
            } else if !c.properties.isWhitespace {
                // A non-string value (number, null, object) after a secret key: nothing to hide.
                if redactNext && c != ":" { redactNext = false }
                lastString = nil
            }
            out.append(c)
            i += 1
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

    /// One trace line for a request.
    public static func describe(_ request: HTTPRequest) -> String {
        var line = "→ \(request.method) \(url(request.url))"
        if !request.headers.isEmpty { line += " [\(headers(request.headers))]" }
        if let b = request.body, !b.isEmpty { line += " " + body(b, contentType: request.header("Content-Type")) }
        return line
    }

    /// One trace line for a response.
    public static func describe(_ response: HTTPResponse, for request: HTTPRequest, duration: String) -> String {
        var line = "← \(response.status) \(request.method) \(url(request.url)) in \(duration)"
        if let t = response.header("trackingid") { line += " trackingId=\(t)" }
        line += " " + body(response.body, contentType: response.header("Content-Type"))
        return line
    }
}
