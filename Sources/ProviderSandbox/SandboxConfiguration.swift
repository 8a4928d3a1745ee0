import Foundation

/// Everything the sandbox provider is set up with: integrations, users, lifetimes, rotation and injected faults.
///
/// Decodable from a JSON file in which every field except `clients` may be left out; missing fields take the
/// defaults of the configured `shape` (Webex's when no shape is named).
public struct SandboxConfiguration: Sendable, Codable, Equatable {
    /// A registered integration (Webex calls it an integration; OAuth calls it a client).
    public struct Client: Sendable, Codable, Equatable {
        public var clientId: String
        public var clientSecret: String
        /// Matched exactly, as Webex does.
        public var redirectURIs: [String]
        /// The scopes registered on the integration; authorize requests must ask for a subset.
        public var scopes: [String]
        /// A public (native, CLI) client: it may authenticate with its `client_id` alone. A secret it does send must
        /// still be the right one.
        public var isPublic: Bool

        public init(
            clientId: String, clientSecret: String, redirectURIs: [String], scopes: [String], isPublic: Bool = false
        ) {
            self.clientId = clientId
            self.clientSecret = clientSecret
            self.redirectURIs = redirectURIs
            self.scopes = scopes
            self.isPublic = isPublic
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                clientId: try c.decode(String.self, forKey: .clientId),
                clientSecret: try c.decode(String.self, forKey: .clientSecret),
                redirectURIs: try c.decode([String].self, forKey: .redirectURIs),
                scopes: try c.decode([String].self, forKey: .scopes),
                isPublic: try c.decodeIfPresent(Bool.self, forKey: .isPublic) ?? false)
        }
    }

    /// A Webex user who can approve authorizations.
    public struct User: Sendable, Codable, Equatable {
        public var id: String
        public var email: String
        public var displayName: String
        public var orgId: String

        public init(id: String, email: String, displayName: String, orgId: String) {
            self.id = id
            self.email = email
            self.displayName = displayName
            self.orgId = orgId
        }

        /// The user a configuration gets when it names none.
        public static let sample = User(
            id: "sandbox-person-1", email: "pat@example.com", displayName: "Pat Sandbox", orgId: "sandbox-org-1")
    }

    /// What a refresh grant does to the refresh token it was given.
    public enum Rotation: Sendable, Equatable, Codable, CustomStringConvertible {
        /// Webex's behaviour: the same refresh token comes back and its lifetime starts again.
        case off
        /// A new refresh token on every refresh; the old one stops working at once.
        case on
        /// A new refresh token on every refresh; the old one still works for this many seconds
        /// and answers with the same new pair.
        case grace(seconds: Int)
        /// Microsoft's behaviour: a new refresh token on every refresh, and the old one keeps working (each use mints
        /// another new pair) until its own expiry.
        case lenient

        /// Parses `off`, `on`, `lenient` or `grace:SECONDS`.
        public init?(argument: String) {
            switch argument {
            case "off": self = .off
            case "on": self = .on
            case "lenient": self = .lenient
            default:
                guard argument.hasPrefix("grace:"), let seconds = Int(argument.dropFirst(6)), seconds >= 0
                else { return nil }
                self = .grace(seconds: seconds)
            }
        }

        public var description: String {
            switch self {
            case .off: "off"
            case .on: "on"
            case .grace(let seconds): "grace:\(seconds)"
            case .lenient: "lenient"
            }
        }

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let rotation = Rotation(argument: text) else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: decoder.codingPath,
                        debugDescription: "rotation must be off, on, lenient or grace:SECONDS"))
            }
            self = rotation
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(description)
        }
    }

    /// Faults injected on `POST /v1/access_token` (the token endpoint), counted over requests to it.
    public struct Faults: Sendable, Codable, Equatable {
        /// Every Nth token request answers 429 with `Retry-After`. `nil` or 0: never.
        public var tooManyRequestsEvery: Int?
        /// The `Retry-After` value, in seconds, sent with those 429s.
        public var retryAfterSeconds: Int
        /// Every Nth token request answers 503. When both match the same request, 429 wins.
        public var serviceUnavailableEvery: Int?
        /// Token requests answer 200 with an HTML page instead of JSON (a captive portal or a proxy error page).
        public var htmlGarbage: Bool
        /// The user declines consent: authorize redirects with `error=access_denied`, device approvals are denials.
        public var denyConsent: Bool

        public init(
            tooManyRequestsEvery: Int? = nil, retryAfterSeconds: Int = 1, serviceUnavailableEvery: Int? = nil,
            htmlGarbage: Bool = false, denyConsent: Bool = false
        ) {
            self.tooManyRequestsEvery = tooManyRequestsEvery
            self.retryAfterSeconds = retryAfterSeconds
            self.serviceUnavailableEvery = serviceUnavailableEvery
            self.htmlGarbage = htmlGarbage
            self.denyConsent = denyConsent
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                tooManyRequestsEvery: try c.decodeIfPresent(Int.self, forKey: .tooManyRequestsEvery),
                retryAfterSeconds: try c.decodeIfPresent(Int.self, forKey: .retryAfterSeconds) ?? 1,
                serviceUnavailableEvery: try c.decodeIfPresent(Int.self, forKey: .serviceUnavailableEvery),
                htmlGarbage: try c.decodeIfPresent(Bool.self, forKey: .htmlGarbage) ?? false,
                denyConsent: try c.decodeIfPresent(Bool.self, forKey: .denyConsent) ?? false)
        }
    }

    /// Whose endpoints, answers and errors the sandbox imitates. Webex by default.
    public var shape: ProviderShape
    public var clients: [Client]
    /// Users who can approve. The authorize endpoint approves as the user named by `login_hint` (id or email),
    /// else `currentUserId`, else the first user.
    public var users: [User]
    public var currentUserId: String?
    /// Seconds. Webex: 1209599 (14 days). Other shapes: see `ProviderShape`.
    public var accessTokenLifetime: Int
    /// Up to this many seconds added to each access token's lifetime, varying from token to token but deterministic
    /// (Microsoft's lifetimes are random between 60 and 90 minutes). 0 (Webex): every token gets the same lifetime.
    public var accessTokenLifetimeJitter: Int
    /// Seconds. Webex: 7776000 (90 days).
    public var refreshTokenLifetime: Int
    public var rotation: Rotation
    /// A refresh leaves the refresh token's expiry where it was (a rotated successor inherits it) instead of
    /// starting its lifetime again: providers that give a login an absolute lifetime. Webex: false.
    public var keepsRefreshTokenExpiry: Bool
    /// Seconds of real delay before the token endpoints (`/v1/access_token`, `/v1/device/token`) answer.
    public var latency: Double
    /// Apply `latency` to every endpoint, not only the token endpoints.
    public var latencyOnAllEndpoints: Bool
    public var faults: Faults
    /// Include `scope` in token responses. Webex leaves it out of authorization-code and refresh responses.
    public var reportScopes: Bool
    /// Scopes (or prefixes ending in `*`) approved but left out of the grant, as Webex leaves `meeting:admin_*` out
    /// of tokens of users who are not admins.
    public var withheldScopes: [String] = []
    /// The cluster part of generated tokens (`<random>_<cluster>_<orgId>`).
    public var cluster: String
    /// Seconds a device code and its user code stay valid. Webex: 300.
    public var deviceCodeLifetime: Int
    /// Minimum seconds between device token polls. Webex: 2.
    public var devicePollInterval: Int
    /// GitHub shape only: behave as an OAuth app (`gho_` tokens that never expire, no refresh token, `scope`
    /// comma-separated) instead of a GitHub App with expiring user tokens.
    public var githubOAuthApp: Bool = false
    /// Google and OIDC shapes: the `issuer` written in the discovery document. nil: the origin the sandbox serves,
    /// as it must be; set it to test that a client refuses a document whose issuer differs.
    public var discoveryIssuer: String?

    /// Lifetimes, rotation and device timings left nil take the defaults of `shape`.
    public init(
        shape: ProviderShape = .webex,
        clients: [Client] = [],
        users: [User] = [.sample],
        currentUserId: String? = nil,
        accessTokenLifetime: Int? = nil,
        refreshTokenLifetime: Int? = nil,
        rotation: Rotation? = nil,
        latency: Double = 0,
        latencyOnAllEndpoints: Bool = false,
        faults: Faults = Faults(),
        reportScopes: Bool = false,
        cluster: String = "P0A1",
        deviceCodeLifetime: Int? = nil,
        devicePollInterval: Int? = nil,
        keepsRefreshTokenExpiry: Bool = false,
        accessTokenLifetimeJitter: Int? = nil
    ) {
        let defaults = shape.defaults
        self.shape = shape
        self.clients = clients
        self.users = users
        self.currentUserId = currentUserId
        self.accessTokenLifetime = accessTokenLifetime ?? defaults.accessTokenLifetime
        self.accessTokenLifetimeJitter = accessTokenLifetimeJitter ?? defaults.accessTokenLifetimeJitter
        self.refreshTokenLifetime = refreshTokenLifetime ?? defaults.refreshTokenLifetime
        self.rotation = rotation ?? defaults.rotation
        self.latency = latency
        self.latencyOnAllEndpoints = latencyOnAllEndpoints
        self.faults = faults
        self.reportScopes = reportScopes
        self.cluster = cluster
        self.deviceCodeLifetime = deviceCodeLifetime ?? defaults.deviceCodeLifetime
        self.devicePollInterval = devicePollInterval ?? defaults.devicePollInterval
        self.keepsRefreshTokenExpiry = keepsRefreshTokenExpiry
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = SandboxConfiguration()
        self.init(
            shape: try c.decodeIfPresent(ProviderShape.self, forKey: .shape) ?? .webex,
            clients: try c.decodeIfPresent([Client].self, forKey: .clients) ?? [],
            users: try c.decodeIfPresent([User].self, forKey: .users) ?? defaults.users,
            currentUserId: try c.decodeIfPresent(String.self, forKey: .currentUserId),
            accessTokenLifetime: try c.decodeIfPresent(Int.self, forKey: .accessTokenLifetime),
            refreshTokenLifetime: try c.decodeIfPresent(Int.self, forKey: .refreshTokenLifetime),
            rotation: try c.decodeIfPresent(Rotation.self, forKey: .rotation),
            latency: try c.decodeIfPresent(Double.self, forKey: .latency) ?? 0,
            latencyOnAllEndpoints: try c.decodeIfPresent(Bool.self, forKey: .latencyOnAllEndpoints) ?? false,
            faults: try c.decodeIfPresent(Faults.self, forKey: .faults) ?? Faults(),
            reportScopes: try c.decodeIfPresent(Bool.self, forKey: .reportScopes) ?? false,
            cluster: try c.decodeIfPresent(String.self, forKey: .cluster) ?? defaults.cluster,
            deviceCodeLifetime: try c.decodeIfPresent(Int.self, forKey: .deviceCodeLifetime),
            devicePollInterval: try c.decodeIfPresent(Int.self, forKey: .devicePollInterval),
            keepsRefreshTokenExpiry: try c.decodeIfPresent(Bool.self, forKey: .keepsRefreshTokenExpiry) ?? false,
            accessTokenLifetimeJitter: try c.decodeIfPresent(Int.self, forKey: .accessTokenLifetimeJitter))
        withheldScopes = try c.decodeIfPresent([String].self, forKey: .withheldScopes) ?? []
        githubOAuthApp = try c.decodeIfPresent(Bool.self, forKey: .githubOAuthApp) ?? false
        discoveryIssuer = try c.decodeIfPresent(String.self, forKey: .discoveryIssuer)
    }
}
