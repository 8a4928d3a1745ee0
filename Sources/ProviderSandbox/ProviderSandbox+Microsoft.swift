import Foundation

// The Microsoft (Entra ID v2.0) shape. Paths of login.microsoftonline.com and graph.microsoft.com on one origin:
// /{tenant}/oauth2/v2.0/{authorize,token,devicecode}, /oidc/userinfo, /v1.0/me/revokeSignInSessions.

extension ShapeRules {
    static let microsoft = ShapeRules(
        redirectMatching: .loopbackAnyPort,
        pkceMethods: ["S256", "plain"],
        isTokenEndpoint: { method, path in
            method == "POST" && ProviderSandbox.microsoftEndpoint(path)?.endpoint == "token"
        },
        accessTokenPrefix: "EwB",
        refreshTokenPrefix: "M.C5_")
}

extension ProviderSandbox {
    /// `(tenant, endpoint)` of `/{tenant}/oauth2/v2.0/{endpoint}`, whatever the tenant segment looks like.
    static func microsoftEndpoint(_ path: String) -> (tenant: String, endpoint: String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[2] == "oauth2", parts[3] == "v2.0", !parts[1].isEmpty
        else { return nil }
        return (String(parts[1]), String(parts[4]))
    }

    /// `common`, `organizations`, `consumers`, a GUID or a domain name.
    static func isMicrosoftTenant(_ tenant: String) -> Bool {
        if ["common", "organizations", "consumers"].contains(tenant) { return true }
        if UUID(uuidString: tenant) != nil { return true }
        let labels = tenant.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2
            && labels.allSatisfy { label in
                !label.isEmpty && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
    }

    func routeMicrosoft(_ request: IncomingRequest, at now: Date) -> OutgoingResponse {
        let route = "\(request.method) \(request.path)"
        if let found = Self.microsoftEndpoint(request.path),
            ["authorize", "token", "devicecode"].contains(found.endpoint)
        {
            let (tenant, endpoint) = found
            let method = endpoint == "authorize" ? "GET" : "POST"
            guard request.method == method else {
                count("other")
                return microsoftError("invalid_request", 900_561, "The endpoint only accepts \(method) requests.")
            }
            count("\(method) /{tenant}/oauth2/v2.0/\(endpoint)")
            stats.requestsByTenant[tenant, default: 0] += 1
            guard Self.isMicrosoftTenant(tenant) else {
                return microsoftError("invalid_request", 90002, "Tenant '\(tenant)' not found.")
            }
            switch endpoint {
            case "authorize": return microsoftAuthorize(request, now: now)
            case "token": return microsoftToken(request, now: now)
            default: return microsoftDeviceCode(request, now: now)
            }
        }
        switch (request.method, request.path) {
        case ("GET", "/oidc/userinfo"), ("POST", "/oidc/userinfo"):
            count(route)
            return microsoftUserinfo(request, now: now)
        case ("POST", "/v1.0/me/revokeSignInSessions"):
            count(route)
            return microsoftRevokeSignInSessions(request, now: now)
        case ("GET", "/sandbox/device/verify"):
            count(route)
            return deviceVerify(request, now: now)
        default:
            count("other")
            return .json(404, ["error": ["code": "NotFound", "message": "Resource not found."]])
        }
    }

    /// Microsoft's error body: `error`, `error_description` starting with `AADSTS<code>:`, `error_codes`,
    /// `timestamp`, `trace_id`, `correlation_id`.
    private func microsoftError(_ error: String, _ code: Int, _ text: String, status: Int = 400) -> OutgoingResponse {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        return .json(
            status,
            [
                "error": error,
                "error_description": "AADSTS\(code): \(text) Trace ID: sandbox",
                "error_codes": [code],
                "timestamp": formatter.string(from: now),
                "trace_id": UUID().uuidString.lowercased(),
                "correlation_id": UUID().uuidString.lowercased(),
            ])
    }

    // MARK: GET /{tenant}/oauth2/v2.0/authorize

    /// A refresh token only when `offline_access` was granted.
    private func microsoftAuthorize(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let q = request.query
        return authorizeCode(
            q, scopes: splitScopes(q["scope"]), now: now,
            refuse: { refusal in
                switch refusal {
                case .unknownClient:
                    microsoftError(
                        "unauthorized_client", 700_016,
                        "Application with identifier '\(q["client_id"] ?? "")' was not found in the directory.")
                case .unregisteredRedirectURI:
                    microsoftError(
                        "invalid_request", 50011,
                        "The redirect URI specified in the request does not match the redirect URIs configured for the application."
                    )
                }
            }, issuesRefreshToken: { _, _, granted in granted.contains("offline_access") })
    }

    // MARK: POST /{tenant}/oauth2/v2.0/token

    private func microsoftToken(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        if let fault = injectedFault(at: "POST /{tenant}/oauth2/v2.0/token") {
            // The AADSTS codes of injected faults are the sandbox's own choice.
            return answer(fault) { status, message in
                microsoftError("temporarily_unavailable", status == 429 ? 50196 : 90033, message, status: status)
            }
        }
        switch tokenGrant(request, grantType: request.form["grant_type"], now: now) {
        case .success(let issued):
            let expiresIn = accessTokenExpiresIn(issued.accessToken, now: now) ?? 0
            // No `scope`: when it is absent, the requested scopes apply.
            var body: [String: any Sendable] = [
                "token_type": "Bearer",
                "expires_in": expiresIn,
                "ext_expires_in": expiresIn,
                "access_token": issued.accessToken,
            ]
            if let refresh = issued.refreshToken { body["refresh_token"] = refresh }
            return .json(200, body, headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
        case .failure(let refusal):
            return microsoftError(refusal)
        }
    }

    private func microsoftError(_ refusal: GrantRefusal) -> OutgoingResponse {
        switch refusal.reason {
        case .badRefreshToken:
            microsoftError(
                "invalid_grant", 70000,
                "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.")
        case .badCode:
            microsoftError(
                "invalid_grant", 70000,
                "The provided authorization code or refresh token has expired, been used or is invalid.")
        case .unknownClient:
            microsoftError(
                "unauthorized_client", 700_016,
                "Application was not found in the directory.")
        case .wrongClientSecret, .clientMismatch, .clientAuthenticationMethodRefused:
            microsoftError("invalid_client", 7_000_215, "Invalid client secret provided.", status: 401)
        case .clientCredentialsMissing:
            microsoftError(
                "invalid_client", 7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                status: 401)
        case .authorizationPending:
            microsoftError(
                "authorization_pending", 70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
        case .slowDown:
            microsoftError("slow_down", 70016, "OAuth 2.0 device flow error. Polling too fast.")
        case .accessDenied:
            microsoftError("authorization_declined", 70000, "The end user declined the authorization request.")
        case .deviceCodeExpired:
            microsoftError(
                "expired_token", 70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
        case .badDeviceCode:
            microsoftError(
                "bad_verification_code", 70000,
                "The provided value for the input parameter 'device_code' is not valid.")
        case .unsupportedGrantType:
            microsoftError("unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        case .invalidRequest:
            microsoftError("invalid_request", 900_144, refusal.description)
        }
    }

    // MARK: POST /{tenant}/oauth2/v2.0/devicecode

    private func microsoftDeviceCode(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard let clientId = request.form["client_id"], let client = client(clientId) else {
            return microsoftError("unauthorized_client", 700_016, "Application was not found in the directory.")
        }
        let scopes = splitScopes(request.form["scope"])
        guard !scopes.isEmpty, scopes.allSatisfy(client.scopes.contains) else {
            return microsoftError(
                "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid.")
        }
        let device = startDeviceAuthorization(
            client: client, scopes: scopes, now: now,
            issuesRefreshToken: grantedScopes(scopes).contains("offline_access")
        ) { randomToken(length: 9).uppercased() }
        // No verification_uri_complete; a message to show instead.
        return .json(
            200,
            [
                "user_code": device.userCode,
                "device_code": device.deviceCode,
                "verification_uri": sandboxVerificationURI,
                "expires_in": configuration.deviceCodeLifetime,
                "interval": device.interval,
                "message":
                    "To sign in, use a web browser to open the page \(sandboxVerificationURI) and enter the code "
                    + "\(device.userCode) to authenticate.",
            ])
    }

    // MARK: Graph: GET /oidc/userinfo, POST /v1.0/me/revokeSignInSessions

    private func microsoftCaller(_ request: IncomingRequest, now: Date) -> Result<Authorization, RESTRefusal> {
        guard case .usable(let authorization)? = bearerStatus(request, now: now) else {
            return .failure(
                RESTRefusal(
                    response: .json(
                        401,
                        [
                            "error": [
                                "code": "InvalidAuthenticationToken", "message": "Access token validation failure.",
                            ]
                        ],
                        headers: [("WWW-Authenticate", #"Bearer error="invalid_token""#)])))
        }
        return .success(authorization)
    }

    private func microsoftUserinfo(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        switch microsoftCaller(request, now: now) {
        case .failure(let refusal):
            return refusal.response
        case .success(let authorization):
            guard let user = user(authorization.userId) else { return .json(404, [:]) }
            return .json(
                200,
                [
                    "sub": user.id,
                    "name": user.displayName,
                    "email": user.email,
                    "given_name": user.givenName,
                    "family_name": user.familyName,
                ])
        }
    }

    /// Invalidates every refresh token (every authorization) the caller's user gave, to any client.
    private func microsoftRevokeSignInSessions(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        switch microsoftCaller(request, now: now) {
        case .failure(let refusal):
            return refusal.response
        case .success(let caller):
            revokeAuthorizations { $0.userId == caller.userId }
            return .json(
                200, ["@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true])
        }
    }
}
