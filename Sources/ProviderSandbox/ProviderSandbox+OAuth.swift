import Foundation

struct AuthorizationCode: Sendable {
    var clientId: String
    var redirectURI: String
    var scopes: [String]
    var userId: String
    var codeChallenge: String?
    /// `S256` or `plain`; meaningful only with a challenge.
    var codeChallengeMethod = "S256"
    var expiresAt: Date
    /// Whether redeeming the code yields a refresh token (Google without `access_type=offline`, Microsoft without
    /// `offline_access` and GitHub OAuth apps give none).
    var issuesRefreshToken = true
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
    /// Granted through the device flow (GitHub lets such grants refresh without the client secret).
    var viaDevice = false
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
    /// Set when rotation replaced this token and it stopped working (strict or grace rotation): when.
    var rotatedAt: Date?
    /// The pair that replaced this token most recently (also under lenient rotation, where it keeps working).
    var successor: (accessToken: String, refreshToken: String)?
    /// The access token issued in the same answer, so a rotation chain can say which pair a client kept.
    var accessToken: String?
}

let refreshTokenRefusal = "The refresh token provided is expired, revoked, malformed, or invalid."

/// Why a grant or a client was refused, in OAuth terms. Each shape words it its own way; `error` and `description`
/// are Webex's words, which the Webex shape sends as they are.
struct GrantRefusal: Error, Sendable {
    enum Reason: Sendable, Equatable {
        case invalidRequest
        case unsupportedGrantType
        case clientCredentialsMissing
        /// No client has this id.
        case unknownClient
        /// A known client, the wrong secret.
        case wrongClientSecret
        /// A secret sent by a method the provider does not accept (in the body, at a Basic-only provider).
        case clientAuthenticationMethodRefused
        /// The body names another client than the credentials.
        case clientMismatch
        /// The authorization code is unknown, another client's, spent, expired, or its redirect URI or PKCE
        /// verifier does not match.
        case badCode
        /// The refresh token is unknown, another client's, expired, revoked or rotated out.
        case badRefreshToken
        /// The device code is unknown, another client's or already redeemed.
        case badDeviceCode
        case deviceCodeExpired
        case accessDenied
        /// Polling too fast; `interval` is the new interval.
        case slowDown(interval: Int)
        case authorizationPending
    }

    var reason: Reason
    /// The RFC 6749/8628 error name.
    var error: String
    var description: String

    init(_ reason: Reason, _ error: String, _ description: String) {
        self.reason = reason
        self.error = error
        self.description = description
    }

    /// Whether the refusal is about the client rather than the grant.
    var isClientRefusal: Bool {
        switch reason {
        case .clientCredentialsMissing, .unknownClient, .wrongClientSecret, .clientAuthenticationMethodRefused,
            .clientMismatch:
            true
        default: false
        }
    }
}

/// What a successful grant handed out, for the shape to word.
struct IssuedTokens: Sendable {
    enum Grant: Sendable { case authorizationCode, refreshToken, deviceCode }
    var grant: Grant
    var accessToken: String
    /// nil when the grant gives no refresh token.
    var refreshToken: String?
    /// False when a refresh answered with the very refresh token it was given (no rotation).
    var refreshTokenIsNew: Bool
    var authorizationId: String
}

/// A fault injected on a token endpoint instead of its answer.
enum InjectedFault: Sendable {
    case tooManyRequests(retryAfter: Int)
    case serviceUnavailable
    case htmlGarbage
}

/// Why the authorization endpoint cannot redirect back: there is no safe place to send the error.
enum AuthorizeRefusal: Sendable {
    case unknownClient
    case unregisteredRedirectURI(SandboxConfiguration.Client)
}

/// How a token endpoint takes client credentials.
enum ClientAuthMethods: Sendable {
    /// HTTP Basic or `client_id` + `client_secret` in the body.
    case basicOrBody
    /// HTTP Basic only; a secret in the body is refused.
    case basicOnly
}

extension ProviderSandbox {
    static let codeLifetime: TimeInterval = 600

    // MARK: The authorization endpoint

