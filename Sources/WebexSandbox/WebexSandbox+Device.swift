import Foundation

struct DeviceAuthorization: Sendable {
    var deviceCode: String
    var userCode: String
    var clientId: String
    var scopes: [String]
    var expiresAt: Date
    var interval: Int
    var lastPolledAt: Date?
    /// Real time of the last poll: a client that really waited is not too fast even if the sandbox clock stood still.
    var lastPolledRealTime: ContinuousClock.Instant?
    var approvedUserId: String?
    var denied = false
    var redeemed = false
}

extension WebexSandbox {
    static let deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

    // MARK: POST /v1/device/authorize

    func deviceAuthorize(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let malformed = "The request could not be understood by the server due to malformed syntax."
        guard let clientId = request.form["client_id"], let client = client(clientId) else {
            return .restError(400, malformed, description: "Client Id is invalid")
        }
        let scopes = splitScopes(request.form["scope"])
        guard !scopes.isEmpty, scopes.allSatisfy(client.scopes.contains) else {
            return .restError(400, malformed, description: "Scope is invalid")
        }
        var userCode = randomDigits(6)
        while deviceCodesByUserCode[userCode] != nil { userCode = randomDigits(6) }
        let device = DeviceAuthorization(
            deviceCode: UUID().uuidString.lowercased(), userCode: userCode, clientId: clientId, scopes: scopes,
            expiresAt: now.addingTimeInterval(TimeInterval(configuration.deviceCodeLifetime)),
            interval: configuration.devicePollInterval)
        devices[device.deviceCode] = device
        deviceCodesByUserCode[userCode] = device.deviceCode
        let verification = (baseURL?.absoluteString ?? "http://127.0.0.1/v1") + "/device/verify"
        // Webex embeds a hash of the user code, not the code itself.
        let hashed = hex(sha256(Array(userCode.utf8)))
        return .json(200, [
            "device_code": device.deviceCode,
            "expires_in": configuration.deviceCodeLifetime,
            "user_code": userCode,
            "verification_uri": verification,
            "verification_uri_complete": appendQuery([("userCode", hashed)], to: verification),
            "interval": device.interval,
        ])
    }

    // MARK: GET /v1/device/verify — the page the user opens; here it approves at once.

    func deviceVerify(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard let given = request.query["userCode"] ?? request.query["user_code"],
              let deviceCode = deviceCode(forUserCode: given)
        else {
            return .html(404, "<html><body><h1>Unknown code</h1></body></html>")
        }
        guard let user = approvingUser(loginHint: request.query["login_hint"]) else {
            return .html(404, "<html><body><h1>Unknown user</h1></body></html>")
        }
        if configuration.faults.denyConsent {
            devices[deviceCode]?.denied = true
            return .html(200, "<html><body><h1>Access denied</h1></body></html>")
        }
        devices[deviceCode]?.approvedUserId = user.id
        return .html(200, "<html><body><h1>Device approved</h1><p>You can close this page.</p></body></html>")
    }

    /// Accepts the six digits or the hex SHA-256 of them (the form in `verification_uri_complete`).
    private func deviceCode(forUserCode given: String) -> String? {
        if let code = deviceCodesByUserCode[given] { return code }
        return deviceCodesByUserCode.first { hex(sha256(Array($0.key.utf8))) == given.lowercased() }?.value
    }

    // MARK: POST /v1/device/token

