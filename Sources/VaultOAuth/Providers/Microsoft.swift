import Foundation

extension Provider {
    /// Microsoft Entra ID v2.0 (docs/providers.md, "Microsoft"): a tenant in every path, `offline_access` for a
    /// refresh token, lenient rotation, the device code flow, public clients without a secret, and no revocation
    /// endpoint.
    public static let microsoft = Provider(
        id: .microsoft, displayName: "Microsoft",
        endpoints: Endpoints(
            authorize: .absolute("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"),
            token: .absolute("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
            deviceAuthorize: .absolute("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode"),
            deviceToken: nil,
            revoke: nil, identity: .absolute("https://graph.microsoft.com/oidc/userinfo")),
        defaultAPIBase: URL(string: "https://login.microsoftonline.com")!, rebasesEndpoints: true,
        tokenClientAuth: .body, deviceTokenClientAuth: .body, allowsPublicClient: true, usesPKCE: true,
        authorizeParameters: ["response_mode": "query"], scopeParameter: "scope", scopeSeparator: " ",
        defaultScopes: ["offline_access", "openid", "profile", "email", "User.Read"], scopesRequired: false,
        requiredScopes: ["offline_access"], nestedTokenKey: nil,
        identity: IdentityFields(id: ["sub"], email: ["email", "preferred_username"], name: ["name"]),
        revocation: .none(
            hint:
                "Microsoft has no revocation endpoint: sign the account out of its sessions at https://myaccount.microsoft.com (or with Graph revokeSignInSessions), or remove the app's consent at https://myapplications.microsoft.com"
        ),
        rotation: .lenient, errorShape: .status, refreshRefusalCodes: ["interaction_required"], invalidTokenCodes: [],
        assumedAccessLifetime: 3600, defaultEnvironmentVariable: "MICROSOFT_ACCESS_TOKEN",
        hints: Hints(
            registration:
                "register an app at https://entra.microsoft.com (App registrations), platform \"Mobile and desktop applications\"",
            redirectURI:
                "register http://localhost (any port is accepted for loopback redirects) on the app's Authentication page",
            revokeElsewhere:
                "to revoke at Microsoft, remove the app's consent at https://myapplications.microsoft.com or sign the account out at https://myaccount.microsoft.com",
            missingScopes: "Some Microsoft Graph scopes need an administrator's consent for the tenant."))

    /// Microsoft's tenant when none is given.
    public static let defaultMicrosoftTenant = "common"
}