    /// Checks the client, the redirect URI, the scopes and the PKCE challenge, approves at once as the chosen user
    /// and redirects with a code, or with an error when the redirect URI is safe to use.
    ///
    /// - Parameters:
    ///   - scopes: the requested scopes (each shape reads them from its own parameter).
    ///   - refuse: the answer when there is nowhere safe to redirect.
    ///   - issuesRefreshToken: whether the code's grant will include a refresh token, given the granted scopes.
    func authorizeCode(
        _ q: [String: String], scopes: [String], now: Date,
        refuse: (AuthorizeRefusal) -> OutgoingResponse,
        issuesRefreshToken: (SandboxConfiguration.Client, SandboxConfiguration.User, [String]) -> Bool = { _, _, _ in
            true
        }
    ) -> OutgoingResponse {
        let rules = self.rules
        guard let clientId = q["client_id"], let client = client(clientId) else {
            return refuse(.unknownClient)
        }
        // Without a registered redirect_uri there is nowhere safe to send errors: answer here.
        guard let redirectURI = q["redirect_uri"],
            redirectURIIsRegistered(redirectURI, for: client, matching: rules.redirectMatching)
        else {
            return refuse(.unregisteredRedirectURI(client))
        }
        let state = q["state"]
        func fail(_ error: String, _ description: String) -> OutgoingResponse {
            var items = [("error", error), ("error_description", description)]
            if let state { items.append(("state", state)) }
            return .redirect(appendQuery(items, to: redirectURI))
        }
        if rules.requiresResponseType {
            guard q["response_type"] == "code" else {
                return fail("unsupported_response_type", "response_type must be code")
            }
        }
        if rules.requiresScope {
            guard !scopes.isEmpty else { return fail("invalid_scope", "scope is required") }
        }
        if let unknown = scopes.first(where: { !client.scopes.contains($0) }) {
            return fail("invalid_scope", "The scope \(unknown) is not registered on the integration")
        }
        var challenge: String?
        var challengeMethod = "S256"
        if let codeChallenge = q["code_challenge"] {
            // RFC 7636 §4.3: a missing method means plain.
            let method = q["code_challenge_method"] ?? "plain"
            guard rules.pkceMethods.contains(method) else {
                return fail(
                    "invalid_request", "code_challenge_method must be \(rules.pkceMethods.joined(separator: " or "))")
            }
            guard (43...128).contains(codeChallenge.count) else {
                return fail("invalid_request", "code_challenge is malformed")
            }
            challenge = codeChallenge
            challengeMethod = method
        }
        guard let user = approvingUser(loginHint: q["login_hint"]) else {
            return fail("access_denied", "No such user")
        }
        if configuration.faults.denyConsent {
            return fail("access_denied", "The user denied the request")
        }
        let code = newAuthorizationCode(for: user)
        let granted = grantedScopes(scopes)
        codes[code] = AuthorizationCode(
            clientId: client.clientId, redirectURI: redirectURI, scopes: granted, userId: user.id,
            codeChallenge: challenge, codeChallengeMethod: challengeMethod,
            expiresAt: now.addingTimeInterval(Self.codeLifetime),
            issuesRefreshToken: rules.issuesRefreshTokens && issuesRefreshToken(client, user, granted))
        stats.codesIssued += 1
        var items = [("code", code)]
        if let state { items.append(("state", state)) }
        return .redirect(appendQuery(items, to: redirectURI))
    }

    /// The approved scopes minus the withheld ones.
    func grantedScopes(_ scopes: [String]) -> [String] {
        let withheld = configuration.withheldScopes
        return scopes.filter { scope in
            !withheld.contains { $0.hasSuffix("*") ? scope.hasPrefix($0.dropLast()) : scope == $0 }
        }
    }

    private func newAuthorizationCode(for user: SandboxConfiguration.User) -> String {
        guard configuration.shape == .webex else { return randomToken(length: 40) }
        return randomToken(length: 64) + "_\(configuration.cluster)_\(user.orgId)"
    }

    func redirectURIIsRegistered(
        _ uri: String, for client: SandboxConfiguration.Client, matching: ShapeRules.RedirectMatching
    ) -> Bool {
        if client.redirectURIs.contains(uri) { return true }
        guard matching == .loopbackAnyPort, let given = loopbackParts(uri) else { return false }
        return client.redirectURIs.contains { loopbackParts($0) == given }
    }