    func deviceToken(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let client: SandboxConfiguration.Client
        switch authenticateClient(request) {
        case .success(let authenticated): client = authenticated
        case .failure(let refusal): return refusal.response
        }
        guard request.form["grant_type"] == Self.deviceGrantType else {
            return .oauthError("unsupported_grant_type", "grant_type must be \(Self.deviceGrantType)")
        }
        guard let deviceCode = request.form["device_code"], var device = devices[deviceCode],
              device.clientId == client.clientId
        else {
            return .oauthError("invalid_grant", "The device code is invalid")
        }
        guard !device.redeemed else {
            return .oauthError("invalid_grant", "The device code has already been used")
        }
        guard now < device.expiresAt else {
            return .oauthError("expired_token", "The device code has expired")
        }
        if device.denied {
            return .oauthError("access_denied", "The user denied the request")
        }
        defer { devices[deviceCode] = device }
        let realNow = ContinuousClock.now
        defer {
            device.lastPolledAt = now
            device.lastPolledRealTime = realNow
        }
        // Too fast only if neither the sandbox clock nor real time has moved a whole interval since the last poll.
        // With a stepped clock only the sandbox clock counts: a loaded machine that takes seconds between two
        // immediate polls must not make them look patient.
        if let last = device.lastPolledAt, let lastReal = device.lastPolledRealTime,
           now.timeIntervalSince(last) < TimeInterval(device.interval),
           clockIsStepped || realNow - lastReal < .seconds(device.interval) {
            // RFC 8628 §3.5: slow_down adds 5 seconds to the interval for all later polls.
            device.interval += 5
            return .oauthError("slow_down", "Polling too fast; wait \(device.interval) seconds between requests")
        }
        guard let userId = device.approvedUserId else {
            // Webex answers a pending device grant with 428.
            return .oauthError("authorization_pending", "The user has not yet approved the request", status: 428)
        }
        device.redeemed = true
        let authorization = newAuthorization(clientId: client.clientId, userId: userId, scopes: device.scopes, now: now)
        let pair = mintPair(for: authorization, now: now)
        // Webex's device token response carries `scope`.
        return tokenResponse(access: pair.accessToken, refresh: pair.refreshToken, now: now, alwaysReportScopes: true)
    }
}

// MARK: Test hooks

extension WebexSandbox {
    /// Issues a token pair directly, as if `userId` had authorized `clientId` (default: the client's scopes).
    @discardableResult
    public func issueTokenPair(
        clientId: String, userId: String, scopes: [String]? = nil
    ) throws -> (accessToken: String, refreshToken: String) {
        guard let client = client(clientId) else { throw SandboxError.unknownClient(clientId) }
        guard user(userId) != nil else { throw SandboxError.unknownUser(userId) }
        let now = self.now
        let authorization = newAuthorization(
            clientId: clientId, userId: userId, scopes: scopes ?? client.scopes, now: now)
        return mintPair(for: authorization, now: now)
    }

    /// Approves a pending device authorization as `userId` (default: the current user). False if the code is unknown.
    @discardableResult
    public func approveDevice(userCode: String, userId: String? = nil) -> Bool {
        guard let deviceCode = deviceCodesByUserCode[userCode],
              let user = userId.flatMap(user) ?? approvingUser(loginHint: nil)
        else { return false }
        devices[deviceCode]?.approvedUserId = user.id
        return true
    }

    /// Makes a refresh token unusable (Webex then answers `invalid_grant`).
    public func revokeRefreshToken(_ token: String) throws {
        guard refreshTokens[token] != nil else { throw SandboxError.unknownToken }
        refreshTokens[token]?.revoked = true
    }

    /// Expires a refresh token now, by the sandbox clock.
    public func expireRefreshToken(_ token: String) throws {
        guard refreshTokens[token] != nil else { throw SandboxError.unknownToken }
        refreshTokens[token]?.expiresAt = now
    }

    /// Expires an access token now, by the sandbox clock.
    public func expireAccessToken(_ token: String) throws {
        guard accessTokens[token] != nil else { throw SandboxError.unknownToken }
        accessTokens[token]?.expiresAt = now
    }

    /// Revokes every authorization `userId` gave `clientId`, as the user would on their Webex profile page.
    public func revokeAuthorizations(clientId: String, userId: String) {
        revokeAuthorizations { $0.clientId == clientId && $0.userId == userId }
    }

    /// Whether a refresh grant with this token would succeed now.
    public func isRefreshTokenValid(_ token: String) -> Bool {
        isUsable(refreshToken: token, now: now)
    }

    /// Whether this access token would be accepted by the REST endpoints now.
    public func isAccessTokenValid(_ token: String) -> Bool {
        authorization(forAccessToken: token, now: now) != nil
    }

    /// When a refresh token expires by the sandbox clock, nil if unknown.
    public func refreshTokenExpiry(_ token: String) -> Date? {
        refreshTokens[token]?.expiresAt
    }

    /// When an access token expires by the sandbox clock, nil if unknown.
    public func accessTokenExpiry(_ token: String) -> Date? {
        accessTokens[token]?.expiresAt
    }
}
