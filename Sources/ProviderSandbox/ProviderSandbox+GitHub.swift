import Foundation

// The GitHub shape. Paths of github.com and api.github.com on one origin: /login/oauth/authorize,
// /login/oauth/access_token, /login/device/code, /user, DELETE /applications/{client_id}/token.
// Token endpoint answers are form-encoded unless the request accepts JSON, and its errors come with HTTP 200.

extension ShapeRules {
    /// A GitHub App with expiring user tokens: `ghu_`/`ghr_`, strict rotation that also kills the old access token.
    static let github = ShapeRules(
        requiresResponseType: false,
        requiresScope: false,
        requiresRedirectURIAtExchange: false,
        rotationRevokesPreviousAccessToken: true,
        isTokenEndpoint: { method, path in method == "POST" && path == "/login/oauth/access_token" },
        accessTokenPrefix: "ghu_",
        refreshTokenPrefix: "ghr_")

    /// An OAuth app: `gho_` tokens that never expire, no refresh token.
    static let githubOAuthApp: ShapeRules = {
        var rules = ShapeRules.github
        rules.issuesRefreshTokens = false
        rules.accessTokensExpire = false
        rules.accessTokenPrefix = "gho_"
        return rules
    }()
}

extension ProviderSandbox {
    private static let gitHubDocs =
        "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"

    func routeGitHub(_ request: IncomingRequest, at now: Date) -> OutgoingResponse {
        let route = "\(request.method) \(request.path)"
        switch (request.method, request.path) {
        case ("GET", "/login/oauth/authorize"):
            count(route)
            return gitHubAuthorize(request, now: now)
        case ("POST", "/login/oauth/access_token"):
            count(route)
            return gitHubToken(request, now: now)
        case ("POST", "/login/device/code"):
            count(route)
            return gitHubDeviceCode(request, now: now)
        case ("GET", "/user"):
            count(route)
            return gitHubUser(request, now: now)
        case ("DELETE", let path) where path.hasPrefix("/applications/") && path.hasSuffix("/token"):
            count("DELETE /applications/{client_id}/token")
            let clientId = String(path.dropFirst("/applications/".count).dropLast("/token".count))
            return gitHubDeleteToken(clientId: clientId, request, now: now)
        case ("GET", "/sandbox/device/verify"):
            count(route)
            return deviceVerify(request, now: now)
        default:
            count("other")
            return .json(404, ["message": "Not Found", "documentation_url": "https://docs.github.com/rest"])
        }
    }

    /// Form-encoded, or JSON when the request's `Accept` names `application/json`; fields sorted by name.
    private func gitHubAnswer(_ request: IncomingRequest, _ fields: [String: any Sendable]) -> OutgoingResponse {
        if request.headers["accept"]?.lowercased().contains("application/json") == true {
            return .json(200, fields)
        }
        return .form(200, fields.keys.sorted().map { ($0, "\(fields[$0]!)") })
    }

    // MARK: GET /login/oauth/authorize

    /// `redirect_uri` defaults to the first registered callback; a wrong one is sent back there as
    /// `error=redirect_uri_mismatch`.
    private func gitHubAuthorize(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        var q = request.query
        if q["redirect_uri"] == nil, let clientId = q["client_id"], let first = client(clientId)?.redirectURIs.first {
            q["redirect_uri"] = first
        }
        return authorizeCode(q, scopes: splitScopes(q["scope"]), now: now) { refusal in
            switch refusal {
            case .unknownClient:
                return .html(404, "<html><body><h1>404 Not Found</h1></body></html>")
            case .unregisteredRedirectURI(let client):
                guard let callback = client.redirectURIs.first else {
                    return .html(
                        400,
                        "<html><body><h1>The redirect_uri is not associated with this application.</h1></body></html>")
                }
                var items = [
                    ("error", "redirect_uri_mismatch"),
                    (
                        "error_description",
                        "The redirect_uri MUST match the registered callback URL for this application."
                    ),
                    (
                        "error_uri",
                        "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch"
                    ),
                ]
                if let state = q["state"] { items.append(("state", state)) }
                return .redirect(appendQuery(items, to: callback))
            }
        }
    }

    // MARK: POST /login/oauth/access_token

    private func gitHubToken(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        if let fault = injectedFault(at: "POST /login/oauth/access_token") {
            return answer(fault) { status, message in
                .json(status, ["message": message, "documentation_url": "https://docs.github.com/rest"])
            }
        }
        let form = request.form
        // The code exchange has no grant_type at GitHub.
        let grantType = form["grant_type"] ?? (form["code"] != nil ? "authorization_code" : nil)
        // Device polling sends no secret, and refreshing a device-flow grant needs none.
        let allowsIdOnly =
            grantType == Self.deviceGrantType
            || (grantType == "refresh_token"
                && form["refresh_token"].flatMap { refreshTokens[$0] }.flatMap { authorizations[$0.authorizationId] }?
                    .viaDevice == true)
        switch tokenGrant(request, grantType: grantType, now: now, allowsIdOnly: allowsIdOnly) {
        case .success(let issued):
            var fields: [String: any Sendable] = [
                "access_token": issued.accessToken,
                "scope": scopes(of: issued).joined(separator: ","),
                "token_type": "bearer",
            ]
            if let expiresIn = accessTokenExpiresIn(issued.accessToken, now: now) { fields["expires_in"] = expiresIn }
            if let refresh = issued.refreshToken {
                fields["refresh_token"] = refresh
                fields["refresh_token_expires_in"] = refreshTokenExpiresIn(refresh, now: now) ?? 0
            }
            return gitHubAnswer(request, fields)
        case .failure(let refusal):
            return gitHubAnswer(request, gitHubError(refusal))
        }
    }