    // MARK: Faults

    /// Every Nth request to `endpoint` answers 429 or 503; HTML garbage mode answers every one with a web page.
    func injectedFault(at endpoint: String) -> InjectedFault? {
        let faults = configuration.faults
        let n = requests(to: endpoint)
        if let every = faults.tooManyRequestsEvery, every > 0, n % every == 0 {
            stats.tooManyRequestsAnswered += 1
            return .tooManyRequests(retryAfter: faults.retryAfterSeconds)
        }
        if let every = faults.serviceUnavailableEvery, every > 0, n % every == 0 {
            stats.serviceUnavailableAnswered += 1
            return .serviceUnavailable
        }
        if faults.htmlGarbage {
            stats.htmlGarbageAnswered += 1
            return .htmlGarbage
        }
        return nil
    }

    /// Words a fault; `json` gives the shape's error body for a status and a message.
    func answer(_ fault: InjectedFault, json: (Int, String) -> OutgoingResponse) -> OutgoingResponse {
        switch fault {
        case .tooManyRequests(let seconds):
            var response = json(429, "Too many requests. Retry after \(seconds) seconds.")
            response.headers.append(("Retry-After", String(seconds)))
            return response
        case .serviceUnavailable:
            return json(503, "Service is temporarily unavailable. Please retry later.")
        case .htmlGarbage:
            return .html(
                200,
                "<!DOCTYPE html><html><head><title>Sign in</title></head>"
                    + "<body><h1>Network login required</h1><p>Please sign in to continue.</p></body></html>")
        }
    }

    // MARK: Client authentication

    /// Client credentials from HTTP Basic or from the body (`client_id`, `client_secret`). A public client, or any
    /// client when `allowsIdOnly`, may send its `client_id` alone; a secret that is sent must be right.
    func authenticateClient(
        _ request: IncomingRequest, accepting methods: ClientAuthMethods = .basicOrBody, allowsIdOnly: Bool = false
    ) -> Result<SandboxConfiguration.Client, GrantRefusal> {
        let credentials: (id: String, secret: String?)
        if let basic = parseBasicAuthorization(request.headers["authorization"]) {
            credentials = basic
        } else if let id = request.form["client_id"] {
            if methods == .basicOnly, request.form["client_secret"] != nil {
                return .failure(
                    GrantRefusal(
                        .clientAuthenticationMethodRefused, "invalid_client",
                        "Client authentication must use HTTP Basic"))
            }
            credentials = (id, request.form["client_secret"])
        } else {
            return .failure(GrantRefusal(.clientCredentialsMissing, "invalid_client", "Client credentials are missing"))
        }
        guard let secret = credentials.secret else {
            guard let client = client(credentials.id), client.isPublic || allowsIdOnly else {
                return .failure(
                    GrantRefusal(.clientCredentialsMissing, "invalid_client", "Client credentials are missing"))
            }
            return .success(client)
        }
        guard let client = client(credentials.id) else {
            return .failure(GrantRefusal(.unknownClient, "invalid_client", "Client authentication failed"))
        }
        guard client.clientSecret == secret else {
            return .failure(GrantRefusal(.wrongClientSecret, "invalid_client", "Client authentication failed"))
        }
        if let bodyId = request.form["client_id"], bodyId != client.clientId {
            return .failure(GrantRefusal(.clientMismatch, "invalid_client", "client_id does not match the credentials"))
        }
        return .success(client)
    }

    // MARK: Grants

