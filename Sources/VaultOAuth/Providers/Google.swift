import Foundation

extension Provider {
    /// Google (docs/providers.md, "Google"): endpoints on three hosts, a refresh token only with
    /// `access_type=offline` (and every time only with `prompt=consent`), no rotation, RFC 7009 revocation,
    /// OpenID Connect userinfo.
    public static let google = Provider(
        id: .google, displayName: "Google",
        endpoints: Endpoints(
            authorize: .absolute("https://accounts.google.com/o/oauth2/v2/auth"),
            token: .absolute("https://oauth2.googleapis.com/token"),
            deviceAuthorize: .absolute("https://oauth2.googleapis.com/device/code"), deviceToken: nil,
            revoke: .absolute("https://oauth2.googleapis.com/revoke"),
            identity: .absolute("https://openidconnect.googleapis.com/v1/userinfo")),
        defaultAPIBase: URL(string: "https://accounts.google.com")!, rebasesEndpoints: true,
        tokenClientAuth: .body, deviceTokenClientAuth: .body, allowsPublicClient: false, usesPKCE: true,
        authorizeParameters: ["access_type": "offline", "prompt": "consent"], scopeParameter: "scope",
        scopeSeparator: " ",
        defaultScopes: ["openid", "email", "profile"], scopesRequired: false, requiredScopes: [], nestedTokenKey: nil,
        identity: IdentityFields(id: ["sub"], email: ["email"], name: ["name"], org: ["hd"]),
        revocation: .rfc7009, rotation: .none, errorShape: .status, refreshRefusalCodes: [], invalidTokenCodes: [],
        assumedAccessLifetime: 3600, defaultEnvironmentVariable: "GOOGLE_ACCESS_TOKEN",
        hints: Hints(
            registration:
                "create an OAuth client of type \"Desktop app\" at https://console.cloud.google.com/apis/credentials",
            redirectURI: "a Desktop app client accepts any loopback redirect such as http://127.0.0.1:8765/callback",
            revokeElsewhere: "to revoke at Google, remove the app's access at https://myaccount.google.com/permissions",
            missingScopes: "Enable the API in the Google Cloud project and add the scope to the OAuth consent screen."))
}
