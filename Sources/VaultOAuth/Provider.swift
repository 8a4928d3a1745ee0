import Foundation

/// An OAuth provider described as data, so that Webex specifics live in one value instead of being spread
/// through the client, and a generic provider is another value rather than another code path.
///
/// Endpoint paths are relative to the integration's API base (``ClientCredentials/apiBase``) so that tests and
/// other clouds override one URL, never the paths.
public struct Provider: Sendable, Codable, Equatable {
    /// How the client authenticates itself at a token endpoint.
    public enum ClientAuthStyle: String, Sendable, Codable, Equatable {
        /// `client_id` and `client_secret` as form fields (what Webex's samples do).
        case body
        /// HTTP Basic `client_id:client_secret` (RFC 6749 §2.3.1); Webex's device token endpoint wants this.
        case basic
    }

    /// How a token is revoked at the provider.
    public enum RevokeStyle: Sendable, Codable, Equatable {
        /// Webex admin API: `DELETE {base}/authorizations?clientId=…` with the token as Bearer; needs
        /// ``Provider/revokeScope`` (`identity:tokens_write`) on the token.
        case webexAuthorizations
        /// RFC 7009: `POST url` with `token=…&token_type_hint=refresh_token` and client authentication.
        case rfc7009(URL)
        /// The provider has no revocation endpoint; the user revokes in the provider's web UI.
        case none
    }

    /// Short lowercase name used in configuration (`"webex"`).
    public var name: String
    /// Browser authorization endpoint, relative to the API base.
    public var authorizePath: String
    /// Token endpoint (code exchange and refresh), relative to the API base.
    public var tokenPath: String
    /// Identity endpoint (`people/me` for Webex), relative to the API base; nil when not supported.
    public var identityPath: String?
    /// Device authorization endpoint (RFC 8628), relative to the API base; nil when not supported.
    public var deviceAuthorizePath: String?
    /// Device token polling endpoint, relative to the API base; nil when not supported.
    public var deviceTokenPath: String?
    /// Path of the admin revocation resource for ``RevokeStyle/webexAuthorizations``.
    public var revokePath: String?
    /// Client authentication at the token endpoint.
    public var tokenClientAuth: ClientAuthStyle
    /// Client authentication at the device token endpoint.
    public var deviceTokenClientAuth: ClientAuthStyle
    /// How tokens are revoked remotely.
    public var revokeStyle: RevokeStyle
    /// The scope a token must carry for remote revocation to be allowed (nil: any token may revoke).
    public var revokeScope: String?
    /// Environment variable that `env`/`exec` set by default.
    public var defaultEnvironmentVariable: String
    /// API base used when an integration does not set its own.
    public var defaultAPIBase: URL

    public init(
        name: String,
        authorizePath: String,
        tokenPath: String,
        identityPath: String?,
        deviceAuthorizePath: String?,
        deviceTokenPath: String?,
        revokePath: String?,
        tokenClientAuth: ClientAuthStyle,
        deviceTokenClientAuth: ClientAuthStyle,
        revokeStyle: RevokeStyle,
        revokeScope: String?,
        defaultEnvironmentVariable: String,
        defaultAPIBase: URL
    ) {
        self.name = name
        self.authorizePath = authorizePath
        self.tokenPath = tokenPath
        self.identityPath = identityPath
        self.deviceAuthorizePath = deviceAuthorizePath
        self.deviceTokenPath = deviceTokenPath
        self.revokePath = revokePath
        self.tokenClientAuth = tokenClientAuth
        self.deviceTokenClientAuth = deviceTokenClientAuth
        self.revokeStyle = revokeStyle
        self.revokeScope = revokeScope
        self.defaultEnvironmentVariable = defaultEnvironmentVariable
        self.defaultAPIBase = defaultAPIBase
    }

    /// Whether the provider has an identity endpoint.
    public var supportsIdentity: Bool { identityPath != nil }
    /// Whether the provider has any remote revocation.
    public var supportsRevoke: Bool { revokeStyle != .none }
    /// Whether the provider supports the device authorization grant.
    public var supportsDeviceGrant: Bool { deviceAuthorizePath != nil && deviceTokenPath != nil }

    /// Whether a token with the given granted scopes may be revoked remotely. Unknown scopes (nil, Webex does
    /// not report them) count as "may": the request is tried and a 403 tells the truth.
    public func canRevoke(grantedScopes: [String]?) -> Bool {
        guard supportsRevoke else { return false }
        guard let needed = revokeScope, let granted = grantedScopes else { return true }
        return granted.contains(needed)
    }

    /// Webex as documented at developer.webex.com (REFERENCE §1).
    public static let webex = Provider(
        name: "webex",
        authorizePath: "authorize",
        tokenPath: "access_token",
        identityPath: "people/me",
        deviceAuthorizePath: "device/authorize",
        deviceTokenPath: "device/token",
        revokePath: "authorizations",
        tokenClientAuth: .body,
        deviceTokenClientAuth: .basic,
        revokeStyle: .webexAuthorizations,
        revokeScope: "identity:tokens_write",
        defaultEnvironmentVariable: "WEBEX_ACCESS_TOKEN",
        defaultAPIBase: URL(string: "https://webexapis.com/v1")!
    )

    /// Joins a relative endpoint path to the API base without losing the base's own path (`/v1`).
    public func endpoint(_ path: String, base: URL) -> URL {
        var s = base.absoluteString
        while s.hasSuffix("/") { s.removeLast() }
        var p = Substring(path)
        while p.hasPrefix("/") { p.removeFirst() }
        // Both halves come from configuration we already validated as a URL; fall back to appending.
        return URL(string: s + "/" + p) ?? base.appendingPathComponent(String(p))
    }
}

/// The integration registered at the provider: who the client is and where the browser comes back.
/// The secret is a plain `String` here; the caller keeps it in the vault.
public struct ClientCredentials: Sendable {
    public var clientId: String
    public var clientSecret: String
    public var redirectURI: String
    public var scopes: [String]
    public var apiBase: URL

    public init(clientId: String, clientSecret: String, redirectURI: String, scopes: [String], apiBase: URL) {
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.redirectURI = redirectURI
        self.scopes = scopes
        self.apiBase = apiBase
    }
}
