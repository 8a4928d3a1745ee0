import Foundation

// The Slack shape (user tokens with token rotation). Paths of slack.com on one origin: /oauth/v2/authorize,
// /api/oauth.v2.access, /api/auth.test, /api/auth.revoke. Every API answer is HTTP 200 with `ok`; no device flow.

extension ShapeRules {
    static let slack = ShapeRules(
        requiresResponseType: false,
        requiresRedirectURIAtExchange: false,
        isTokenEndpoint: { method, path in method == "POST" && path == "/api/oauth.v2.access" },
        accessTokenPrefix: "xoxe.xoxp-1-",
        refreshTokenPrefix: "xoxe-1-")
}

extension ProviderSandbox {
    private static let slackAppId = "A0SANDBOX01"

    func routeSlack(_ request: IncomingRequest, at now: Date) -> OutgoingResponse {
        let route = "\(request.method) \(request.path)"
        switch (request.method, request.path) {
        case ("GET", "/oauth/v2/authorize"):
            count(route)
            return slackAuthorize(request, now: now)
        case ("POST", "/api/oauth.v2.access"):
            count(route)
            return slackAccess(request, now: now)
        case ("POST", "/api/auth.test"), ("GET", "/api/auth.test"):
            count(route)
            return slackAuthTest(request, now: now)
        case ("POST", "/api/auth.revoke"), ("GET", "/api/auth.revoke"):
            count(route)
            return slackAuthRevoke(request, now: now)
        default:
            count("other")
            return .json(404, ["ok": false, "error": "unknown_method"])
        }
    }

    private func slackError(_ error: String) -> OutgoingResponse {
        .json(200, ["ok": false, "error": error])
    }

    // MARK: GET /oauth/v2/authorize

    /// User scopes come in `user_scope` (comma-separated); bot scopes in `scope` are accepted and ignored.
    private func slackAuthorize(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        authorizeCode(request.query, scopes: splitScopes(request.query["user_scope"]), now: now) { refusal in
            switch refusal {
            case .unknownClient:
                .html(400, "<html><body><h1>Invalid client_id parameter</h1></body></html>")
            case .unregisteredRedirectURI:
                .html(400, "<html><body><h1>redirect_uri did not match any configured URIs.</h1></body></html>")
            }
        }
    }

    // MARK: POST /api/oauth.v2.access

    private func slackAccess(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        if let fault = injectedFault(at: "POST /api/oauth.v2.access") {
            return answer(fault) { status, _ in
                .json(status, ["ok": false, "error": status == 429 ? "ratelimited" : "service_unavailable"])
            }
        }
        let grantType = request.form["grant_type"] ?? "authorization_code"
        guard grantType == "authorization_code" || grantType == "refresh_token" else {
            return slackError("invalid_grant_type")
        }
        switch tokenGrant(request, grantType: grantType, now: now) {
        case .success(let issued):
            guard let authorization = authorizations[issued.authorizationId], let user = user(authorization.userId)
            else {
                return slackError("fatal_error")
            }
            let team: [String: any Sendable] = ["id": user.orgId, "name": user.orgId]
            var token: [String: any Sendable] = [
                "access_token": issued.accessToken,
                "token_type": "user",
                "scope": authorization.scopes.joined(separator: ","),
            ]
            if let refresh = issued.refreshToken { token["refresh_token"] = refresh }
            if let expiresIn = accessTokenExpiresIn(issued.accessToken, now: now) { token["expires_in"] = expiresIn }
            if issued.grant == .refreshToken {
                // A refresh answers at the top level.
                token["ok"] = true
                token["team"] = team
                return .json(200, token)
            }
            // The code exchange puts the user token under authed_user; the top level would hold a bot token.
            token["id"] = user.id
            return .json(200, ["ok": true, "app_id": Self.slackAppId, "authed_user": token, "team": team])
        case .failure(let refusal):
            switch refusal.reason {
            case .badCode: return slackError("invalid_code")
            case .badRefreshToken: return slackError("invalid_refresh_token")
            case .clientCredentialsMissing, .unknownClient: return slackError("invalid_client_id")
            case .wrongClientSecret, .clientMismatch, .clientAuthenticationMethodRefused:
                return slackError("bad_client_secret")
            default: return slackError("invalid_arguments")
            }
        }
    }

    // MARK: POST /api/auth.test, /api/auth.revoke

    /// The token the request is authenticated with: Bearer, else a `token` field.
    private func slackCaller(_ request: IncomingRequest, now: Date) -> Result<Authorization, RESTRefusal> {
        guard let token = bearerToken(request.headers["authorization"]) ?? request.form["token"] else {
            return .failure(RESTRefusal(response: slackError("not_authed")))
        }
        switch accessTokenStatus(token, now: now) {
        case .usable(let authorization): return .success(authorization)
        case .unknown: return .failure(RESTRefusal(response: slackError("invalid_auth")))
        case .expired: return .failure(RESTRefusal(response: slackError("token_expired")))
        case .revoked: return .failure(RESTRefusal(response: slackError("token_revoked")))
        }
    }

    private func slackAuthTest(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        switch slackCaller(request, now: now) {
        case .failure(let refusal):
            return refusal.response
        case .success(let authorization):
            guard let user = user(authorization.userId) else { return slackError("user_not_found") }
            return .json(
                200,
                [
                    "ok": true,
                    "url": "https://\(user.orgId).slack.com/",
                    "team": user.orgId,
                    "user": user.login,
                    "team_id": user.orgId,
                    "user_id": user.id,
                ])
        }
    }

    /// Revokes the authorization of the token the request is authenticated with; `test=1` only pretends.
    private func slackAuthRevoke(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        switch slackCaller(request, now: now) {
        case .failure(let refusal):
            return refusal.response
        case .success(let authorization):
            let test = (request.form["test"] ?? request.query["test"]).map { $0 == "1" || $0 == "true" } ?? false
            if !test { revokeAuthorizations { $0.id == authorization.id } }
            return .json(200, ["ok": true, "revoked": !test])
        }
    }
}
