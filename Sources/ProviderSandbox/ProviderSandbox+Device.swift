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
    /// Whether the grant will include a refresh token (Microsoft: only with `offline_access`).
    var issuesRefreshToken = true
}

extension ProviderSandbox {
    static let deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

    /// Records a new device authorization for `client` (scopes already checked) under a fresh user code.
    func startDeviceAuthorization(
        client: SandboxConfiguration.Client, scopes: [String], now: Date, issuesRefreshToken: Bool = true,
        userCode makeUserCode: () -> String
    ) -> DeviceAuthorization {
        var userCode = makeUserCode()
        while deviceCodesByUserCode[userCode] != nil { userCode = makeUserCode() }
        let deviceCode = configuration.shape == .webex ? UUID().uuidString.lowercased() : randomToken(length: 40)
        var device = DeviceAuthorization(
            deviceCode: deviceCode, userCode: userCode, clientId: client.clientId,
            scopes: grantedScopesIfShaped(scopes),
            expiresAt: now.addingTimeInterval(TimeInterval(configuration.deviceCodeLifetime)),
            interval: configuration.devicePollInterval)
        device.issuesRefreshToken = rules.issuesRefreshTokens && issuesRefreshToken
        devices[device.deviceCode] = device
        deviceCodesByUserCode[userCode] = device.deviceCode
        return device
    }

    /// Webex's device grant keeps withheld scopes (its device answers report what was asked); the other shapes
    /// withhold them as their code grants do.
    private func grantedScopesIfShaped(_ scopes: [String]) -> [String] {
        configuration.shape == .webex ? scopes : grantedScopes(scopes)
    }

    /// `http://127.0.0.1:PORT/sandbox/device/verify`: where a test (or a person) approves a device code of a
    /// non-Webex shape by opening `?user_code=CODE`.
    var sandboxVerificationURI: String { origin + "/sandbox/device/verify" }

    // MARK: GET /v1/device/verify, /sandbox/device/verify — the page the user opens; here it approves at once.

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

    /// Accepts the user code or the hex SHA-256 of it (the form in Webex's `verification_uri_complete`).
    private func deviceCode(forUserCode given: String) -> String? {
        if let code = deviceCodesByUserCode[given] { return code }
        return deviceCodesByUserCode.first { hex(sha256(Array($0.key.utf8))) == given.lowercased() }?.value
    }

    // MARK: The device-code grant (RFC 8628 §3.4–3.5)

    /// Polls a device authorization for an authenticated client: pending, too fast, denied, expired, or tokens.
    func pollDevice(
        _ form: [String: String], client: SandboxConfiguration.Client, now: Date
    ) -> Result<IssuedTokens, GrantRefusal> {
        guard let deviceCode = form["device_code"], var device = devices[deviceCode],
            device.clientId == client.clientId
        else {
            return .failure(GrantRefusal(.badDeviceCode, "invalid_grant", "The device code is invalid"))
        }
        guard !device.redeemed else {
            return .failure(GrantRefusal(.badDeviceCode, "invalid_grant", "The device code has already been used"))
        }
        guard now < device.expiresAt else {
            return .failure(GrantRefusal(.deviceCodeExpired, "expired_token", "The device code has expired"))
        }
        if device.denied {
            return .failure(GrantRefusal(.accessDenied, "access_denied", "The user denied the request"))
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
            clockIsStepped || realNow - lastReal < .seconds(device.interval)
        {
            // RFC 8628 §3.5: slow_down adds 5 seconds to the interval for all later polls.
            device.interval += 5
            return .failure(
                GrantRefusal(
                    .slowDown(interval: device.interval), "slow_down",
                    "Polling too fast; wait \(device.interval) seconds between requests"))
        }
        guard let userId = device.approvedUserId else {
            return .failure(
                GrantRefusal(
                    .authorizationPending, "authorization_pending",
                    "The user has not yet approved the request"))
        }
        device.redeemed = true
        var authorization = newAuthorization(clientId: client.clientId, userId: userId, scopes: device.scopes, now: now)
        authorization.viaDevice = true
        authorizations[authorization.id] = authorization
        return .success(
            issueTokens(
                for: authorization, withRefreshToken: device.issuesRefreshToken, grant: .deviceCode, now: now))
    }
}

// MARK: Test hooks

extension ProviderSandbox {
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
