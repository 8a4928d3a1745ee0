import Foundation

extension Provider {
    /// GitHub (docs/providers.md, "GitHub"): GitHub App user tokens (8 hours, single-use refresh tokens of
    /// about 6 months) and OAuth-app tokens (no expiry, no refresh token); form answers unless JSON is asked for;
    /// errors inside HTTP 200 answers; the device flow; revocation through the REST API.
    public static let github = Provider(
        id: .github, displayName: "GitHub",
        endpoints: Endpoints(
            authorize: .absolute("https://github.com/login/oauth/authorize"),
            token: .absolute("https://github.com/login/oauth/access_token"),
            deviceAuthorize: .absolute("https://github.com/login/device/code"), deviceToken: nil,
            revoke: .absolute("https://api.github.com/applications/{client_id}/token"),
            identity: .absolute("https://api.github.com/user")),
        defaultAPIBase: URL(string: "https://github.com")!, rebasesEndpoints: true,
        tokenClientAuth: .body, deviceTokenClientAuth: .body, allowsPublicClient: true, usesPKCE: true,
        authorizeParameters: [:], scopeParameter: "scope", scopeSeparator: " ",
        defaultScopes: [], scopesRequired: false, requiredScopes: [], nestedTokenKey: nil,
        identity: IdentityFields(id: ["id"], email: ["email"], name: ["name", "login"]),
        revocation: .githubToken, rotation: .strict, errorShape: .errorFieldInSuccess,
        refreshRefusalCodes: ["bad_refresh_token"], invalidTokenCodes: [],
        assumedAccessLifetime: TokenResponse.maxLifetime, defaultEnvironmentVariable: "GITHUB_TOKEN",
        hints: Hints(
            registration: "create a GitHub App (or an OAuth app) under Settings → Developer settings on github.com",
            redirectURI: "the redirect URI must be one of the app's callback URLs",
            revokeElsewhere:
                "to revoke at GitHub, open Settings → Applications on github.com and revoke the app's access"))
}
