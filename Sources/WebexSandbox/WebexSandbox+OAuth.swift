import Foundation

struct AuthorizationCode: Sendable {
    var clientId: String
    var redirectURI: String
    var scopes: [String]
    var userId: String
    var codeChallenge: String?
    var expiresAt: Date
    var used = false
}

/// One grant of consent: a user, a client, scopes. Every token pair issued from it belongs to it, so revoking it
/// invalidates them all.
struct Authorization: Sendable {
    var id: String
    var clientId: String
    var userId: String
    var scopes: [String]
    var created: Date
    var revoked = false
}

struct AccessTokenRecord: Sendable {
    var authorizationId: String
    var expiresAt: Date
    var revoked = false
}

struct RefreshTokenRecord: Sendable {
    var authorizationId: String
    var expiresAt: Date
    var revoked = false
    /// Set when rotation replaced this token: when, and the pair that replaced it.
    var rotatedAt: Date?
    var successor: (accessToken: String, refreshToken: String)?
    /// The access token issued in the same answer, so a rotation chain can say which pair a client kept.
    var accessToken: String?
}

let refreshTokenRefusal = "The refresh token provided is expired, revoked, malformed, or invalid."

extension WebexSandbox {
    static let codeLifetime: TimeInterval = 600

    // MARK: GET /v1/authorize

    func authorize(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let q = request.query
        guard let clientId = q["client_id"], let client = client(clientId) else {
            return .restError(400, "The request could not be understood by the server due to malformed syntax.",
                              description: "client_id is missing or not a registered integration")
        }
        // Without an exactly registered redirect_uri there is nowhere safe to send errors: answer here.
        guard let redirectURI = q["redirect_uri"], client.redirectURIs.contains(redirectURI) else {
            return .restError(400, "The request could not be understood by the server due to malformed syntax.",
                              description: "redirect_uri does not match a redirect URI registered on the integration")
        }
        let state = q["state"]
        func fail(_ error: String, _ description: String) -> OutgoingResponse {
            var items = [("error", error), ("error_description", description)]
            if let state { items.append(("state", state)) }
            return .redirect(appendQuery(items, to: redirectURI))
        }
        guard q["response_type"] == "code" else {
            return fail("unsupported_response_type", "response_type must be code")
        }
        let scopes = splitScopes(q["scope"])
        guard !scopes.isEmpty else { return fail("invalid_scope", "scope is required") }
        if let unknown = scopes.first(where: { !client.scopes.contains($0) }) {
            return fail("invalid_scope", "The scope \(unknown) is not registered on the integration")
        }
        var challenge: String?
        if let codeChallenge = q["code_challenge"] {
            guard q["code_challenge_method"] == "S256" else {
                return fail("invalid_request", "code_challenge_method must be S256")
            }
            guard (43...128).contains(codeChallenge.count) else {
                return fail("invalid_request", "code_challenge is malformed")
            }
            challenge = codeChallenge
        }
        guard let user = approvingUser(loginHint: q["login_hint"]) else {
            return fail("access_denied", "No such user")
        }
        if configuration.faults.denyConsent {
            return fail("access_denied", "The user denied the request")
        }
        let code = randomToken(length: 64) + "_\(configuration.cluster)_\(user.orgId)"
        let withheld = configuration.withheldScopes
        let granted = scopes.filter { scope in
            !withheld.contains { $0.hasSuffix("*") ? scope.hasPrefix($0.dropLast()) : scope == $0 }
        }
        codes[code] = AuthorizationCode(
            clientId: client.clientId, redirectURI: redirectURI, scopes: granted, userId: user.id,
            codeChallenge: challenge, expiresAt: now.addingTimeInterval(Self.codeLifetime))
        stats.codesIssued += 1
        var items = [("code", code)]
        if let state { items.append(("state", state)) }
        return .redirect(appendQuery(items, to: redirectURI))
    }

    // MARK: POST /v1/access_token

    func accessToken(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        if let fault = injectedFault() { return fault }
        let form = request.form
        guard let grantType = form["grant_type"] else {
            return .oauthError("invalid_request", "grant_type is required")
        }
        guard grantType == "authorization_code" || grantType == "refresh_token" else {
            return .oauthError("unsupported_grant_type", "grant_type \(grantType) is not supported")
        }
        let client: SandboxConfiguration.Client
        switch authenticateClient(request) {
        case .success(let authenticated): client = authenticated
        case .failure(let refusal): return refusal.response
        }
        if grantType == "authorization_code" {
            return redeemCode(form, client: client, now: now)
        }
        return refresh(form, client: client, now: now)
    }

