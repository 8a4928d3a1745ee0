import Foundation

/// An OAuth provider described as data: every difference between Webex, Google, Microsoft, GitHub, Slack and a
/// generic OAuth 2.0 / OpenID Connect server is a field of this value, and ``OAuthClient`` reads the fields
/// instead of branching on a name. Each preset is one file beside this one; ``Provider/preset(_:)`` is the registry.
public struct Provider: Sendable, Equatable {
    /// The presets, by the name stored with an integration.
    public enum ID: String, Sendable, CaseIterable, Codable {
        case webex, google, microsoft, github, slack, generic
    }

    /// Where an endpoint is.
    public enum Endpoint: Sendable, Equatable {
        /// A path below the integration's API base (Webex: `https://webexapis.com/v1` + `/access_token`).
        case relative(String)
        /// An absolute URL, which may hold `{tenant}` and `{client_id}`. When the integration's API base is not the
        /// preset's default, the URL's scheme, host and port are replaced by it (its path goes first): that is how a
        /// proxy or the offline sandbox serves a provider whose endpoints live on several hosts.
        case absolute(String)
    }

    /// The provider's endpoints. A nil endpoint is a feature the provider does not have.
    public struct Endpoints: Sendable, Equatable {
        public var authorize: Endpoint
        public var token: Endpoint
        public var deviceAuthorize: Endpoint?
        /// Where a device code is polled; nil: the token endpoint (RFC 8628 §3.4).
        public var deviceToken: Endpoint?
        public var revoke: Endpoint?
        public var identity: Endpoint?

        public init(
            authorize: Endpoint, token: Endpoint, deviceAuthorize: Endpoint? = nil, deviceToken: Endpoint? = nil,
            revoke: Endpoint? = nil, identity: Endpoint? = nil
        ) {
            self.authorize = authorize
            self.token = token
            self.deviceAuthorize = deviceAuthorize
            self.deviceToken = deviceToken
            self.revoke = revoke
            self.identity = identity
        }
    }

    /// How the client authenticates itself at a token endpoint.
    public enum ClientAuthStyle: String, Sendable, Codable, Equatable {
        /// `client_id` and `client_secret` as form fields.
        case body
        /// HTTP Basic `client_id:client_secret` (RFC 6749 §2.3.1).
        case basic
    }

    /// How a grant is revoked at the provider (the URL is ``Endpoints/revoke``).
    public enum Revocation: Sendable, Equatable {
        /// Webex admin API: `DELETE …/authorizations?clientId=…` with the access token as Bearer; the token must carry
        /// `scope`.
        case webexAuthorizations(scope: String)
        /// RFC 7009: `POST` form `token=…&token_type_hint=…` with client authentication.
        case rfc7009
        /// GitHub REST: `DELETE /applications/{client_id}/token`, HTTP Basic, JSON `{"access_token": …}`.
        case githubToken
        /// Slack `auth.revoke`: `POST` with the token to revoke as Bearer.
        case bearerPost
        /// No revocation endpoint; the hint says where a person revokes instead.
        case none(hint: String)
    }

    /// What a refresh does to the refresh token it used.
    public enum Rotation: String, Sendable, Equatable {
        /// The same refresh token stays valid (Webex resets its lifetime; Google keeps it).
        case none
        /// A new one comes back; the old one keeps working for a while (Microsoft).
        case lenient
        /// A new one comes back and the old one is dead at once (GitHub Apps, Slack): a refresh whose answer was
        /// lost loses the pair, so such refreshes are never cut short.
        case strict
    }

    /// How a provider reports an error.
    public enum ErrorShape: Sendable, Equatable {
        /// RFC 6749 §5.2: a 4xx status with `{"error": …}`.
        case status
        /// Also `{"error": …}` inside an HTTP 200 answer (GitHub).
        case errorFieldInSuccess
        /// `{"ok": false, "error": …}`, usually with HTTP 200 (Slack).
        case okFlag
    }

    /// Which fields of the identity answer hold what (the first one present wins).
    public struct IdentityFields: Sendable, Equatable {
        public var id: [String]
        public var email: [String]
        public var name: [String]
        public var org: [String]
        public var type: [String]
        /// The HTTP method of the identity request (Slack's `auth.test` is a POST).
        public var method: String