    /// Token endpoint errors: HTTP 200 with `error`, `error_description`, `error_uri` (and `interval` on slow_down).
    private func gitHubError(_ refusal: GrantRefusal) -> [String: any Sendable] {
        let (error, description): (String, String) =
            switch refusal.reason {
            case .badCode: ("bad_verification_code", "The code passed is incorrect or expired.")
            case .badRefreshToken: ("bad_refresh_token", "The refresh token passed is incorrect or expired.")
            case .clientCredentialsMissing, .unknownClient, .wrongClientSecret, .clientMismatch,
                .clientAuthenticationMethodRefused:
                ("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
            case .authorizationPending: ("authorization_pending", "The authorization request is still pending.")
            case .slowDown: ("slow_down", "Too many requests have been made in the same timeframe.")
            case .deviceCodeExpired: ("expired_token", "The device_code has expired.")
            case .accessDenied: ("access_denied", "The authorization request was denied.")
            case .badDeviceCode: ("incorrect_device_code", "The device_code provided is not valid.")
            case .unsupportedGrantType: ("unsupported_grant_type", "The grant type is not supported.")
            case .invalidRequest: (refusal.error, refusal.description)
            }
        var fields: [String: any Sendable] = [
            "error": error, "error_description": description, "error_uri": Self.gitHubDocs,
        ]
        if case .slowDown(let interval) = refusal.reason { fields["interval"] = interval }
        return fields
    }

    // MARK: POST /login/device/code

    private func gitHubDeviceCode(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard let clientId = request.form["client_id"], let client = client(clientId) else {
            return gitHubAnswer(request, gitHubError(GrantRefusal(.unknownClient, "invalid_client", "")))
        }
        let scopes = splitScopes(request.form["scope"])
        if let unknown = scopes.first(where: { !client.scopes.contains($0) }) {
            return gitHubAnswer(
                request, ["error": "invalid_scope", "error_description": "The scope \(unknown) is not valid."])
        }
        let device = startDeviceAuthorization(client: client, scopes: scopes, now: now, userCode: randomUserCode)
        return gitHubAnswer(
            request,
            [
                "device_code": device.deviceCode,
                "user_code": device.userCode,
                "verification_uri": sandboxVerificationURI,
                "expires_in": configuration.deviceCodeLifetime,
                "interval": device.interval,
            ])
    }

    // MARK: GET /user

    private func gitHubUser(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        var status = bearerStatus(request, now: now)
        if status == nil, let header = request.headers["authorization"], header.lowercased().hasPrefix("token ") {
            status = accessTokenStatus(String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces), now: now)
        }
        guard case .usable(let authorization)? = status, let user = user(authorization.userId) else {
            return .json(
                401,
                ["message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"])
        }
        return .json(
            200,
            [
                "id": gitHubId(of: user),
                "login": user.login,
                "name": user.displayName,
                "email": user.email,
            ])
    }

    /// The digits of the user's id (`person-2` → 2), else its position among the users, from 1.
    func gitHubId(of user: SandboxConfiguration.User) -> Int {
        if let number = Int(user.id.filter(\.isNumber)) { return number }
        return (configuration.users.firstIndex(of: user) ?? 0) + 1
    }

    // MARK: DELETE /applications/{client_id}/token

    /// HTTP Basic `client_id:client_secret` and `{"access_token": …}`: revokes the token's whole authorization.
    private func gitHubDeleteToken(clientId: String, _ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard let basic = parseBasicAuthorization(request.headers["authorization"]), basic.id == clientId,
            let client = client(clientId), client.clientSecret == basic.secret
        else {
            return .json(
                401, ["message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"])
        }
        guard let object = try? JSONSerialization.jsonObject(with: request.body) as? [String: Any],
            let token = object["access_token"] as? String, !token.isEmpty
        else {
            return .json(
                422,
                [
                    "message": "Invalid request.\n\n\"access_token\" wasn't supplied.",
                    "documentation_url": "https://docs.github.com/rest",
                ])
        }
        guard let record = accessTokens[token], authorizations[record.authorizationId]?.clientId == client.clientId
        else {
            return .json(404, ["message": "Not Found", "documentation_url": "https://docs.github.com/rest"])
        }
        revokeAuthorization(ofToken: token)
        return .empty(204)
    }
}