    /// Every Nth token request answers 429 or 503; HTML garbage mode answers every one with a web page.
    private func injectedFault() -> OutgoingResponse? {
        let faults = configuration.faults
        let n = requests(to: "POST /v1/access_token")
        if let every = faults.tooManyRequestsEvery, every > 0, n % every == 0 {
            stats.tooManyRequestsAnswered += 1
            var response = OutgoingResponse.restError(429, "Too many requests. Retry after \(faults.retryAfterSeconds) seconds.")
            response.headers.append(("Retry-After", String(faults.retryAfterSeconds)))
            return response
        }
        if let every = faults.serviceUnavailableEvery, every > 0, n % every == 0 {
            stats.serviceUnavailableAnswered += 1
            return .restError(503, "Service is temporarily unavailable. Please retry later.")
        }
        if faults.htmlGarbage {
            stats.htmlGarbageAnswered += 1
            return .html(200, "<!DOCTYPE html><html><head><title>Sign in</title></head>"
                + "<body><h1>Network login required</h1><p>Please sign in to continue.</p></body></html>")
        }
        return nil
    }

    /// Client credentials from HTTP Basic or from the body (`client_id`, `client_secret`), as Webex accepts both.
    func authenticateClient(_ request: IncomingRequest) -> Result<SandboxConfiguration.Client, ClientRefusal> {
        let credentials: (id: String, secret: String)
        if let basic = parseBasicAuthorization(request.headers["authorization"]) {
            credentials = basic
        } else if let id = request.form["client_id"], let secret = request.form["client_secret"] {
            credentials = (id, secret)
        } else {
            return .failure(ClientRefusal(response: .oauthError("invalid_client", "Client credentials are missing")))
        }
        guard let client = client(credentials.id), client.clientSecret == credentials.secret else {
            return .failure(ClientRefusal(response: .oauthError("invalid_client", "Client authentication failed")))
        }
        if let bodyId = request.form["client_id"], bodyId != client.clientId {
            return .failure(ClientRefusal(response: .oauthError("invalid_client", "client_id does not match the credentials")))
        }
        return .success(client)
    }

    private func redeemCode(_ form: [String: String], client: SandboxConfiguration.Client, now: Date) -> OutgoingResponse {
        guard let code = form["code"], !code.isEmpty else {
            return .oauthError("invalid_request", "code is required")
        }
        guard var record = codes[code], record.clientId == client.clientId else {
            return .oauthError("invalid_grant", "The authorization code is invalid")
        }
        guard !record.used else {
            return .oauthError("invalid_grant", "The authorization code has already been used")
        }
        // A code found for this client is spent by any attempt, so a wrong verifier cannot be retried.
        record.used = true
        codes[code] = record
        guard now < record.expiresAt else {
            return .oauthError("invalid_grant", "The authorization code has expired")
        }
        guard form["redirect_uri"] == record.redirectURI else {
            return .oauthError("invalid_grant", "redirect_uri does not match the one used to obtain the code")
        }
        switch (record.codeChallenge, form["code_verifier"]) {
        case (nil, nil):
            break
        case (nil, .some):
            return .oauthError("invalid_grant", "code_verifier given but the authorization request had no code_challenge")
        case (.some, nil):
            return .oauthError("invalid_grant", "code_verifier is required")
        case (.some(let challenge), .some(let verifier)):
            guard (43...128).contains(verifier.count), pkceChallenge(forVerifier: verifier) == challenge else {
                return .oauthError("invalid_grant", "code_verifier does not match the code_challenge")
            }
        }
        stats.codesRedeemed += 1
        let authorization = newAuthorization(clientId: client.clientId, userId: record.userId, scopes: record.scopes, now: now)
        let pair = mintPair(for: authorization, now: now)
        return tokenResponse(access: pair.accessToken, refresh: pair.refreshToken, now: now)
    }

    private func refresh(_ form: [String: String], client: SandboxConfiguration.Client, now: Date) -> OutgoingResponse {
        guard let token = form["refresh_token"], !token.isEmpty else {
            return .oauthError("invalid_request", "refresh_token is required")
        }
        stats.refreshGrants += 1
        guard var record = refreshTokens[token] else {
            return .oauthError("invalid_grant", refreshTokenRefusal)
        }
        refreshTokenUses[token, default: 0] += 1
        guard let authorization = authorizations[record.authorizationId], authorization.clientId == client.clientId,
              !authorization.revoked, !record.revoked, now < record.expiresAt
        else {
            if record.rotatedAt != nil { stats.rotatedRefreshTokenReuses += 1 }
            return .oauthError("invalid_grant", refreshTokenRefusal)
        }
        if let rotatedAt = record.rotatedAt, let successor = record.successor {
            stats.rotatedRefreshTokenReuses += 1
            guard case .grace(let seconds) = configuration.rotation,
                  now < rotatedAt.addingTimeInterval(TimeInterval(seconds)),
                  isUsable(refreshToken: successor.refreshToken, now: now)
            else {
                return .oauthError("invalid_grant", refreshTokenRefusal)
            }
            stats.successfulRefreshes += 1
            return tokenResponse(access: successor.accessToken, refresh: successor.refreshToken, now: now)
        }

        let access = newAccessToken(for: authorization, now: now)
        let newRefresh: String
        switch configuration.rotation {
        case .off:
            // Webex: the same refresh token, its lifetime started again.
            if !configuration.keepsRefreshTokenExpiry {
                record.expiresAt = now.addingTimeInterval(TimeInterval(configuration.refreshTokenLifetime))
            }
            refreshTokens[token] = record
            newRefresh = token
        case .on, .grace:
            newRefresh = newRefreshToken(for: authorization, now: now)
            refreshTokens[newRefresh]?.accessToken = access
            if configuration.keepsRefreshTokenExpiry { refreshTokens[newRefresh]?.expiresAt = record.expiresAt }
            record.rotatedAt = now
            record.successor = (access, newRefresh)
            refreshTokens[token] = record
        }
        stats.successfulRefreshes += 1
        stats.tokenPairsIssued += 1
        return tokenResponse(access: access, refresh: newRefresh, now: now)
    }

