import Foundation

/// Who a token belongs to, from the provider's identity endpoint (Webex `people/me`).
public struct Identity: Sendable, Equatable {
    public var id: String
    /// The first of Webex's `emails`.
    public var email: String?
    public var displayName: String?
    public var orgId: String?
    /// Webex: `person`, `bot` or `appuser`.
    public var type: String?

    public init(id: String, email: String? = nil, displayName: String? = nil, orgId: String? = nil, type: String? = nil)
    {
        self.id = id
        self.email = email
        self.displayName = displayName
        self.orgId = orgId
        self.type = type
    }
}

/// A started device authorization grant (RFC 8628): show `userCode` and `verificationURI`, then poll.
public struct DeviceAuthorization: Sendable, Equatable {
    /// Secret: whoever holds it can collect the tokens once the user approves.
    public var deviceCode: String
    public var userCode: String
    public var verificationURI: String
    public var verificationURIComplete: String?
    /// Seconds between polls (RFC 8628 default 5 when the provider does not say).
    public var interval: Int
    /// Seconds the device code stays valid, when the provider says.
    public var expiresIn: Int?

    public init(
        deviceCode: String, userCode: String, verificationURI: String, verificationURIComplete: String? = nil,
        interval: Int = 5, expiresIn: Int? = nil
    ) {
        self.deviceCode = deviceCode
        self.userCode = userCode
        self.verificationURI = verificationURI
        self.verificationURIComplete = verificationURIComplete
        self.interval = interval
        self.expiresIn = expiresIn
    }
}

/// The OAuth client for one integration at one provider: builds the authorization URL and performs the
/// code exchange, refresh, identity, revoke and device grant requests through an injected transport.
///
/// It only moves plain `String` tokens; storing them (and sealing them) is the caller's job. Each call makes
/// exactly one HTTP request (device polling excepted) and never retries: retrying a refresh is a decision the
/// caller takes with ``RetryPolicy``, because with a rotating provider a blind retry can burn a token.
public struct OAuthClient: Sendable {
    public let provider: Provider
    public let credentials: ClientCredentials
    public let transport: any HTTPTransport

    public init(provider: Provider, credentials: ClientCredentials, transport: any HTTPTransport) {
        self.provider = provider
        self.credentials = credentials
        self.transport = transport
    }

    static let formContentType = "application/x-www-form-urlencoded"
    static let deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

    /// The URL of one of the provider's endpoints for this integration.
    func url(_ endpoint: Provider.Endpoint) -> URL {
        provider.url(
            endpoint, base: credentials.apiBase,
            values: Provider.endpointValues(tenant: credentials.tenant, clientId: credentials.clientId))
    }

    /// A request with the headers every provider gets: JSON answers asked for (GitHub answers with a form otherwise).
    func request(_ method: String, _ endpoint: Provider.Endpoint) -> HTTPRequest {
        var request = HTTPRequest(method: method, url: url(endpoint))
        request.headers["Accept"] = "application/json"
        return request
    }

    func scopeText(_ scopes: [String]?) -> String {
        (scopes ?? credentials.scopes).joined(separator: provider.scopeSeparator)
    }

    // MARK: Authorization code flow

    /// The URL to open in the browser. Scopes default to the integration's and are joined with the provider's
    /// separator, a space as `%20` (Webex documents that form; a `+` would be read literally by some servers).
    /// The provider's extra parameters (Google's `access_type=offline`) come after the standard ones, sorted.
    public func authorizationURL(state: String, pkce: PKCE, scopes: [String]? = nil) -> URL {
        var fields = [
            ("client_id", credentials.clientId),
            ("response_type", "code"),
            ("redirect_uri", credentials.redirectURI),
        ]
        let scope = scopeText(scopes)
        if !scope.isEmpty { fields.append((provider.scopeParameter, scope)) }
        fields.append(("state", state))
        if provider.usesPKCE {
            fields += [("code_challenge", pkce.challenge), ("code_challenge_method", PKCE.method)]
        }
        fields += provider.authorizeParameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let base = url(provider.endpoints.authorize)
        let separator = base.query == nil ? "?" : "&"
        // The query is fully percent-encoded, so the string is a valid URL whenever the base is.
        return URL(string: base.absoluteString + separator + FormEncoding.encode(fields))!
    }

