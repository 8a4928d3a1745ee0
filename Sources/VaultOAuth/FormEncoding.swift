import Foundation

/// `application/x-www-form-urlencoded` and query-string encoding done by hand.
///
/// Why not `URLComponents.queryItems`: it leaves `+`, `&`-free but reserved characters such as `+` unescaped,
/// and servers decode a literal `+` as a space, which corrupts secrets and codes that contain one. Here only
/// RFC 3986 unreserved characters pass through; everything else, space included, is percent-encoded (`%20`,
/// which Webex wants for the scope list and every form decoder accepts).
public enum FormEncoding {
    static let unreserved: Set<UInt8> = Set(
        Array(UInt8(ascii: "A")...UInt8(ascii: "Z")) + Array(UInt8(ascii: "a")...UInt8(ascii: "z"))
            + Array(UInt8(ascii: "0")...UInt8(ascii: "9")) + [
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
            ])

    /// Percent-encodes every byte of the UTF-8 form except unreserved characters.
    public static func percentEncode(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for byte in s.utf8 {
            if unreserved.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// Encodes fields in the given order (order kept so traces and tests read predictably).
    public static func encode(_ fields: [(String, String)]) -> String {
        fields.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    /// Decodes a form or query string; `+` is a space, as form decoders do. Malformed escapes are kept as text.
    public static func decode(_ s: String) -> [(String, String)] {
        s.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = unescape(String(parts[0]))
            let value = parts.count > 1 ? unescape(String(parts[1])) : ""
            return (key, value)
        }
    }

    static func unescape(_ s: String) -> String {
        let spaced = s.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
