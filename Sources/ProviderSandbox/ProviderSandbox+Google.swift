import Foundation

// The Google shape. Paths of accounts.google.com, oauth2.googleapis.com and openidconnect.googleapis.com on one
// origin: /o/oauth2/v2/auth, /token, /device/code, /revoke, /v1/userinfo, /.well-known/openid-configuration.

extension ShapeRules {
    static let google = ShapeRules(
        redirectMatching: .loopbackAnyPort,
        pkceMethods: ["S256", "plain"],
        isTokenEndpoint: { method, path in method == "POST" && path == "/token" },
        accessTokenPrefix: "ya29.",
        refreshTokenPrefix: "1//0")
}

extension ProviderSandbox {
    func routeGoogle(_ request: IncomingRequest, at now: Date) -> OutgoingResponse {
        let route = "\(request.method) \(request.path)"
        switch (request.method, request.path) {
        case ("GET", "/o/oauth2/v2/auth"):
            count(route)
            return googleAuthorize(request, now: now)
        case ("POST", "/token"):
            count(route)
            return googleToken(request, now: now)
        case ("POST", "/device/code"):
            count(route)
            return googleDeviceCode(request, now: now)
        case ("POST", "/revoke"):
            count(route)
            return googleRevoke(request)
        case ("GET", "/v1/userinfo"):
            count(route)
            return googleUserinfo(request, now: now)
        case ("GET", "/.well-known/openid-configuration"):
            count(route)
            return discoveryDocument(
                endpoints: [
                    "authorization_endpoint": "/o/oauth2/v2/auth", "token_endpoint": "/token",
                    "device_authorization_endpoint": "/device/code", "revocation_endpoint": "/revoke",
                    "userinfo_endpoint": "/v1/userinfo", "jwks_uri": "/oauth2/v3/certs",
                ],
                authMethods: ["client_secret_post", "client_secret_basic"], pkceMethods: ["S256", "plain"],
                scopes: ["openid", "email", "profile"])
        case ("GET", "/oauth2/v3/certs"):
            count(route)
            return .json(200, ["keys": [[String: String]]()])
        case ("GET", "/sandbox/device/verify"):
            count(route)
            return deviceVerify(request, now: now)
        default:
            count("other")
            return .html(404, "<html><body><h1>404. That’s an error.</h1></body></html>")
        }
    }

    // MARK: GET /o/oauth2/v2/auth

    /// A refresh token only with `access_type=offline`, and for a (client, user) that consented before only
    /// with `prompt=consent` too.
    private func googleAuthorize(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let q = request.query
        return authorizeCode(
            q, scopes: splitScopes(q["scope"]), now: now,
            refuse: { refusal in
                switch refusal {
                case .unknownClient:
                    .html(
                        401,
                        "<html><body><h1>Error 401: invalid_client</h1><p>The OAuth client was not found.</p></body></html>"
                    )
                case .unregisteredRedirectURI:
                    .html(400, "<html><body><h1>Error 400: redirect_uri_mismatch</h1></body></html>")
                }
            },
            issuesRefreshToken: { client, user, _ in
                let key = client.clientId + "\n" + user.id
                let firstConsent = consents.insert(key).inserted
                return q["access_type"] == "offline" && (firstConsent || splitScopes(q["prompt"]).contains("consent"))
            })
    }

    // MARK: POST /token

    private func googleToken(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        if let fault = injectedFault(at: "POST /token") {
            return answer(fault) { status, message in
                .oauthError(status == 429 ? "rate_limit_exceeded" : "temporarily_unavailable", message, status: status)
            }
        }
        switch tokenGrant(request, grantType: request.form["grant_type"], now: now) {
        case .success(let issued):
            var body: [String: any Sendable] = [
                "access_token": issued.accessToken,
                "expires_in": accessTokenExpiresIn(issued.accessToken, now: now) ?? 0,
                "scope": scopes(of: issued).joined(separator: " "),
                "token_type": "Bearer",
            ]
            // A refresh answers without refresh_token while the refresh token stays the same.
            if let refresh = issued.refreshToken, issued.refreshTokenIsNew {
                body["refresh_token"] = refresh
            }
            return .json(200, body, headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
        case .failure(let refusal):
            return googleError(refusal)
        }
    }

    private func googleError(_ refusal: GrantRefusal) -> OutgoingResponse {
        switch refusal.reason {
        case .badRefreshToken:
            .oauthError("invalid_grant", "Token has been expired or revoked.")
        case .badCode, .badDeviceCode:
            .oauthError("invalid_grant", "Bad Request")
        case .unknownClient:
            .oauthError("invalid_client", "The OAuth client was not found.", status: 401)
        case .clientCredentialsMissing, .wrongClientSecret, .clientMismatch, .clientAuthenticationMethodRefused:
            .oauthError("invalid_client", "Unauthorized", status: 401)
        // Google answers a pending device grant with 428 and slow polling with 403: clients must key on `error`.
        case .authorizationPending:
            .oauthError("authorization_pending", "Precondition Required", status: 428)
        case .slowDown:
            .oauthError("slow_down", "Forbidden", status: 403)
        case .accessDenied:
            .oauthError("access_denied", "Forbidden", status: 403)
        case .deviceCodeExpired:
            .oauthError("expired_token", "Bad Request")
        case .invalidRequest, .unsupportedGrantType:
            .oauthError(refusal.error, refusal.description)
        }
    }

    // MARK: POST /device/code

    private func googleDeviceCode(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard let clientId = request.form["client_id"], let client = client(clientId) else {
            return .oauthError("invalid_client", "The OAuth client was not found.", status: 401)
        }
        let scopes = splitScopes(request.form["scope"])
        guard !scopes.isEmpty, scopes.allSatisfy(client.scopes.contains) else {
            return .oauthError("invalid_scope", "Some requested scopes were invalid.")
        }
        let device = startDeviceAuthorization(client: client, scopes: scopes, now: now, userCode: randomUserCode)
        // Google names the field verification_url, not RFC 8628's verification_uri.
        return .json(
            200,
            [
                "device_code": device.deviceCode,
                "user_code": device.userCode,
                "verification_url": sandboxVerificationURI,
                "expires_in": configuration.deviceCodeLifetime,
                "interval": device.interval,
            ])
    }

    // MARK: POST /revoke (RFC 7009)

    /// Revokes the whole grant behind an access or refresh token, and forgets the consent; 200 also for a token it
    /// does not know.
    private func googleRevoke(_ request: IncomingRequest) -> OutgoingResponse {
        guard let token = request.form["token"] ?? request.query["token"], !token.isEmpty else {
            return .oauthError("invalid_request", "Missing required parameter: token")
        }
        if let authorization = revokeAuthorization(ofToken: token) {
            consents.remove(authorization.clientId + "\n" + authorization.userId)
        }
        return .json(200, [:])
    }

    // MARK: GET /v1/userinfo

    private func googleUserinfo(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard case .usable(let authorization)? = bearerStatus(request, now: now), let user = user(authorization.userId)
        else {
            return .json(
                401, ["error": "invalid_request", "error_description": "Invalid Credentials"],
                headers: [("WWW-Authenticate", #"Bearer realm="https://accounts.google.com/", error="invalid_token""#)])
        }
        return .json(
            200,
            [
                "sub": user.id,
                "email": user.email,
                "email_verified": true,
                "name": user.displayName,
                "hd": user.orgId,
            ])
    }
}
