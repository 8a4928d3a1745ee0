import Foundation

extension Provider {
    /// Slack with token rotation (docs/providers.md, "Slack"): user tokens under `authed_user`, 12-hour access
    /// tokens, refresh tokens revoked on use, `ok: false` errors in HTTP 200 answers, `auth.revoke`, no device flow.
    public static let slack = Provider(
        id: .slack, displayName: "Slack",
        endpoints: Endpoints(
            authorize: .absolute("https://slack.com/oauth/v2/authorize"),
            token: .absolute("https://slack.com/api/oauth.v2.access"),
            deviceAuthorize: nil, deviceToken: nil,
            revoke: .absolute("https://slack.com/api/auth.revoke"),
            identity: .absolute("https://slack.com/api/auth.test")),
        defaultAPIBase: URL(string: "https://slack.com")!, rebasesEndpoints: true,
        tokenClientAuth: .basic, deviceTokenClientAuth: .basic, allowsPublicClient: true, usesPKCE: true,
        authorizeParameters: [:], scopeParameter: "user_scope", scopeSeparator: ",",
        defaultScopes: [], scopesRequired: true, requiredScopes: [], nestedTokenKey: "authed_user",
        identity: IdentityFields(id: ["user_id"], name: ["user"], org: ["team_id"], method: "POST"),
        revocation: .bearerPost, rotation: .strict, errorShape: .okFlag,
        refreshRefusalCodes: ["invalid_refresh_token", "token_revoked", "token_expired", "invalid_grant"],
        invalidTokenCodes: ["invalid_auth", "token_expired", "token_revoked", "not_authed", "account_inactive"],
        assumedAccessLifetime: TokenResponse.maxLifetime, defaultEnvironmentVariable: "SLACK_USER_TOKEN",
        hints: Hints(
            registration:
                "create an app at https://api.slack.com/apps and turn on token rotation under OAuth & Permissions",
            redirectURI: "the redirect URI must be listed under OAuth & Permissions → Redirect URLs",
            revokeElsewhere: "to revoke at Slack, remove the app's access in the workspace's Manage apps page",
            missingScopes: "Add the user token scopes to the Slack app under OAuth & Permissions.",
            scopesExample: "users:read …"))
}
