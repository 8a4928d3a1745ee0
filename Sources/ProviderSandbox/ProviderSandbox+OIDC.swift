import Foundation

// The OIDC shape: a plain standards provider found through discovery. /authorize, /token, /device_authorization,
// /revoke, /userinfo, /.well-known/openid-configuration, /jwks. RFC 6749 §5.2 errors; the token and revocation
// endpoints take HTTP Basic client authentication only.

extension ShapeRules {
    static let oidc = ShapeRules(
        redirectMatching: .loopbackAnyPort,
        isTokenEndpoint: { method, path in method == "POST" && path == "/token" },
        accessTokenPrefix: "",
        refreshTokenPrefix: "")
}

extension ProviderSandbox {
    func routeOIDC(_ request: IncomingRequest, at now: Date) -> OutgoingResponse {
        let route = "\(request.method) \(request.path)"
        switch (request.method, request.path) {
        case ("GET", "/authorize"):
            count(route)
            return authorizeCode(request.query, scopes: splitScopes(request.query["scope"]), now: now) { refusal in
                switch refusal {
                case .unknownClient: .oauthError("invalid_client", "Unknown client_id")
                case .unregisteredRedirectURI: .oauthError("invalid_request", "redirect_uri is not registered")
                }
            }
        case ("POST", "/token"):
            count(route)
            return oidcToken(request, now: now)
        case ("POST", "/device_authorization"):
            count(route)
            return oidcDeviceAuthorization(request, now: now)
        case ("POST", "/revoke"):
            count(route)
            return oidcRevoke(request)
        case ("GET", "/userinfo"), ("POST", "/userinfo"):
            count(route)
            return oidcUserinfo(request, now: now)
        case ("GET", "/.well-known/openid-configuration"):
            count(route)
            return discoveryDocument(
                endpoints: [
                    "authorization_endpoint": "/authorize", "token_endpoint": "/token",
                    "device_authorization_endpoint": "/device_authorization", "revocation_endpoint": "/revoke",
                    "userinfo_endpoint": "/userinfo", "jwks_uri": "/jwks",
                ],
                authMethods: ["client_secret_basic"], pkceMethods: ["S256"],
                scopes: ["openid", "email", "profile", "offline_access"])
        case ("GET", "/jwks"):
            count(route)
            return .json(200, ["keys": [[String: String]]()])
        case ("GET", "/sandbox/device/verify"):
            count(route)
            return deviceVerify(request, now: now)
        default:
            count("other")
            return .oauthError("not_found", "No such endpoint", status: 404)
        }
    }

    /// RFC 6749 §5.2: 400 with `error`; `invalid_client` is 401 with `WWW-Authenticate`.
    private func oidcError(_ refusal: GrantRefusal) -> OutgoingResponse {
        guard refusal.isClientRefusal else {
            return .oauthError(refusal.error, refusal.description)
        }
        var response = OutgoingResponse.oauthError("invalid_client", refusal.description, status: 401)
        response.headers.append(("WWW-Authenticate", #"Basic realm="sandbox""#))
        return response
    }

    // MARK: POST /token

    private func oidcToken(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        if let fault = injectedFault(at: "POST /token") {
            return answer(fault) { status, message in
                .oauthError(status == 429 ? "slow_down" : "temporarily_unavailable", message, status: status)
            }
        }
        switch tokenGrant(request, grantType: request.form["grant_type"], now: now, accepting: .basicOnly) {
        case .success(let issued):
            var body: [String: any Sendable] = [
                "access_token": issued.accessToken,
                "token_type": "Bearer",
                "scope": scopes(of: issued).joined(separator: " "),
            ]
            if let expiresIn = accessTokenExpiresIn(issued.accessToken, now: now) { body["expires_in"] = expiresIn }
            if let refresh = issued.refreshToken { body["refresh_token"] = refresh }
            return .json(200, body, headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
        case .failure(let refusal):
            return oidcError(refusal)
        }
    }

    // MARK: POST /device_authorization (RFC 8628 §3.1–3.2)

    private func oidcDeviceAuthorization(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let client: SandboxConfiguration.Client
        switch authenticateClient(request, accepting: .basicOnly, allowsIdOnly: true) {
        case .success(let authenticated): client = authenticated
        case .failure(let refusal): return oidcError(refusal)
        }
        let scopes = splitScopes(request.form["scope"])
        if let unknown = scopes.first(where: { !client.scopes.contains($0) }) {
            return .oauthError("invalid_scope", "The scope \(unknown) is not registered for the client")
        }
        let device = startDeviceAuthorization(client: client, scopes: scopes, now: now, userCode: randomUserCode)
        return .json(
            200,
            [
                "device_code": device.deviceCode,
                "user_code": device.userCode,
                "verification_uri": sandboxVerificationURI,
                "verification_uri_complete": appendQuery([("user_code", device.userCode)], to: sandboxVerificationURI),
                "expires_in": configuration.deviceCodeLifetime,
                "interval": device.interval,
            ])
    }

    // MARK: POST /revoke (RFC 7009)

    /// The client authenticates as at the token endpoint; 200 also for a token the sandbox does not know. Revoking
    /// either token of a grant revokes the whole grant.
    private func oidcRevoke(_ request: IncomingRequest) -> OutgoingResponse {
        let client: SandboxConfiguration.Client
        switch authenticateClient(request, accepting: .basicOnly) {
        case .success(let authenticated): client = authenticated
        case .failure(let refusal): return oidcError(refusal)
        }
        guard let token = request.form["token"], !token.isEmpty else {
            return .oauthError("invalid_request", "token is required")
        }
        if let id = authorizationId(ofToken: token), let authorization = authorizations[id] {
            guard authorization.clientId == client.clientId else {
                return .oauthError("invalid_request", "The token was not issued to this client")
            }
            revokeAuthorization(ofToken: token)
        }
        return .empty(200)
    }

    // MARK: GET /userinfo

    private func oidcUserinfo(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard case .usable(let authorization)? = bearerStatus(request, now: now), let user = user(authorization.userId)
        else {
            return .json(
                401, ["error": "invalid_token", "error_description": "The access token is invalid"],
                headers: [("WWW-Authenticate", #"Bearer error="invalid_token""#)])
        }
        return .json(200, ["sub": user.id, "email": user.email, "name": user.displayName])
    }
}