    /// Exchanges an authorization code (single use) for a token pair.
    public func exchangeCode(_ code: String, pkce: PKCE) async throws -> TokenResponse {
        var fields = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", credentials.redirectURI),
        ]
        if provider.usesPKCE { fields.append(("code_verifier", pkce.verifier)) }
        return try await tokenRequest(fields)
    }

    /// Uses a refresh token once. With a rotating provider the old refresh token may be dead afterwards, so
    /// the caller must store the result durably before doing anything else.
    ///
    /// A provider's own word for a dead refresh token (GitHub `bad_refresh_token`, Slack `invalid_refresh_token`)
    /// is reported as RFC 6749's `invalid_grant`, with the provider's code kept in the description, so that the
    /// vault marks the account for re-authorization whichever provider said it.
    public func refresh(refreshToken: String) async throws -> TokenResponse {
        do {
            return try await tokenRequest([("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
        } catch OAuthError.oauth(let code, let description, let status, let trackingId)
            where code != "invalid_grant" && provider.refreshRefusalCodes.contains(code)
        {
            throw OAuthError.oauth(
                code: "invalid_grant", description: "\(code)" + (description.map { ": \($0)" } ?? ""),
                status: status, trackingId: trackingId)
        }
    }

    func tokenRequest(
        _ fields: [(String, String)], endpoint: Provider.Endpoint? = nil,
        clientAuth: Provider.ClientAuthStyle? = nil
    ) async throws -> TokenResponse {
        var request = request("POST", endpoint ?? provider.endpoints.token)
        request.headers["Content-Type"] = Self.formContentType
        var form = fields
        addClientAuth(&request, form: &form, style: clientAuth ?? provider.tokenClientAuth)
        request.body = Data(FormEncoding.encode(form).utf8)
        let response = try await transport.send(request)
        do {
            return try tokenResponse(try checked(response))
        } catch OAuthError.api(status: 401, _, let trackingId) {
            // At the token endpoint a 401 is the client's credentials refused (RFC 6749 §5.2, invalid_client), not
            // an access token. One with a challenge reaches us without its body (see the transport), so say it here.
            throw OAuthError.oauth(code: "invalid_client", description: nil, status: 401, trackingId: trackingId)
        }
    }

    /// The token answer, from the nested object where the provider keeps the user's token (Slack's
    /// `authed_user` at code exchange; its refresh answers are flat), with the provider's assumed lifetime when
    /// it sends none.
    func tokenResponse(_ object: [String: JSONValue]) throws -> TokenResponse {
        var o = object
        if let key = provider.nestedTokenKey, let nested = object[key]?.objectValue, nested["access_token"] != nil {
            o = nested
        }
        if o["expires_in"] == nil || o["expires_in"] == .null, let assumed = provider.assumedAccessLifetime {
            o["expires_in"] = .int(Int64(assumed))
        }
        return try TokenResponse.parse(object: o)
    }

    /// Client authentication: in the body (Webex's token endpoint) or HTTP Basic, where RFC 6749 §2.3.1 says to
    /// form-encode id and secret before base64 (no-op for Webex's hex ids). `client_id` is sent in the body
    /// either way, since RFC 8628 and Webex's device sample both include it.
    /// A public client (empty secret) sends only its id.
    func addClientAuth(_ request: inout HTTPRequest, form: inout [(String, String)], style: Provider.ClientAuthStyle) {
        form.insert(
            ("client_id", credentials.clientId), at: form.firstIndex { $0.0 == "grant_type" }.map { $0 + 1 } ?? 0)
        guard !credentials.clientSecret.isEmpty else { return }
        switch style {
        case .body:
            form.insert(("client_secret", credentials.clientSecret), at: form.firstIndex { $0.0 == "client_id" }! + 1)
        case .basic:
            let pair =
                FormEncoding.percentEncode(credentials.clientId) + ":"
                + FormEncoding.percentEncode(credentials.clientSecret)
            request.headers["Authorization"] = "Basic " + Data(pair.utf8).base64EncodedString()
        }
    }

    // MARK: Identity and revoke

    /// Who the token belongs to, from the provider's identity endpoint read through its field mapping
    /// (Webex `people/me`, OIDC `userinfo`, GitHub `/user`, Slack `auth.test`). A refusal of the token itself is
    /// reported as HTTP 401 whatever status the provider used (Slack answers 200 with `ok: false`).
    public func identity(accessToken: String) async throws -> Identity {
        guard let endpoint = provider.endpoints.identity, let fields = provider.identity else {
            throw OAuthError.unsupported("\(provider.displayName) has no identity endpoint configured")
        }
        var request = request(fields.method, endpoint)
        request.headers["Authorization"] = "Bearer \(accessToken)"
        let o: [String: JSONValue]
        do {
            o = try checked(try await transport.send(request))
        } catch OAuthError.oauth(let code, _, _, let trackingId) where provider.invalidTokenCodes.contains(code) {
            throw OAuthError.api(status: 401, message: code, trackingId: trackingId)
        }
        func first(_ keys: [String]) -> String? {
            for key in keys {
                switch o[key] {
                case .string(let s)? where !s.isEmpty: return s
                case .int(let i)?: return String(i)
                case .array(let items)?: if let s = items.first?.stringValue, !s.isEmpty { return s }
                default: continue
                }
            }
            return nil
        }
        guard let id = first(fields.id) else {
            throw OAuthError.invalidResponse(
                "the identity answer has no \(fields.id.map { "\"\($0)\"" }.joined(separator: " or "))")
        }
        // Every field ends up on a terminal (`whoami`, `list`, `authorize`): no control characters, clipped.
        let shown = { (s: String?) in ProviderText.displayable(s) }
        return Identity(
            id: ProviderText.displayable(id), email: shown(first(fields.email)), displayName: shown(first(fields.name)),
            orgId: shown(first(fields.org)), type: shown(first(fields.type)))
    }

    /// Revokes at the provider, in the provider's way.
    ///
    /// Webex: `DELETE {base}/authorizations?clientId=…` with the access token as Bearer; this removes the
    /// integration's grant for the token's user, which needs `identity:tokens_write`. RFC 7009: revokes the
    /// refresh token when given (which ends the whole grant), else the access token. GitHub: `DELETE
    /// /applications/{client_id}/token` with the client's Basic credentials. Slack: `auth.revoke` with the token.
    /// - Throws: ``OAuthError/unsupported(_:)`` when the provider has no revocation endpoint.
    public func revoke(accessToken: String, refreshToken: String? = nil) async throws {
        var request: HTTPRequest
        guard let endpoint = provider.endpoints.revoke else {
            if case .none(let hint) = provider.revocation { throw OAuthError.unsupported(hint) }
            throw OAuthError.unsupported(
                "\(provider.displayName) has no revocation endpoint; revoke the grant in the provider's account settings"
            )
        }
        switch provider.revocation {
        case .none(let hint):
            throw OAuthError.unsupported(hint)
        case .webexAuthorizations:
            let base = url(endpoint)
            request = HTTPRequest(
                method: "DELETE",
                url: URL(string: base.absoluteString + "?" + FormEncoding.encode([("clientId", credentials.clientId)]))!
            )
            request.headers["Accept"] = "application/json"
            request.headers["Authorization"] = "Bearer \(accessToken)"
        case .rfc7009:
            request = self.request("POST", endpoint)
            request.headers["Content-Type"] = Self.formContentType
            var form: [(String, String)] =
                refreshToken.map { [("token", $0), ("token_type_hint", "refresh_token")] }
                ?? [("token", accessToken), ("token_type_hint", "access_token")]
            addClientAuth(&request, form: &form, style: provider.tokenClientAuth)
            request.body = Data(FormEncoding.encode(form).utf8)
        case .githubToken:
            guard !credentials.clientSecret.isEmpty else {
                throw OAuthError.unsupported(
                    "GitHub's revocation API needs the client secret, and this is a public client")
            }
            request = self.request("DELETE", endpoint)
            request.headers["Content-Type"] = "application/json"
            let pair = credentials.clientId + ":" + credentials.clientSecret
            request.headers["Authorization"] = "Basic " + Data(pair.utf8).base64EncodedString()
            request.body = try JSONSerialization.data(withJSONObject: ["access_token": accessToken])
        case .bearerPost:
            request = self.request("POST", endpoint)
            request.headers["Authorization"] = "Bearer \(accessToken)"
        }
        let response = try await transport.send(request)
        // 204 No Content (Webex, GitHub) or 200 (RFC 7009, Slack with `ok`); a body carries nothing we need
        // beyond a Slack-style refusal.
        if (200..<300).contains(response.status), response.body.isEmpty || provider.errorShape == .status { return }
        _ = try checked(response)
    }

    // MARK: Device grant

    /// Starts Webex's device grant: returns the code to show the user.
    public func startDeviceAuthorization(scopes: [String]? = nil) async throws -> DeviceAuthorization {
        guard let endpoint = provider.endpoints.deviceAuthorize else {
            throw OAuthError.unsupported(
                "\(provider.displayName) does not support the device grant; authorize in a browser instead")
        }
        var request = request("POST", endpoint)
        request.headers["Content-Type"] = Self.formContentType
        var form = [("client_id", credentials.clientId)]
        let scope = scopeText(scopes)
        if !scope.isEmpty { form.append(("scope", scope)) }
        request.body = Data(FormEncoding.encode(form).utf8)
        let o = try checked(try await transport.send(request))
        func required(_ key: String) throws -> String {
            guard let v = o[key]?.stringValue, !v.isEmpty else {
                throw OAuthError.invalidResponse("the device authorization answer has no \"\(key)\"")
            }
            return v
        }
        func seconds(_ key: String) throws -> Int? {
            guard let raw = o[key], raw != .null else { return nil }
            return try TokenResponse.lifetime(raw, field: key)
        }
        let userCode = try required("user_code")
        // The user code is shown to a person and typed back: refuse control characters rather than change it.
        guard ProviderText.displayable(userCode, limit: 100) == userCode else {
            throw OAuthError.invalidResponse(
                "the device authorization answer's \"user_code\" has control characters or is too long")
        }
        // Google spells it `verification_url` (its device flow predates RFC 8628's name).
        guard
            let verificationURI = [o["verification_uri"], o["verification_url"]].lazy.compactMap({ $0?.stringValue })
                .first(where: { !$0.isEmpty })
        else { throw OAuthError.invalidResponse("the device authorization answer has no \"verification_uri\"") }
        try Self.checkVerificationURI(verificationURI, field: "verification_uri")
        let complete = o["verification_uri_complete"]?.stringValue
        if let complete { try Self.checkVerificationURI(complete, field: "verification_uri_complete") }
        return DeviceAuthorization(
            deviceCode: try required("device_code"), userCode: userCode,
            verificationURI: verificationURI, verificationURIComplete: complete,
            interval: try seconds("interval") ?? 5, expiresIn: try seconds("expires_in"))
    }

    /// The user opens the verification URI and signs in there: it must be `https`, or plain `http` on loopback
    /// (a local sandbox). A provider that sends `http://`, `javascript:` or `file:` is refused. The value is not
    /// quoted in the error: `verification_uri_complete` carries the user code.
    static func checkVerificationURI(_ text: String, field: String) throws {
        let refused = OAuthError.invalidResponse(
            "the device authorization answer's \"\(field)\" is not an https URL; the provider or its API base URL is wrong"
        )
        guard ProviderText.displayable(text, limit: 2048) == text, let url = URL(string: text),
            let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased(), !host.isEmpty
        else { throw refused }
        switch scheme {
        case "https": return
        case "http" where ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host): return
        default: throw refused
        }
    }

    /// How long device polling goes on when the provider does not say how long the device code lives (RFC 8628
    /// leaves `expires_in` required, but a provider that omits it must not make tokenvault poll forever).
    public static let defaultDeviceCodeLifetime = 15 * 60
    /// The longest device polling goes on whatever the provider says (Webex's codes live minutes).
    public static let maxDeviceCodeLifetime = 60 * 60

    /// Polls until the user approves, declines or the code expires (RFC 8628 §3.5).
    ///
    /// `authorization_pending` waits another interval; `slow_down` adds 5 s to the interval for the rest of the
    /// run; `expired_token`, or passing `expiresIn` (``defaultDeviceCodeLifetime`` when the provider gave none,
    /// at most ``maxDeviceCodeLifetime``), throws ``OAuthError/deviceCodeExpired``; `access_denied`
    /// and every other error are thrown. Rate limits wait at least Retry-After; up to 5 consecutive
    /// network or 5xx failures are waited out, since the user may be approving at that very moment.
    /// - Parameters:
    ///   - now: the clock, injected so tests step time instead of sleeping.
    ///   - sleep: waits the given seconds; tests record the intervals.
    public func pollDeviceToken(
        _ device: DeviceAuthorization,
        now: @Sendable () -> Date = { Date() },
        sleep: @Sendable (Double) async throws -> Void = { try await Task.sleep(for: .seconds($0)) }
    ) async throws -> TokenResponse {
        guard provider.supportsDeviceGrant else {
            throw OAuthError.unsupported(
                "\(provider.displayName) does not support the device grant; authorize in a browser instead")
        }
        let endpoint = provider.endpoints.deviceToken ?? provider.endpoints.token
        let lifetime = min(device.expiresIn ?? Self.defaultDeviceCodeLifetime, Self.maxDeviceCodeLifetime)
        let deadline = now().addingTimeInterval(Double(max(lifetime, 1)))
        var interval = Double(max(device.interval, 1))
        var failures = 0
        while true {
            // Never sleep past the deadline, however long an interval (or Retry-After) the provider asked for.
            let remaining = deadline.timeIntervalSince(now())
            if remaining <= 0 { throw OAuthError.deviceCodeExpired }
            try await sleep(min(interval, remaining))
            if now() >= deadline { throw OAuthError.deviceCodeExpired }
            do {
                return try await tokenRequest(
                    [("grant_type", Self.deviceGrantType), ("device_code", device.deviceCode)],
                    endpoint: endpoint, clientAuth: provider.deviceTokenClientAuth)
            } catch let error as OAuthError {
                switch error {
                case .oauth(code: "authorization_pending", _, _, _):
                    failures = 0
                case .oauth(code: "slow_down", _, _, _):
                    failures = 0
                    interval += 5
                case .oauth(code: "expired_token", _, _, _), .oauth(code: "token_expired", _, _, _):
                    throw OAuthError.deviceCodeExpired
                case .rateLimited(let wait, _):
                    failures += 1
                    if failures > 5 { throw error }
                    interval = max(interval, wait)
                default:
                    failures += 1
                    guard error.retryable, failures <= 5 else { throw error }
                }
            }
        }
    }

    // MARK: Response handling

    /// ``checkedJSON(_:)`` plus the provider's way of reporting errors in successful answers: GitHub's `error`
    /// field in an HTTP 200 answer, Slack's `"ok": false`.
    func checked(_ response: HTTPResponse) throws -> [String: JSONValue] {
        let object = try Self.checkedJSON(response)
        let code: String?
        switch provider.errorShape {
        case .status: return object
        case .errorFieldInSuccess: code = object["access_token"] == nil ? object["error"]?.stringValue : nil
        case .okFlag: code = object["ok"] == .bool(false) ? (object["error"]?.stringValue ?? "unknown_error") : nil
        }
        guard let code else { return object }
        throw OAuthError.oauth(
            code: ProviderText.displayable(code),
            description: ProviderText.displayable(object["error_description"]?.stringValue), status: response.status,
            trackingId: nil)
    }

    /// Turns a response into a JSON object or the right ``OAuthError``:
    /// 2xx JSON object → the object; 429 → rate limited (Retry-After, default 1 s); 5xx → server;
    /// 3xx → redirect; 4xx with `error` → OAuth error; other 4xx → REST error; bodies that are HTML, empty,
    /// not JSON or cut off → a message that says so. Webex's `trackingId` (body or header) rides along.
    /// Every provider string that goes into an error (codes, descriptions, messages, trackingId, Location) is
    /// passed through ``ProviderText/displayable(_:limit:)``: errors are printed.
    static func checkedJSON(_ response: HTTPResponse) throws -> [String: JSONValue] {
        let status = response.status
        let parsed = JSONValue.parse(response.body) ?? formObject(response)
        let object = parsed?.objectValue
        let trackingId = ProviderText.displayable(object?["trackingId"]?.stringValue ?? response.header("trackingid"))

        if status == 429 || (status == 423 && response.header("Retry-After") != nil) {
            throw OAuthError.rateLimited(retryAfter: retryAfter(response.header("Retry-After")), trackingId: trackingId)
        }
        if status >= 500 { throw OAuthError.server(status: status, trackingId: trackingId) }
        if (300..<400).contains(status) {
            throw OAuthError.unexpectedRedirect(
                status: status, location: ProviderText.displayable(response.header("Location"), limit: 500))
        }
        if (200..<300).contains(status) {
            if let object { return object }
            throw OAuthError.unexpectedBody(
                bodyProblem(response, parsed: parsed), status: status, trackingId: trackingId)
        }
        // 4xx (and anything odd below 200).
        if let object {
            if let code = object["error"]?.stringValue {
                throw OAuthError.oauth(
                    code: ProviderText.displayable(code),
                    description: ProviderText.displayable(object["error_description"]?.stringValue),
                    status: status, trackingId: trackingId)
            }
            var message = object["message"]?.stringValue
            if case .array(let errors)? = object["errors"],
                let first = errors.first?.objectValue?["description"]?.stringValue,
                first != message
            {
                message = message.map { "\($0); \(first)" } ?? first
            }
            throw OAuthError.api(status: status, message: ProviderText.displayable(message), trackingId: trackingId)
        }
        if response.body.isEmpty { throw OAuthError.api(status: status, message: nil, trackingId: trackingId) }
        throw OAuthError.unexpectedBody(bodyProblem(response, parsed: parsed), status: status, trackingId: trackingId)
    }

    /// A form-encoded answer (GitHub's default) as an object of strings, when the Content-Type says it is one.
    static func formObject(_ response: HTTPResponse) -> JSONValue? {
        guard response.header("Content-Type")?.lowercased().hasPrefix(formContentType) == true else { return nil }
        let fields = FormEncoding.decode(String(decoding: response.body, as: UTF8.self))
        guard !fields.isEmpty else { return nil }
        var object: [String: JSONValue] = [:]
        for (key, value) in fields where object[key] == nil { object[key] = .string(value) }
        return .object(object)
    }

    static func bodyProblem(_ response: HTTPResponse, parsed: JSONValue?) -> OAuthError.BodyProblem {
        if parsed != nil { return .notObject }
        let text = String(decoding: response.body.prefix(512), as: UTF8.self)
        let trimmed = text.drop(while: { $0.isWhitespace || $0 == "\u{FEFF}" })
        if trimmed.isEmpty { return .empty }
        if (response.header("Content-Type")?.lowercased().contains("html") ?? false) || trimmed.hasPrefix("<") {
            return .html
        }
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") { return .truncated }
        return .notJSON
    }

    /// Retry-After in seconds; HTTP-date forms and garbage fall back to 1 s (never 0, which would hammer).
    static func retryAfter(_ header: String?) -> Double {
        guard let header, let seconds = Double(header.trimmingCharacters(in: .whitespaces)), seconds.isFinite,
            seconds >= 0
        else { return 1 }
        return max(seconds, 0)
    }
}
