import Foundation

/// A parsed JSON value that keeps the difference between `true`, `1`, `1.5` and `"1"`, which
/// `JSONSerialization` blurs on Linux (booleans and numbers both come back as `NSNumber`). Strict token
/// parsing and error messages that quote what the provider sent both need that difference.
enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
            return
        }
        // Strings first: most values are, and every failed attempt is a thrown error (an import of 100,000 pairs
        // spent a sixth of its time here). A string never decodes from a number or a boolean, nor the reverse.
        // Then order matters: Bool before numbers so `true` never becomes 1, Int before Double so 3600 stays exact.
        if let s = try? c.decode(String.self) {
            self = .string(s)
            return
        }
        if let b = try? c.decode(Bool.self) {
            self = .bool(b)
            return
        }
        if let i = try? c.decode(Int64.self) {
            self = .int(i)
            return
        }
        if let d = try? c.decode(Double.self) {
            self = .double(d)
            return
        }
        if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
            return
        }
        self = .object(try c.decode([String: JSONValue].self))
    }

    /// Parses `data` as JSON, or returns nil when it is not JSON at all.
    static func parse(_ data: Data) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: data)
    }

    var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// A short rendering of the value for error messages (`-5`, `"soon"`, `true`, `an object`).
    ///
    /// A string is quoted only when it is short (at most 12 characters) and free of control characters; longer
    /// ones are described by length, never by a prefix: the field at fault may hold a secret (a token pasted
    /// into the wrong field), and no part of a secret may reach an error message.
    var shortDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s):
            guard s.count <= 12, ProviderText.displayable(s) == s else { return "a string of \(s.count) characters" }
            return "\"\(s)\""
        case .array: return "a list"
        case .object: return "an object"
        }
    }
}