    /// The authorization-code grant.
    func redeemCode(
        _ form: [String: String], client: SandboxConfiguration.Client, now: Date
    ) -> Result<IssuedTokens, GrantRefusal> {
        func refuse(_ description: String) -> Result<IssuedTokens, GrantRefusal> {
            .failure(GrantRefusal(.badCode, "invalid_grant", description))
        }
        guard let code = form["code"], !code.isEmpty else {
            return .failure(GrantRefusal(.invalidRequest, "invalid_request", "code is required"))
        }
        guard var record = codes[code], record.clientId == client.clientId else {
            return refuse("The authorization code is invalid")
        }
        guard !record.used else {
            return refuse("The authorization code has already been used")
        }
        // A code found for this client is spent by any attempt, so a wrong verifier cannot be retried.
        record.used = true
        codes[code] = record
        guard now < record.expiresAt else {
            return refuse("The authorization code has expired")
        }
        if rules.requiresRedirectURIAtExchange || form["redirect_uri"] != nil {
            guard form["redirect_uri"] == record.redirectURI else {
                return refuse("redirect_uri does not match the one used to obtain the code")
            }
        }
        switch (record.codeChallenge, form["code_verifier"]) {
        case (nil, nil):
            break
        case (nil, .some):
            return refuse("code_verifier given but the authorization request had no code_challenge")
        case (.some, nil):
            return refuse("code_verifier is required")
        case (.some(let challenge), .some(let verifier)):
            let transformed = record.codeChallengeMethod == "plain" ? verifier : pkceChallenge(forVerifier: verifier)
            guard (43...128).contains(verifier.count), transformed == challenge else {
                return refuse("code_verifier does not match the code_challenge")
            }
        }
        stats.codesRedeemed += 1
        let authorization = newAuthorization(
            clientId: client.clientId, userId: record.userId, scopes: record.scopes, now: now)
        return .success(
            issueTokens(
                for: authorization, withRefreshToken: record.issuesRefreshToken, grant: .authorizationCode, now: now))
    }

    /// The refresh grant, with the configured rotation. Every presentation of a known refresh token is counted.
    func refreshGrant(
        _ form: [String: String], client: SandboxConfiguration.Client, now: Date
    ) -> Result<IssuedTokens, GrantRefusal> {
        let refused = GrantRefusal(.badRefreshToken, "invalid_grant", refreshTokenRefusal)
        guard let token = form["refresh_token"], !token.isEmpty else {
            return .failure(GrantRefusal(.invalidRequest, "invalid_request", "refresh_token is required"))
        }
        stats.refreshGrants += 1
        guard var record = refreshTokens[token] else {
            return .failure(refused)
        }
        refreshTokenUses[token, default: 0] += 1
        guard let authorization = authorizations[record.authorizationId], authorization.clientId == client.clientId,
            !authorization.revoked, !record.revoked, now < record.expiresAt
        else {
            if record.rotatedAt != nil { stats.rotatedRefreshTokenReuses += 1 }
            return .failure(refused)
        }
        if let rotatedAt = record.rotatedAt, let successor = record.successor {
            stats.rotatedRefreshTokenReuses += 1
            guard case .grace(let seconds) = configuration.rotation,
                now < rotatedAt.addingTimeInterval(TimeInterval(seconds)),
                isUsable(refreshToken: successor.refreshToken, now: now)
            else {
                return .failure(refused)
            }
            stats.successfulRefreshes += 1
            return .success(
                IssuedTokens(
                    grant: .refreshToken, accessToken: successor.accessToken, refreshToken: successor.refreshToken,
                    refreshTokenIsNew: true, authorizationId: authorization.id))
        }
        // Lenient rotation: a replaced token still works; presenting it again is still a reuse worth counting.
        if record.successor != nil { stats.rotatedRefreshTokenReuses += 1 }

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
        case .on, .grace, .lenient:
            newRefresh = newRefreshToken(for: authorization, now: now)
            refreshTokens[newRefresh]?.accessToken = access
            if configuration.keepsRefreshTokenExpiry { refreshTokens[newRefresh]?.expiresAt = record.expiresAt }
            if configuration.rotation != .lenient {
                record.rotatedAt = now
                if rules.rotationRevokesPreviousAccessToken, let previous = record.accessToken {
                    accessTokens[previous]?.revoked = true
                }
            }
            record.successor = (access, newRefresh)
            refreshTokens[token] = record
        }
        stats.successfulRefreshes += 1
        stats.tokenPairsIssued += 1
        return .success(
            IssuedTokens(
                grant: .refreshToken, accessToken: access, refreshToken: newRefresh,
                refreshTokenIsNew: newRefresh != token,
                authorizationId: authorization.id))
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