    // MARK: Issuing

    func newAuthorization(clientId: String, userId: String, scopes: [String], now: Date) -> Authorization {
        let authorization = Authorization(
            id: UUID().uuidString.lowercased(), clientId: clientId, userId: userId, scopes: scopes, created: now)
        authorizations[authorization.id] = authorization
        return authorization
    }

    func mintPair(for authorization: Authorization, now: Date) -> (accessToken: String, refreshToken: String) {
        stats.tokenPairsIssued += 1
        let access = newAccessToken(for: authorization, now: now)
        let refresh = newRefreshToken(for: authorization, now: now)
        refreshTokens[refresh]?.accessToken = access
        return (access, refresh)
    }

    private func newAccessToken(for authorization: Authorization, now: Date) -> String {
        let token = webexToken(for: authorization)
        accessTokens[token] = AccessTokenRecord(
            authorizationId: authorization.id,
            expiresAt: now.addingTimeInterval(TimeInterval(configuration.accessTokenLifetime)))
        return token
    }

    private func newRefreshToken(for authorization: Authorization, now: Date) -> String {
        let token = webexToken(for: authorization)
        refreshTokens[token] = RefreshTokenRecord(
            authorizationId: authorization.id,
            expiresAt: now.addingTimeInterval(TimeInterval(configuration.refreshTokenLifetime)))
        return token
    }

    /// `<random>_<cluster>_<orgId>`, the shape of Webex tokens.
    private func webexToken(for authorization: Authorization) -> String {
        let orgId = user(authorization.userId)?.orgId ?? "unknown-org"
        return randomToken(length: 64) + "_\(configuration.cluster)_\(orgId)"
    }

    func tokenResponse(access: String, refresh: String, now: Date, alwaysReportScopes: Bool = false) -> OutgoingResponse {
        guard let accessRecord = accessTokens[access], let refreshRecord = refreshTokens[refresh] else {
            return .oauthError("server_error", "token bookkeeping failed", status: 500)
        }
        var body: [String: any Sendable] = [
            "access_token": access,
            "expires_in": max(0, Int(accessRecord.expiresAt.timeIntervalSince(now))),
            "refresh_token": refresh,
            "refresh_token_expires_in": max(0, Int(refreshRecord.expiresAt.timeIntervalSince(now))),
            "token_type": "Bearer",
        ]
        if configuration.reportScopes || alwaysReportScopes,
           let authorization = authorizations[accessRecord.authorizationId] {
            body["scope"] = authorization.scopes.joined(separator: " ")
        }
        return .json(200, body, headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
    }

    // MARK: Lookups

    func client(_ id: String) -> SandboxConfiguration.Client? {
        configuration.clients.first { $0.clientId == id }
    }

    func user(_ id: String) -> SandboxConfiguration.User? {
        configuration.users.first { $0.id == id }
    }

    /// `login_hint` (an id or an email) wins, then the configured current user, then the first user.
    func approvingUser(loginHint: String?) -> SandboxConfiguration.User? {
        let users = configuration.users
        if let hint = loginHint, !hint.isEmpty {
            return users.first { $0.id == hint || $0.email.caseInsensitiveCompare(hint) == .orderedSame }
        }
        if let current = configuration.currentUserId {
            return users.first { $0.id == current }
        }
        return users.first
    }

    func isUsable(refreshToken token: String, now: Date) -> Bool {
        guard let record = refreshTokens[token], !record.revoked, record.rotatedAt == nil, now < record.expiresAt,
              let authorization = authorizations[record.authorizationId], !authorization.revoked
        else { return false }
        return true
    }

    /// The authorization behind a usable access token, or nil when it is unknown, expired or revoked.
    func authorization(forAccessToken token: String, now: Date) -> Authorization? {
        guard let record = accessTokens[token], !record.revoked, now < record.expiresAt,
              let authorization = authorizations[record.authorizationId], !authorization.revoked
        else { return nil }
        return authorization
    }
}

struct ClientRefusal: Error {
    var response: OutgoingResponse
}

func splitScopes(_ text: String?) -> [String] {
    (text ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
}