        public init(
            id: [String], email: [String] = [], name: [String] = [], org: [String] = [], type: [String] = [],
            method: String = "GET"
        ) {
            self.id = id
            self.email = email
            self.name = name
            self.org = org
            self.type = type
            self.method = method
        }
    }

    /// What is shown to people: where to register, what to do when something is missing.
    public struct Hints: Sendable, Equatable {
        /// Where the app (client) is registered: shown when the client id or redirect URI is refused.
        public var registration: String
        /// Where the redirect URI must be registered and how it is matched.
        public var redirectURI: String
        /// How a person revokes the grant at the provider when tokenvault did not (or could not).
        public var revokeElsewhere: String
        /// Shown when the provider did not grant the scopes asked for.
        public var missingScopes: String?
        /// When set, ``missingScopes`` is shown only when a missing scope starts with this.
        public var missingScopesPrefix: String?
        /// Scopes to show in an example (`--scopes "spark:people_read …"`), when the provider needs some.
        public var scopesExample: String?
        /// Where the portal shows a ready-made authorization URL (for `add --from-url`), if it does.
        public var authorizationURL: String?

        public init(
            registration: String, redirectURI: String, revokeElsewhere: String, missingScopes: String? = nil,
            missingScopesPrefix: String? = nil, scopesExample: String? = nil, authorizationURL: String? = nil
        ) {
            self.registration = registration
            self.redirectURI = redirectURI
            self.revokeElsewhere = revokeElsewhere
            self.missingScopes = missingScopes
            self.missingScopesPrefix = missingScopesPrefix
            self.scopesExample = scopesExample
            self.authorizationURL = authorizationURL
        }

        /// What to pass when scopes are missing.
        public var scopesHint: String {
            scopesExample.map { "pass --scopes \"\($0)\"" } ?? "pass --scopes \"…\" with the scopes the app needs"
        }

        /// The note for these missing scopes, if any.
        public func note(missing: [String]) -> String? {
            guard let missingScopes, !missing.isEmpty else { return nil }
            if let prefix = missingScopesPrefix, !missing.contains(where: { $0.hasPrefix(prefix) }) { return nil }
            return missingScopes
        }
    }

    public var id: ID
    /// The provider's name as people write it ("Google").
    public var displayName: String
    public var endpoints: Endpoints
    /// The base that ``Endpoint/relative(_:)`` paths are joined to, and the value an integration stores when no
    /// `--api-base` was given. Another base rebases every absolute endpoint (see ``Endpoint/absolute(_:)``).
    public var defaultAPIBase: URL
    /// Whether absolute endpoints follow a changed API base (false for a generic provider, whose URLs are its own).
    public var rebasesEndpoints: Bool
    public var tokenClientAuth: ClientAuthStyle
    public var deviceTokenClientAuth: ClientAuthStyle
    /// Whether a client without a secret (a public client) is possible.
    public var allowsPublicClient: Bool
    /// Whether PKCE S256 is sent with the authorization request.
    public var usesPKCE: Bool
    /// Extra query parameters of the authorization request (Google: `access_type=offline`, `prompt=consent`).
    public var authorizeParameters: [String: String]
    /// The query parameter that carries the scopes (Slack user tokens: `user_scope`).
    public var scopeParameter: String
    /// How scopes are joined in requests (space by RFC 6749; Slack: comma).
    public var scopeSeparator: String
    /// Scopes used when `add` is given none; empty with ``scopesRequired`` means the user must choose.
    public var defaultScopes: [String]
    /// Whether an integration needs at least one scope.
    public var scopesRequired: Bool
    /// Scopes always added (Microsoft: `offline_access`, without which no refresh token comes).
    public var requiredScopes: [String]
    /// Where the token answer keeps the user's token when it is nested (Slack: `authed_user`).
    public var nestedTokenKey: String?
    public var identity: IdentityFields?
    public var revocation: Revocation
    public var rotation: Rotation
    public var errorShape: ErrorShape
    /// Error codes that mean "this refresh token is dead" beside RFC 6749's `invalid_grant`.
    public var refreshRefusalCodes: Set<String>
    /// Error codes of the identity endpoint that mean "this access token is refused" (Slack answers HTTP 200).
    public var invalidTokenCodes: Set<String>
    /// Access token lifetime assumed when an answer has no `expires_in`; nil refuses such an answer. Tokens that
    /// never expire (GitHub OAuth apps) are given ``TokenResponse/maxLifetime``.
    public var assumedAccessLifetime: Int?
    /// Environment variable that `env`/`exec` set by default.
    public var defaultEnvironmentVariable: String
    public var hints: Hints

