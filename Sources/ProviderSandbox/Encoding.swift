import Foundation

/// Parses `application/x-www-form-urlencoded` text (a request body or a URL query): `+` is a space,
/// percent escapes are decoded, and the first occurrence of a name wins.
func parseForm(_ text: String) -> [String: String] {
    var fields: [String: String] = [:]
    for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let name = formDecode(parts[0])
        let value = parts.count > 1 ? formDecode(parts[1]) : ""
        if fields[name] == nil { fields[name] = value }
    }
    return fields
}

private func formDecode(_ text: Substring) -> String {
    let spaced = text.replacingOccurrences(of: "+", with: " ")
    return spaced.removingPercentEncoding ?? spaced
}

/// Percent-encodes a query value so that only RFC 3986 unreserved characters stay literal.
func queryEncode(_ value: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
}

/// Appends query parameters to a redirect URI that may already carry a query.
func appendQuery(_ items: [(String, String)], to uri: String) -> String {
    let query = items.map { "\(queryEncode($0.0))=\(queryEncode($0.1))" }.joined(separator: "&")
    let (base, fragment): (String, String) = {
        guard let hash = uri.firstIndex(of: "#") else { return (uri, "") }
        return (String(uri[..<hash]), String(uri[hash...]))
    }()
    let separator = base.contains("?") ? (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&") : "?"
    return base + separator + query + fragment
}

func base64URL(_ bytes: some Sequence<UInt8>) -> String {
    Data(bytes).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// The PKCE S256 transform: BASE64URL(SHA256(ASCII(verifier))).
func pkceChallenge(forVerifier verifier: String) -> String {
    base64URL(sha256(Array(verifier.utf8)))
}

/// Random alphanumeric text from the system CSPRNG. Alphanumeric because Webex tokens use `_` as a separator.
func randomToken(length: Int) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    var generator = SystemRandomNumberGenerator()
    return String((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
}

func randomDigits(_ count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return String((0..<count).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) })
}

/// Decodes `Authorization: Basic base64(id:secret)`.
func parseBasicAuthorization(_ header: String?) -> (id: String, secret: String)? {
    guard let header, header.lowercased().hasPrefix("basic ") else { return nil }
    let encoded = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
    guard let data = Data(base64Encoded: encoded), let text = String(data: data, encoding: .utf8),
        let colon = text.firstIndex(of: ":")
    else { return nil }
    let id = String(text[..<colon]).removingPercentEncoding ?? String(text[..<colon])
    let secret = String(text[text.index(after: colon)...])
    return (id, secret.removingPercentEncoding ?? secret)
}

func bearerToken(_ header: String?) -> String? {
    guard let header, header.lowercased().hasPrefix("bearer ") else { return nil }
    let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
    return token.isEmpty ? nil : token
}
