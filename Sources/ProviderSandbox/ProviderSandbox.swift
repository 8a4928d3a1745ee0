import FlyingFox
import FlyingSocks
import Foundation

/// A Webex-compatible OAuth provider on loopback, for tests and demos.
///
/// Start it in-process (`try await sandbox.start()`) or through the `provider-sandbox` executable. All state lives in
/// this actor, so counters are exact however many requests arrive at once. Expiries follow the sandbox clock:
/// frozen at the moment of creation and moved only by `advanceClock(by:)` and `setNow(_:)`, so tests step time and
/// never sleep; or, with `clockFollowsRealTime` (the executable's choice), real time plus the steps taken.
public actor ProviderSandbox {
    public private(set) var configuration: SandboxConfiguration
    /// Once started: `http://127.0.0.1:PORT/v1` for the Webex shape, `http://127.0.0.1:PORT` for every other shape
    /// (their paths are those of the real provider's hosts, kept as they are).
    public private(set) var baseURL: URL?

    private var server: HTTPServer?
    /// Counts starts, so a failure reported late by an earlier, stopped server is not blamed on the current one.
    private var generation = 0
    private var serverFailure: (any Error)?

    // The clock.
    private var clockOffset: TimeInterval = 0
    /// nil when the clock follows real time.
    private var frozenNow: Date?

    // Provider state.
    var codes: [String: AuthorizationCode] = [:]
    var authorizations: [String: Authorization] = [:]
    var accessTokens: [String: AccessTokenRecord] = [:]
    var refreshTokens: [String: RefreshTokenRecord] = [:]
    var devices: [String: DeviceAuthorization] = [:]
    var deviceCodesByUserCode: [String: String] = [:]
    /// Google: the (client, user) pairs that have consented before, keyed `clientId + "\n" + userId`.
    var consents: Set<String> = []

    // Counters.
    var stats = SandboxCounters()
    var refreshTokenUses: [String: Int] = [:]
    private var inFlight = 0
    /// Closed: requests wait (counted in flight) until `openGate()`. Lets a test hold a client mid-request for as
    /// long as it needs, or gather N concurrent requests, without a latency long enough to outlast a slow machine.
    private var gateClosed = false
    private var waitingAtGate: [CheckedContinuation<Void, Never>] = []

    /// - Parameter clockFollowsRealTime: false (the default, for tests): the sandbox clock stands still unless
    ///   stepped. true (for the executable and demos): it runs with real time, and steps add an offset.
    public init(configuration: SandboxConfiguration, clockFollowsRealTime: Bool = false) {
        self.configuration = configuration
        self.frozenNow = clockFollowsRealTime ? nil : Date()
    }

    // MARK: Lifecycle

    /// Binds 127.0.0.1 (never another interface) on `port`, 0 for any free port, and returns the base URL:
    /// `http://127.0.0.1:PORT/v1` for Webex, `http://127.0.0.1:PORT` for the other shapes.
    public func start(port: UInt16 = 0) async throws -> URL {
        guard server == nil else { throw SandboxError.alreadyStarted }
        let address = try sockaddr_in.inet(ip4: "127.0.0.1", port: port)
        // The server's timeout bounds each request's handling too, so leave room for configured latency.
        let quiet: some Logging = .disabled
        let server = HTTPServer(
            address: address, timeout: 600, logger: quiet, handler: SandboxHTTPHandler(sandbox: self))
        self.server = server
        serverFailure = nil
        generation += 1
        let generation = generation
        Task { [weak self] in
            do { try await server.run() } catch { await self?.serverDidFail(error, generation: generation) }
        }
        let deadline = Date().addingTimeInterval(10)
        while await !server.isListening {
            if let failure = serverFailure {
                self.server = nil
                throw SandboxError.couldNotListen(port: port, reason: "\(failure)")
            }
            guard Date() < deadline else {
                await server.stop()
                self.server = nil
                throw SandboxError.couldNotListen(port: port, reason: "timed out")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        guard case .ip4(_, let boundPort)? = await server.listeningAddress,
            let url = URL(string: "http://127.0.0.1:\(boundPort)" + (configuration.shape == .webex ? "/v1" : ""))
        else {
            await server.stop()
            self.server = nil
            throw SandboxError.couldNotListen(port: port, reason: "no listening address")
        }
        NoDelay.setOnListener(port: boundPort)
        baseURL = url
        return url
    }

    /// Closes the listening socket and every connection.
    public func stop() async {
        openGate()
        guard let server else { return }
        self.server = nil
        baseURL = nil
        await server.stop(timeout: 0)
    }

    private func serverDidFail(_ error: any Error, generation: Int) {
        guard generation == self.generation else { return }
        serverFailure = error
    }

    // MARK: Configuration

    /// Changes the configuration while running (faults, rotation, lifetimes, current user…).
    public func updateConfiguration(_ change: @Sendable (inout SandboxConfiguration) -> Void) {
        change(&configuration)
    }

    // MARK: Clock

    /// The sandbox's idea of now; every expiry is judged against it.
    public var now: Date { frozenNow ?? Date().addingTimeInterval(clockOffset) }

    /// Whether the clock moves only when stepped (tests): then real time passing means nothing to the sandbox.
    var clockIsStepped: Bool { frozenNow != nil }

    /// Moves the sandbox clock forward (or back, with a negative value). Takes effect for the next request.
    public func advanceClock(by seconds: TimeInterval) {
        if let frozen = frozenNow {
            frozenNow = frozen.addingTimeInterval(seconds)
        } else {
            clockOffset += seconds
        }
    }

    /// Sets the sandbox clock to `date`. A clock that follows real time keeps running from there.
    public func setNow(_ date: Date) {
        if frozenNow != nil {
            frozenNow = date
        } else {
            clockOffset = date.timeIntervalSince(Date())
        }
    }

    // MARK: Counters

    /// Everything counted so far.
    public var counters: SandboxCounters { stats }

    /// Requests received and not yet answered (still in their configured latency). A client killed mid-request
    /// leaves its request here until the sandbox answers it into the closed connection.
    public var requestsInFlight: Int { inFlight }

    /// From now on, every request waits before it is answered, until `openGate()`.
    public func closeGate() { gateClosed = true }

    /// Lets every held request through (each then takes its configured latency) and stops holding new ones.
    public func openGate() {
        gateClosed = false
        let waiting = waitingAtGate
        waitingAtGate = []
        for w in waiting { w.resume() }
    }

    private func passGate() async {
        guard gateClosed else { return }
        await withCheckedContinuation { waitingAtGate.append($0) }
    }

    /// How many refresh grants presented this refresh token (accepted or not). Requests answered by an injected
    /// 429/503/HTML fault never reached the grant and are not counted.
    public func uses(ofRefreshToken token: String) -> Int {
        refreshTokenUses[token, default: 0]
    }

    /// The rotation chain that starts at `token`: that refresh token, the one rotation put in its place, and so on
    /// to the newest. Each link says how often it was presented and when the access token issued with it expires,
    /// so a test can tell which pair a client stored (by its expiry) without reading tokens back.
    public func rotationChain(from token: String) -> [RefreshTokenLink] {
        var links: [RefreshTokenLink] = []
        var current: String? = token
        while let t = current, let record = refreshTokens[t], links.count <= refreshTokens.count {
            links.append(
                RefreshTokenLink(
                    uses: refreshTokenUses[t, default: 0],
                    accessExpiresAt: record.accessToken.flatMap { accessTokens[$0]?.expiresAt }))
            current = record.successor?.refreshToken
        }
        return links
    }

    /// Requests received for an endpoint, named like `"POST /v1/access_token"` (Webex), `"POST /token"` (Google,
    /// OIDC) or `"POST /{tenant}/oauth2/v2.0/token"` (Microsoft), including faulted ones.
    public func requests(to endpoint: String) -> Int {
        stats.requestsByEndpoint[endpoint, default: 0]
    }

    // MARK: HTTP entry

    nonisolated func respond(to request: HTTPRequest) async -> HTTPResponse {
        let body = (try? await request.bodyData) ?? Data()
        var headers: [String: String] = [:]
        for (name, value) in request.headers {
            headers[name.rawValue.lowercased()] = value
        }
        let incoming = IncomingRequest(
            method: request.method.rawValue.uppercased(),
            path: request.path,
            query: parseForm(request.target.query(percentEncoded: true)),
            form: parseForm(String(decoding: body, as: UTF8.self)),
            headers: headers,
            body: body)

        let latency = await beginRequest(incoming)
        await passGate()
        if latency > 0 {
            try? await Task.sleep(for: .seconds(latency))
        }
        let outgoing = await finishRequest(incoming)

        var responseHeaders = HTTPHeaders()
        for (name, value) in outgoing.headers {
            responseHeaders[HTTPHeader(name)] = value
        }
        return HTTPResponse(
            statusCode: HTTPStatusCode(outgoing.status, phrase: reasonPhrase(outgoing.status)),
            headers: responseHeaders, body: outgoing.body)
    }

    /// Counts the request in flight and returns the latency to apply before answering it.
    private func beginRequest(_ request: IncomingRequest) -> Double {
        inFlight += 1
        stats.peakConcurrentRequests = max(stats.peakConcurrentRequests, inFlight)
        let isTokenEndpoint = rules.isTokenEndpoint(request.method, request.path)
        return isTokenEndpoint || configuration.latencyOnAllEndpoints ? configuration.latency : 0
    }

    private func finishRequest(_ request: IncomingRequest) -> OutgoingResponse {
        inFlight -= 1
        return handle(request, at: now)
    }

    /// Routes one request to the configured shape. Synchronous on the actor, so each request sees and leaves
    /// consistent state.
    func handle(_ request: IncomingRequest, at now: Date) -> OutgoingResponse {
        switch configuration.shape {
        case .webex: routeWebex(request, at: now)
        case .google: routeGoogle(request, at: now)
        case .microsoft: routeMicrosoft(request, at: now)
        case .github: routeGitHub(request, at: now)
        case .slack: routeSlack(request, at: now)
        case .oidc: routeOIDC(request, at: now)
        }
    }

    func count(_ endpoint: String) {
        stats.requestsByEndpoint[endpoint, default: 0] += 1
    }
}

/// Why the sandbox could not do what a test or the executable asked.
public enum SandboxError: Error, Equatable, LocalizedError {
    case alreadyStarted
    case couldNotListen(port: UInt16, reason: String)
    case unknownClient(String)
    case unknownUser(String)
    case unknownToken
    case invalidArgument(String)
    case invalidConfiguration(String)

    public var errorDescription: String? {
        switch self {
        case .alreadyStarted: "the sandbox is already running"
        case .couldNotListen(let port, let reason): "cannot listen on 127.0.0.1:\(port): \(reason)"
        case .unknownClient(let id): "no client \(id) is configured"
        case .unknownUser(let id): "no user \(id) is configured"
        case .unknownToken: "the sandbox never issued that token"
        case .invalidArgument(let message): message
        case .invalidConfiguration(let message): "bad configuration: \(message)"
        }
    }
}

/// One refresh token of a rotation chain (no token text: tests compare positions and counts).
public struct RefreshTokenLink: Sendable, Equatable {
    /// Refresh grants that presented this token (accepted or refused).
    public var uses: Int
    /// When the access token issued in the same answer expires (nil when unknown).
    public var accessExpiresAt: Date?
}

/// Counts kept for assertions. Exact: every count changes on the actor.
public struct SandboxCounters: Sendable, Equatable {
    /// Keyed like `"POST /v1/access_token"`; `"DELETE /v1/authorizations/{id}"`; unknown paths under `"other"`.
    public var requestsByEndpoint: [String: Int] = [:]
    /// Microsoft shape: requests to `/{tenant}/oauth2/v2.0/…`, by the tenant segment they named.
    public var requestsByTenant: [String: Int] = [:]
    /// Refresh grants that reached the grant logic (accepted or refused).
    public var refreshGrants = 0
    /// Refresh grants answered with a token pair.
    public var successfulRefreshes = 0
    /// Refresh grants that presented a refresh token already rotated out (accepted within grace or refused).
    public var rotatedRefreshTokenReuses = 0
    public var codesIssued = 0
    public var codesRedeemed = 0
    /// Token pairs issued by any grant or by `issueTokenPair`.
    public var tokenPairsIssued = 0
    public var tooManyRequestsAnswered = 0
    public var serviceUnavailableAnswered = 0
    public var htmlGarbageAnswered = 0
    /// The most requests the sandbox was handling at one moment.
    public var peakConcurrentRequests = 0

    public init() {}
}

struct IncomingRequest: Sendable {
    var method: String
    var path: String
    var query: [String: String]
    var form: [String: String]
    /// Names lowercased.
    var headers: [String: String]
    /// The raw body (GitHub's token deletion sends JSON).
    var body = Data()
}

struct OutgoingResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: Data

    static func json(_ status: Int, _ object: [String: any Sendable], headers: [(String, String)] = []) -> Self {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return OutgoingResponse(
            status: status, headers: [("Content-Type", "application/json;charset=UTF-8")] + headers, body: data)
    }

    /// The OAuth-layer error shape: `{"error":…,"error_description":…}`.
    static func oauthError(_ error: String, _ description: String, status: Int = 400) -> Self {
        .json(status, ["error": error, "error_description": description])
    }

    /// The REST-layer error shape Webex uses for its API: message, errors, trackingId (also as a header).
    static func restError(_ status: Int, _ message: String, description: String? = nil) -> Self {
        let trackingId = "SANDBOX_" + UUID().uuidString
        return .json(
            status,
            ["message": message, "errors": [["description": description ?? message]], "trackingId": trackingId],
            headers: [("trackingid", trackingId)])
    }

    /// An `application/x-www-form-urlencoded` body (GitHub's default token answers), fields in the order given.
    static func form(_ status: Int, _ fields: [(String, String)], headers: [(String, String)] = []) -> Self {
        let text = fields.map { "\(queryEncode($0.0))=\(queryEncode($0.1))" }.joined(separator: "&")
        return OutgoingResponse(
            status: status, headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")] + headers,
            body: Data(text.utf8))
    }

    static func empty(_ status: Int) -> Self {
        OutgoingResponse(status: status, headers: [], body: Data())
    }

    static func html(_ status: Int, _ text: String) -> Self {
        OutgoingResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8")], body: Data(text.utf8))
    }

    static func redirect(_ location: String) -> Self {
        OutgoingResponse(status: 302, headers: [("Location", location)], body: Data())
    }
}

private struct SandboxHTTPHandler: HTTPHandler {
    let sandbox: ProviderSandbox

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        await sandbox.respond(to: request)
    }
}

private func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 200: "OK"
    case 204: "No Content"
    case 302: "Found"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 422: "Unprocessable Entity"
    case 428: "Precondition Required"
    case 429: "Too Many Requests"
    case 503: "Service Unavailable"
    default: "Status"
    }
}