    /// Whether the provider has an identity endpoint.
    public var supportsIdentity: Bool { endpoints.identity != nil && identity != nil }
    /// Whether the provider has any remote revocation.
    public var supportsRevoke: Bool {
        if case .none = revocation { return false }
        return endpoints.revoke != nil
    }
    /// Whether the provider supports the device authorization grant.
    public var supportsDeviceGrant: Bool { endpoints.deviceAuthorize != nil }
    /// The scope a token must carry for remote revocation (Webex), else nil.
    public var revokeScope: String? {
        if case .webexAuthorizations(let scope) = revocation { return scope }
        return nil
    }

    /// Whether a token with the given granted scopes may be revoked remotely. Unknown scopes (nil, Webex does
    /// not report them) count as "may": the request is tried and a 403 tells the truth.
    public func canRevoke(grantedScopes: [String]?) -> Bool {
        guard supportsRevoke else { return false }
        guard let needed = revokeScope, let granted = grantedScopes else { return true }
        return granted.contains(needed)
    }

    /// The URL of an endpoint for an integration with this API base.
    /// - Parameter values: substitutions for `{tenant}`, `{client_id}` (percent-encoded here).
    public func url(_ endpoint: Endpoint, base: URL, values: [String: String] = [:]) -> URL {
        switch endpoint {
        case .relative(let path):
            var s = base.absoluteString
            while s.hasSuffix("/") { s.removeLast() }
            var p = Substring(path)
            while p.hasPrefix("/") { p.removeFirst() }
            return URL(string: s + "/" + p) ?? base.appendingPathComponent(String(p))
        case .absolute(var template):
            for (key, value) in values {
                let encoded =
                    value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/", "?", "#"]))
                    ?? value
                template = template.replacingOccurrences(of: "{\(key)}", with: encoded)
            }
            guard rebasesEndpoints, Self.normalized(base) != Self.normalized(defaultAPIBase),
                let original = URLComponents(string: template)
            else { return URL(string: template)! }
            var s = Self.normalized(base)
            s += original.percentEncodedPath
            if let query = original.percentEncodedQuery { s += "?" + query }
            return URL(string: s)!
        }
    }

    /// The substitutions an integration's endpoint templates take (`{tenant}`, `{client_id}`).
    public static func endpointValues(tenant: String?, clientId: String) -> [String: String] {
        ["tenant": tenant ?? defaultMicrosoftTenant, "client_id": clientId]
    }

    /// The URLs an integration's requests go to, as the client builds them: where the browser is sent, where the
    /// client secret and the tokens are sent (token), where a revocation and the identity lookup go. Nil: the
    /// provider has no such endpoint.
    public struct ResolvedEndpoints: Sendable, Equatable {
        public var authorize: URL
        public var token: URL
        public var deviceAuthorize: URL?
        public var revoke: URL?
        public var identity: URL?
    }

    public func resolvedEndpoints(base: URL, tenant: String?, clientId: String) -> ResolvedEndpoints {
        let values = Self.endpointValues(tenant: tenant, clientId: clientId)
        return ResolvedEndpoints(
            authorize: url(endpoints.authorize, base: base, values: values),
            token: url(endpoints.token, base: base, values: values),
            deviceAuthorize: endpoints.deviceAuthorize.map { url($0, base: base, values: values) },
            revoke: supportsRevoke ? endpoints.revoke.map { url($0, base: base, values: values) } : nil,
            identity: endpoints.identity.map { url($0, base: base, values: values) })
    }

    static func normalized(_ url: URL) -> String {
        var s = url.absoluteString
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }

    /// The preset with this name.
    public static func preset(_ id: ID) -> Provider {
        switch id {
        case .webex: .webex
        case .google: .google
        case .microsoft: .microsoft
        case .github: .github
        case .slack: .slack
        case .generic: .generic
        }
    }