    /// A new access token, with a refresh token unless the grant gives none.
    func issueTokens(
        for authorization: Authorization, withRefreshToken: Bool, grant: IssuedTokens.Grant, now: Date
    ) -> IssuedTokens {
        guard withRefreshToken else {
            stats.tokenPairsIssued += 1
            return IssuedTokens(
                grant: grant, accessToken: newAccessToken(for: authorization, now: now), refreshToken: nil,
                refreshTokenIsNew: false, authorizationId: authorization.id)
        }
        let pair = mintPair(for: authorization, now: now)
        return IssuedTokens(
            grant: grant, accessToken: pair.accessToken, refreshToken: pair.refreshToken, refreshTokenIsNew: true,
            authorizationId: authorization.id)
    }

    private func newAccessToken(for authorization: Authorization, now: Date) -> String {
        let token = newToken(prefix: rules.accessTokenPrefix, for: authorization)
        let expiresAt: Date
        if rules.accessTokensExpire {
            let jitter = configuration.accessTokenLifetimeJitter
            // Varies from token to token, but the same in every run: tests can rely on the sequence.
            let extra = jitter > 0 ? (accessTokens.count &* 7919 + 1237) % (jitter + 1) : 0
            expiresAt = now.addingTimeInterval(TimeInterval(configuration.accessTokenLifetime + extra))
        } else {
            expiresAt = .distantFuture
        }
        accessTokens[token] = AccessTokenRecord(authorizationId: authorization.id, expiresAt: expiresAt)
        return token
    }

    private func newRefreshToken(for authorization: Authorization, now: Date) -> String {
        let token = newToken(prefix: rules.refreshTokenPrefix, for: authorization)
        refreshTokens[token] = RefreshTokenRecord(
            authorizationId: authorization.id,
            expiresAt: now.addingTimeInterval(TimeInterval(configuration.refreshTokenLifetime)))
        return token
    }

    /// `<prefix><random>` for shapes with token prefixes; `<random>_<cluster>_<orgId>`, the shape of Webex tokens,
    /// otherwise.
    private func newToken(prefix: String?, for authorization: Authorization) -> String {
        if let prefix { return prefix + randomToken(length: 48) }
        let orgId = user(authorization.userId)?.orgId ?? "unknown-org"
        return randomToken(length: 64) + "_\(configuration.cluster)_\(orgId)"
    }

    /// Seconds until the access token expires; nil when it never does.
    func accessTokenExpiresIn(_ token: String, now: Date) -> Int? {
        guard let record = accessTokens[token], record.expiresAt != .distantFuture else { return nil }
        return max(0, Int(record.expiresAt.timeIntervalSince(now)))
    }

    func refreshTokenExpiresIn(_ token: String, now: Date) -> Int? {
        refreshTokens[token].map { max(0, Int($0.expiresAt.timeIntervalSince(now))) }
    }

    func scopes(of issued: IssuedTokens) -> [String] {
        authorizations[issued.authorizationId]?.scopes ?? []
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
        guard case .usable(let authorization) = accessTokenStatus(token, now: now) else { return nil }
        return authorization
    }

    enum AccessTokenStatus {
        case usable(Authorization)
        case unknown
        case expired
        case revoked
    }

    /// What a resource server would say about an access token (Slack tells expired from revoked).
    func accessTokenStatus(_ token: String, now: Date) -> AccessTokenStatus {
        guard let record = accessTokens[token], let authorization = authorizations[record.authorizationId] else {
            return .unknown
        }
        if record.revoked || authorization.revoked { return .revoked }
        guard now < record.expiresAt else { return .expired }
        return .usable(authorization)
    }

    /// The authorization an access or refresh token belongs to, whatever its state.
    func authorizationId(ofToken token: String) -> String? {
        accessTokens[token]?.authorizationId ?? refreshTokens[token]?.authorizationId
    }
}

/// Scheme, host, path and query of a loopback `http` URI (port left out), or nil for any other URI.
func loopbackParts(_ uri: String) -> [String]? {
    guard let components = URLComponents(string: uri), components.scheme == "http",
        let host = components.host, host == "127.0.0.1" || host == "localhost"
    else { return nil }
    return [host, components.percentEncodedPath, components.percentEncodedQuery ?? ""]
}

func splitScopes(_ text: String?) -> [String] {
    (text ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
}
