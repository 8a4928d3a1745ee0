import Foundation

// The Webex shape: everything under /v1. Routing and the wording of the OAuth answers; the REST endpoints are in
// ProviderSandbox+REST.swift.

extension ShapeRules {
    static let webex = ShapeRules(
        isTokenEndpoint: { method, path in
            method == "POST" && (path == "/v1/access_token" || path == "/v1/device/token")
        })
}

extension ProviderSandbox {
    private static let malformed = "The request could not be understood by the server due to malformed syntax."

    func routeWebex(_ request: IncomingRequest, at now: Date) -> OutgoingResponse {
        let route = "\(request.method) \(request.path)"
        switch (request.method, request.path) {
        case ("GET", "/v1/authorize"):
            count(route)
            return authorize(request, now: now)
        case ("POST", "/v1/access_token"):
            count(route)
            return accessToken(request, now: now)
        case ("GET", "/v1/people/me"):
            count(route)
            return peopleMe(request, now: now)
        case ("GET", "/v1/authorizations"), ("DELETE", "/v1/authorizations"):
            count(route)
            return request.method == "GET"
                ? listAuthorizations(request, now: now) : deleteAuthorizations(request, now: now)
        case ("GET", "/v1/authorizations/tokenExpiry"):
            count(route)
            return tokenExpiry(request, now: now)
        case ("DELETE", let path) where path.hasPrefix("/v1/authorizations/"):
            count("DELETE /v1/authorizations/{id}")
            return deleteAuthorization(id: String(path.dropFirst("/v1/authorizations/".count)), request, now: now)
        case ("POST", "/v1/device/authorize"):
            count(route)
            return deviceAuthorize(request, now: now)
        case ("POST", "/v1/device/token"):
            count(route)
            return deviceToken(request, now: now)
        case ("GET", "/v1/device/verify"):
            count(route)
            return deviceVerify(request, now: now)
        default:
            count("other")
            return .restError(404, "The requested resource could not be found.")
        }
    }

    // MARK: GET /v1/authorize

    private func authorize(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        authorizeCode(request.query, scopes: splitScopes(request.query["scope"]), now: now) { refusal in
            switch refusal {
            case .unknownClient:
                .restError(400, Self.malformed, description: "client_id is missing or not a registered integration")
            case .unregisteredRedirectURI:
                .restError(
                    400, Self.malformed,
                    description: "redirect_uri does not match a redirect URI registered on the integration")
            }
        }
    }

    // MARK: POST /v1/access_token

    private func accessToken(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        if let fault = injectedFault(at: "POST /v1/access_token") {
            return answer(fault) { .restError($0, $1) }
        }
        let form = request.form
        guard let grantType = form["grant_type"] else {
            return .oauthError("invalid_request", "grant_type is required")
        }
        guard grantType == "authorization_code" || grantType == "refresh_token" else {
            return .oauthError("unsupported_grant_type", "grant_type \(grantType) is not supported")
        }
        let result = authenticateClient(request).flatMap { client in
            grantType == "authorization_code"
                ? redeemCode(form, client: client, now: now) : refreshGrant(form, client: client, now: now)
        }
        return webexAnswer(result, now: now)
    }

    private func webexAnswer(_ result: Result<IssuedTokens, GrantRefusal>, now: Date) -> OutgoingResponse {
        switch result {
        case .success(let issued):
            // Webex's device token response carries `scope`.
            return tokenResponse(issued, now: now, alwaysReportScopes: issued.grant == .deviceCode)
        case .failure(let refusal):
            // Webex answers a pending device grant with 428.
            return .oauthError(
                refusal.error, refusal.description,
                status: refusal.reason == .authorizationPending ? 428 : 400)
        }
    }

    private func tokenResponse(_ issued: IssuedTokens, now: Date, alwaysReportScopes: Bool) -> OutgoingResponse {
        guard let refresh = issued.refreshToken, let expiresIn = accessTokenExpiresIn(issued.accessToken, now: now),
            let refreshExpiresIn = refreshTokenExpiresIn(refresh, now: now)
        else {
            return .oauthError("server_error", "token bookkeeping failed", status: 500)
        }
        var body: [String: any Sendable] = [
            "access_token": issued.accessToken,
            "expires_in": expiresIn,
            "refresh_token": refresh,
            "refresh_token_expires_in": refreshExpiresIn,
            "token_type": "Bearer",
        ]
        if configuration.reportScopes || alwaysReportScopes {
            body["scope"] = scopes(of: issued).joined(separator: " ")
        }
        return .json(200, body, headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
    }

    // MARK: POST /v1/device/authorize

    private func deviceAuthorize(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard let clientId = request.form["client_id"], let client = client(clientId) else {
            return .restError(400, Self.malformed, description: "Client Id is invalid")
        }
        let scopes = splitScopes(request.form["scope"])
        guard !scopes.isEmpty, scopes.allSatisfy(client.scopes.contains) else {
            return .restError(400, Self.malformed, description: "Scope is invalid")
        }
        let device = startDeviceAuthorization(client: client, scopes: scopes, now: now) { randomDigits(6) }
        let verification = (baseURL?.absoluteString ?? "http://127.0.0.1/v1") + "/device/verify"
        // Webex embeds a hash of the user code, not the code itself.
        let hashed = hex(sha256(Array(device.userCode.utf8)))
        return .json(
            200,
            [
                "device_code": device.deviceCode,
                "expires_in": configuration.deviceCodeLifetime,
                "user_code": device.userCode,
                "verification_uri": verification,
                "verification_uri_complete": appendQuery([("userCode", hashed)], to: verification),
                "interval": device.interval,
            ])
    }

    // MARK: POST /v1/device/token

    private func deviceToken(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let client: SandboxConfiguration.Client
        switch authenticateClient(request) {
        case .success(let authenticated): client = authenticated
        case .failure(let refusal): return webexAnswer(.failure(refusal), now: now)
        }
        guard request.form["grant_type"] == Self.deviceGrantType else {
            return .oauthError("unsupported_grant_type", "grant_type must be \(Self.deviceGrantType)")
        }
        return webexAnswer(pollDevice(request.form, client: client, now: now), now: now)
    }
}