    /// The preset an integration names, with its stored options applied (a Microsoft tenant; a generic provider's
    /// endpoints and client authentication).
    public static func configured(name: String, options: ProviderOptions?) throws -> Provider {
        guard let id = ID(rawValue: name) else {
            throw OAuthError.unsupported(
                "the integration uses provider '\(ProviderText.displayable(name))', which this tokenvault does not know (it knows \(ID.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        return try preset(id).applying(options ?? ProviderOptions())
    }

    /// This preset with an integration's options applied.
    public func applying(_ options: ProviderOptions) throws -> Provider {
        var p = self
        if let auth = options.clientAuth {
            p.tokenClientAuth = auth
            p.deviceTokenClientAuth = auth
        }
        if id == .generic {
            guard let authorize = options.authorizeURL, let token = options.tokenURL else {
                throw OAuthError.unsupported("a generic provider needs an authorization URL and a token URL")
            }
            p.endpoints = Endpoints(
                authorize: .absolute(authorize), token: .absolute(token),
                deviceAuthorize: options.deviceURL.map(Endpoint.absolute), deviceToken: nil,
                revoke: options.revokeURL.map(Endpoint.absolute), identity: options.userinfoURL.map(Endpoint.absolute))
            if options.revokeURL != nil { p.revocation = .rfc7009 }
            if options.usesPKCE == false { p.usesPKCE = false }
        } else if options.authorizeURL != nil || options.tokenURL != nil || options.deviceURL != nil
            || options.revokeURL != nil || options.userinfoURL != nil
        {
            throw OAuthError.unsupported(
                "endpoint URLs can only be given for the generic provider; \(displayName)'s are built in")
        }
        return p
    }
}

/// An integration's provider settings, stored as JSON beside it (schema v2) and bound into its seal label.
public struct ProviderOptions: Sendable, Codable, Equatable {
    /// Microsoft: `common`, `organizations`, `consumers` or a tenant id or domain.
    public var tenant: String?
    public var issuer: String?
    public var authorizeURL: String?
    public var tokenURL: String?
    public var deviceURL: String?
    public var revokeURL: String?
    public var userinfoURL: String?
    public var clientAuth: Provider.ClientAuthStyle?
    /// False when discovery says the server has no S256 PKCE.
    public var usesPKCE: Bool?

    public init(
        tenant: String? = nil, issuer: String? = nil, authorizeURL: String? = nil, tokenURL: String? = nil,
        deviceURL: String? = nil, revokeURL: String? = nil, userinfoURL: String? = nil,
        clientAuth: Provider.ClientAuthStyle? = nil, usesPKCE: Bool? = nil
    ) {
        self.tenant = tenant
        self.issuer = issuer
        self.authorizeURL = authorizeURL
        self.tokenURL = tokenURL
        self.deviceURL = deviceURL
        self.revokeURL = revokeURL
        self.userinfoURL = userinfoURL
        self.clientAuth = clientAuth
        self.usesPKCE = usesPKCE
    }

    enum CodingKeys: String, CodingKey {
        case tenant, issuer
        case authorizeURL = "authorize_url"
        case tokenURL = "token_url"
        case deviceURL = "device_url"
        case revokeURL = "revoke_url"
        case userinfoURL = "userinfo_url"
        case clientAuth = "client_auth"
        case usesPKCE = "pkce"
    }

    public var isEmpty: Bool { self == ProviderOptions() }

    /// Stable JSON (sorted keys): the text is part of a seal label, so the same options must give the same bytes.
    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func decode(_ text: String?) throws -> ProviderOptions? {
        guard let text else { return nil }
        do { return try JSONDecoder().decode(ProviderOptions.self, from: Data(text.utf8)) } catch {
            throw OAuthError.unsupported("the integration's provider options are not valid JSON")
        }
    }
}

/// The integration registered at the provider: who the client is and where the browser comes back.
/// The secret is a plain `String` here; the caller keeps it in the vault. An empty secret is a public client:
/// none is sent.
public struct ClientCredentials: Sendable {
    public var clientId: String
    public var clientSecret: String
    public var redirectURI: String
    public var scopes: [String]
    public var apiBase: URL
    /// Microsoft's `{tenant}`.
    public var tenant: String?

    public init(
        clientId: String, clientSecret: String, redirectURI: String, scopes: [String], apiBase: URL,
        tenant: String? = nil
    ) {
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.redirectURI = redirectURI
        self.scopes = scopes
        self.apiBase = apiBase
        self.tenant = tenant
    }
}
