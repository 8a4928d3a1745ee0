import Foundation

// What the non-Webex shapes share: the token endpoint's dispatch on grant_type, Bearer lookups, RFC 7009
// revocation, the discovery document and user codes. Each shape words the results in its own file.

extension ProviderSandbox {
    /// Runs the grant a token request names (`authorization_code`, `refresh_token` or the device-code grant) for
    /// the client its credentials authenticate.
    func tokenGrant(
        _ request: IncomingRequest, grantType: String?, now: Date,
        accepting methods: ClientAuthMethods = .basicOrBody, allowsIdOnly: Bool = false
    ) -> Result<IssuedTokens, GrantRefusal> {
        guard let grantType, !grantType.isEmpty else {
            return .failure(GrantRefusal(.invalidRequest, "invalid_request", "grant_type is required"))
        }
        guard ["authorization_code", "refresh_token", Self.deviceGrantType].contains(grantType) else {
            return .failure(
                GrantRefusal(
                    .unsupportedGrantType, "unsupported_grant_type",
                    "grant_type \(grantType) is not supported"))
        }
        return authenticateClient(request, accepting: methods, allowsIdOnly: allowsIdOnly).flatMap { client in
            switch grantType {
            case "authorization_code": redeemCode(request.form, client: client, now: now)
            case "refresh_token": refreshGrant(request.form, client: client, now: now)
            default: pollDevice(request.form, client: client, now: now)
            }
        }
    }

    /// The state of the request's Bearer token (GitHub also takes `token X`); nil without one.
    func bearerStatus(_ request: IncomingRequest, now: Date) -> AccessTokenStatus? {
        guard let token = bearerToken(request.headers["authorization"]) else { return nil }
        return accessTokenStatus(token, now: now)
    }

    /// Revokes the whole authorization an access or refresh token belongs to; nil when the token is unknown.
    @discardableResult
    func revokeAuthorization(ofToken token: String) -> Authorization? {
        guard let id = authorizationId(ofToken: token), let authorization = authorizations[id] else { return nil }
        authorizations[id]?.revoked = true
        return authorization
    }

    /// An OpenID Connect discovery document (OIDC Discovery §3, RFC 8414, RFC 8628) whose endpoint paths are
    /// made absolute on this sandbox's origin.
    func discoveryDocument(
        endpoints: [String: String], authMethods: [String], pkceMethods: [String], scopes: [String]
    ) -> OutgoingResponse {
        var document: [String: any Sendable] = [
            "issuer": configuration.discoveryIssuer ?? origin,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": scopes,
            "token_endpoint_auth_methods_supported": authMethods,
            "code_challenge_methods_supported": pkceMethods,
            "grant_types_supported": ["authorization_code", "refresh_token", Self.deviceGrantType],
            "claims_supported": ["sub", "email", "email_verified", "name", "iss", "aud", "exp", "iat"],
        ]
        for (field, path) in endpoints {
            document[field] = origin + path
        }
        return .json(200, document)
    }
}

extension SandboxConfiguration.User {
    /// The part of the email before `@`, standing for a login name (GitHub `login`, Slack `user`).
    var login: String {
        String(email.prefix { $0 != "@" })
    }

    /// First and last name from the display name (Microsoft's `given_name`, `family_name`).
    var givenName: String { String(displayName.prefix { $0 != " " }) }
    var familyName: String {
        guard let space = displayName.firstIndex(of: " ") else { return "" }
        return String(displayName[displayName.index(after: space)...])
    }
}

/// `XXXX-XXXX` from consonants, as Google and GitHub show user codes.
func randomUserCode() -> String {
    let alphabet = Array("BCDFGHJKLMNPQRSTVWXZ")
    var generator = SystemRandomNumberGenerator()
    let letters = (0..<8).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
    return String(letters[0..<4]) + "-" + String(letters[4..<8])
}
