import Foundation

extension Provider {
    /// Webex, as documented at https://developer.webex.com/admin/docs/integrations (sources: docs/providers.md).
    /// The default.
    public static let webex = Provider(
        id: .webex, displayName: "Webex",
        endpoints: Endpoints(
            authorize: .relative("authorize"), token: .relative("access_token"),
            deviceAuthorize: .relative("device/authorize"), deviceToken: .relative("device/token"),
            revoke: .relative("authorizations"), identity: .relative("people/me")),
        defaultAPIBase: URL(string: "https://webexapis.com/v1")!, rebasesEndpoints: true,
        tokenClientAuth: .body, deviceTokenClientAuth: .basic, allowsPublicClient: false, usesPKCE: true,
        authorizeParameters: [:], scopeParameter: "scope", scopeSeparator: " ",
        defaultScopes: [], scopesRequired: true, requiredScopes: [], nestedTokenKey: nil,
        identity: IdentityFields(
            id: ["id"], email: ["emails", "email"], name: ["displayName"], org: ["orgId"], type: ["type"]),
        revocation: .webexAuthorizations(scope: "identity:tokens_write"),
        rotation: .none, errorShape: .status, refreshRefusalCodes: [], invalidTokenCodes: [],
        assumedAccessLifetime: nil, defaultEnvironmentVariable: "WEBEX_ACCESS_TOKEN",
        hints: Hints(
            registration: "copy the client id from the integration's page on developer.webex.com (My Webex Apps)",
            redirectURI:
                "the redirect URI must be registered on the integration at developer.webex.com exactly as given",
            revokeElsewhere:
                "to revoke at Webex, remove the integration's access on your Webex identity profile page, or have an admin revoke it (DELETE /v1/authorizations)",
            missingScopes: "Webex leaves meeting:admin_* scopes out of tokens of users who are not admins.",
            missingScopesPrefix: "meeting:admin_", scopesExample: "spark:people_read …",
            authorizationURL:
                "copy the whole 'OAuth Authorization URL' from the integration's page on developer.webex.com"))
}
