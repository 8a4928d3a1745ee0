import Foundation

extension Provider {
    /// Any OAuth 2.0 / OpenID Connect provider: the endpoints come from the integration's options, filled by
    /// OpenID Connect discovery (``OIDCDiscovery``) or given one by one. RFC behaviour everywhere: HTTP Basic
    /// client authentication unless told otherwise (RFC 6749 §2.3.1), RFC 7009 revocation when there is an
    /// endpoint, rotation as the server does it (a new refresh token is always stored first).
    public static let generic = Provider(
        id: .generic, displayName: "OAuth 2.0 provider",
        endpoints: Endpoints(
            authorize: .absolute("https://invalid.example/authorize"), token: .absolute("https://invalid.example/token")
        ),
        defaultAPIBase: URL(string: "https://invalid.example")!, rebasesEndpoints: false,
        tokenClientAuth: .basic, deviceTokenClientAuth: .basic, allowsPublicClient: true, usesPKCE: true,
        authorizeParameters: [:], scopeParameter: "scope", scopeSeparator: " ",
        defaultScopes: [], scopesRequired: true, requiredScopes: [], nestedTokenKey: nil,
        identity: IdentityFields(id: ["sub", "id"], email: ["email"], name: ["name", "preferred_username"]),
        revocation: .none(
            hint:
                "the provider has no revocation endpoint configured; revoke the grant in the provider's account settings"
        ),
        rotation: .none, errorShape: .status, refreshRefusalCodes: [], invalidTokenCodes: [],
        assumedAccessLifetime: 3600, defaultEnvironmentVariable: "OAUTH_ACCESS_TOKEN",
        hints: Hints(
            registration: "register a client at the provider",
            redirectURI:
                "the redirect URI must be registered at the provider (RFC 8252: loopback redirects with any port)",
            revokeElsewhere: "to revoke, remove the app's access in your account settings at the provider"))
}
