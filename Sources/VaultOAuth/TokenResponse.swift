import Foundation

/// A token endpoint's answer, checked field by field.
///
/// The same parser reads the provider's answer and JSON a user pastes into `tokenvault import`, so every
/// rejection names the field and what it held ("expires_in must be a positive number of seconds, got -5").
public struct TokenResponse: Sendable, Equatable {
    /// Longest lifetime accepted for either token. Longer values are a unit mix-up (milliseconds, an epoch
    /// timestamp) rather than a real lifetime, and would make the vault never refresh.
    public static let maxLifetime = 10 * 365 * 24 * 3600

    public var accessToken: String
    /// Access token lifetime in seconds, as returned.
    public var expiresIn: Int
    /// Nil when the provider sent none: keep the old refresh token (Webex may not send a new one).
    public var refreshToken: String?
    /// Refresh token lifetime in seconds, when the provider reports it.
    public var refreshTokenExpiresIn: Int?
    public var tokenType: String
    /// Granted scopes; nil when the provider does not say (Webex does not), which means "unknown", not "none".
    public var scope: [String]?

    public init(
        accessToken: String, expiresIn: Int, refreshToken: String? = nil, refreshTokenExpiresIn: Int? = nil,
        tokenType: String = "Bearer", scope: [String]? = nil
    ) {
        self.accessToken = accessToken
        self.expiresIn = expiresIn
        self.refreshToken = refreshToken
        self.refreshTokenExpiresIn = refreshTokenExpiresIn
        self.tokenType = tokenType
        self.scope = scope
    }

    /// Parses a token response strictly.
    ///
    /// Choices: `expires_in` may be a JSON integer, an integral JSON number (`3600.0`) or a string of digits
    /// (`"3600"`, as some older providers send); fractions, booleans and anything else are refused. A missing
    /// `expires_in` is refused too: without it the vault cannot know when to refresh. A missing `token_type` is
    /// taken as `Bearer`. An empty `refresh_token` counts as absent. Unknown fields are ignored.
    /// - Throws: ``OAuthError/invalidTokenResponse(_:)`` naming the field and the value at fault.
    public static func parse(_ data: Data) throws -> TokenResponse {
        guard let json = JSONValue.parse(data) else {
            throw OAuthError.invalidTokenResponse("it is not valid JSON")
        }
        guard case .object(let object) = json else {
            // `kind`, not the value: a pasted bare token ("eyJ…") is a JSON string.
            throw OAuthError.invalidTokenResponse("it must be a JSON object {…}, got \(kind(json))")
        }
        return try parse(object: object)
    }

    static func parse(object o: [String: JSONValue]) throws -> TokenResponse {
        guard let rawAccess = o["access_token"], rawAccess != .null else {
            throw OAuthError.invalidTokenResponse("access_token is missing")
        }
        guard case .string(let access) = rawAccess else {
            throw OAuthError.invalidTokenResponse("access_token must be a string, got \(kind(rawAccess))")
        }
        guard !access.isEmpty else { throw OAuthError.invalidTokenResponse("access_token is empty") }
        // The token ends up in HTTP headers, environment variables and `eval $(tokenvault env …)`: only RFC 6750
        // characters, so a newline cannot split a header and `*`, `$` or a space cannot do anything in a shell.
        guard isTokenText(access) else { throw OAuthError.invalidTokenResponse(notB64Token("access_token")) }

        guard let rawExpires = o["expires_in"], rawExpires != .null else {
            throw OAuthError.invalidTokenResponse("expires_in is missing; the vault needs the token's lifetime")
        }
        let expiresIn = try lifetime(rawExpires, field: "expires_in")

        var refresh: String?
        switch o["refresh_token"] {
        case nil, .null?: refresh = nil
        case .string(let s)?:
            if s.isEmpty {
                refresh = nil
            } else {
                guard isTokenText(s) else { throw OAuthError.invalidTokenResponse(notB64Token("refresh_token")) }
                refresh = s
            }
        case let other?:
            throw OAuthError.invalidTokenResponse("refresh_token must be a string, got \(kind(other))")
        }

        var refreshExpires: Int?
        if let raw = o["refresh_token_expires_in"], raw != .null {
            refreshExpires = try lifetime(raw, field: "refresh_token_expires_in")
        }

        var tokenType = "Bearer"
        switch o["token_type"] {
        case nil, .null?: break
        case .string(let s)? where !s.isEmpty: tokenType = s
        case let other?:
            throw OAuthError.invalidTokenResponse(
                "token_type must be a word such as \"Bearer\", got \(other.shortDescription)")
        }

        var scope: [String]?
        switch o["scope"] {
        case nil, .null?: scope = nil
        case .string(let s)?: scope = s.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        case .array(let items)?:
            // Some providers send a list; accept it when every item is a string.
            let strings = items.compactMap(\.stringValue)
            guard strings.count == items.count else {
                throw OAuthError.invalidTokenResponse(
                    "scope must be a space-separated string, got a list with non-strings")
            }
            scope = strings
        case let other?:
            throw OAuthError.invalidTokenResponse(
                "scope must be a space-separated string, got \(other.shortDescription)")
        }

        return TokenResponse(
            accessToken: access, expiresIn: expiresIn, refreshToken: refresh,
            refreshTokenExpiresIn: refreshExpires, tokenType: tokenType, scope: scope)
    }

    static func lifetime(_ value: JSONValue, field: String) throws -> Int {
        let seconds: Int64
        switch value {
        case .int(let i): seconds = i
        case .double(let d):
            guard d == d.rounded(), abs(d) < 1e15 else {
                throw OAuthError.invalidTokenResponse(
                    "\(field) must be a whole number of seconds, got \(value.shortDescription)")
            }
            seconds = Int64(d)
        case .string(let s):
            let trimmed = s.trimmingCharacters(in: .whitespaces)
            guard let i = Int64(trimmed) else {
                throw OAuthError.invalidTokenResponse(
                    "\(field) must be a positive number of seconds, got \(value.shortDescription)")
            }
            seconds = i
        default:
            throw OAuthError.invalidTokenResponse(
                "\(field) must be a positive number of seconds, got \(value.shortDescription)")
        }
        guard seconds >= 1 else {
            throw OAuthError.invalidTokenResponse("\(field) must be a positive number of seconds, got \(seconds)")
        }
        guard seconds <= Int64(maxLifetime) else {
            throw OAuthError.invalidTokenResponse(
                "\(field) must be at most 10 years (\(maxLifetime) seconds), got \(seconds); is it in milliseconds or a timestamp?"
            )
        }
        return Int(seconds)
    }

    /// Describes a value's type without quoting it: the value may be a secret.
    static func kind(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    /// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`. Nothing else
    /// is a bearer token, and nothing else is safe unquoted in a shell (`x * y` globs, `$(…)` runs), in an HTTP
    /// header or an environment line.
    static func isTokenText(_ s: String) -> Bool {
        var body = 0
        var padding = false
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "="):
                padding = true
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"),
                UInt8(ascii: "/"):
                if padding { return false }  // `=` only at the end
                body += 1
            default:
                return false
            }
        }
        return body > 0
    }

    /// The refusal for a token with characters outside `b64token`. Names the field, never the value or any part.
    static func notB64Token(_ field: String) -> String {
        "\(field) has characters a bearer token cannot have (RFC 6750 allows only letters, digits, - . _ ~ + / and trailing =)"
    }
}
