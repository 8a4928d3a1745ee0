import Foundation

/// Whose endpoints, answers and errors the sandbox imitates. Every shape shares the same codes, authorizations,
/// tokens, rotation, clock, counters, faults and request gate; a shape only decides the paths it serves and how its
/// answers and errors are worded (one file per shape: `ProviderSandbox+Google.swift`, …).
public enum ProviderShape: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Webex: everything under `/v1`. The default, and the only shape whose base URL has a path.
    case webex
    /// Google: `/o/oauth2/v2/auth`, `/token`, `/device/code`, `/revoke`, `/v1/userinfo`, discovery.
    case google
    /// Microsoft Entra ID v2.0: `/{tenant}/oauth2/v2.0/…`, `/oidc/userinfo`, Graph `revokeSignInSessions`.
    case microsoft
    /// GitHub: `/login/oauth/…`, `/login/device/code`, `/user`, `DELETE /applications/{client_id}/token`.
    case github
    /// Slack: `/oauth/v2/authorize`, `/api/oauth.v2.access`, `/api/auth.test`, `/api/auth.revoke`.
    case slack
    /// A plain standards provider: RFC 6749, 7009, 8628 and OpenID Connect discovery, HTTP Basic client auth only.
    case oidc

    public var description: String { rawValue }

    /// What a configuration of this shape starts with when it names no lifetime, rotation or device timing.
    public struct Defaults: Sendable, Equatable {
        public var accessTokenLifetime: Int
        public var accessTokenLifetimeJitter: Int
        public var refreshTokenLifetime: Int
        public var rotation: SandboxConfiguration.Rotation
        public var deviceCodeLifetime: Int
        public var devicePollInterval: Int
    }

    public var defaults: Defaults {
        switch self {
        case .webex:
            Defaults(
                accessTokenLifetime: 1_209_599, accessTokenLifetimeJitter: 0, refreshTokenLifetime: 7_776_000,
                rotation: .off, deviceCodeLifetime: 300, devicePollInterval: 2)
        case .google:
            // No documented refresh token expiry; 180 days stands for "until unused for six months".
            Defaults(
                accessTokenLifetime: 3599, accessTokenLifetimeJitter: 0, refreshTokenLifetime: 15_552_000,
                rotation: .off, deviceCodeLifetime: 1800, devicePollInterval: 5)
        case .microsoft:
            // 60 to 90 minutes, different for each token; 90-day refresh tokens, rotated leniently.
            Defaults(
                accessTokenLifetime: 3600, accessTokenLifetimeJitter: 1800, refreshTokenLifetime: 7_776_000,
                rotation: .lenient, deviceCodeLifetime: 900, devicePollInterval: 5)
        case .github:
            Defaults(
                accessTokenLifetime: 28_800, accessTokenLifetimeJitter: 0, refreshTokenLifetime: 15_811_200,
                rotation: .on, deviceCodeLifetime: 900, devicePollInterval: 5)
        case .slack:
            // Refresh tokens of rotating Slack apps do not expire; ten years stands for that.
            Defaults(
                accessTokenLifetime: 43_200, accessTokenLifetimeJitter: 0, refreshTokenLifetime: 315_360_000,
                rotation: .on, deviceCodeLifetime: 300, devicePollInterval: 5)
        case .oidc:
            Defaults(
                accessTokenLifetime: 3600, accessTokenLifetimeJitter: 0, refreshTokenLifetime: 2_592_000,
                rotation: .off, deviceCodeLifetime: 600, devicePollInterval: 5)
        }
    }
}

/// The parts of the shared authorization-code, refresh and device machinery that differ between shapes.
/// Each shape file defines its own value (`ShapeRules.google`, …).
struct ShapeRules: Sendable {
    enum RedirectMatching: Sendable {
        /// The authorize `redirect_uri` must be one of the registered URIs, character for character.
        case exact
        /// As `exact`, except that a loopback URI (`http://127.0.0.1`, `http://localhost`) matches a registered one
        /// whatever its port (RFC 8252 §7.3).
        case loopbackAnyPort
    }

    var redirectMatching: RedirectMatching = .exact
    /// `code_challenge_method` values accepted at authorize (a missing method means `plain`, RFC 7636 §4.3).
    var pkceMethods: [String] = ["S256"]
    /// Authorize requests must carry `response_type=code` (GitHub and Slack have no such parameter).
    var requiresResponseType = true
    /// Authorize requests must ask for at least one scope.
    var requiresScope = true
    /// The code exchange must repeat `redirect_uri` (RFC 6749). GitHub and Slack check it only when it is sent.
    var requiresRedirectURIAtExchange = true
    /// Strict rotation also kills the access token issued with the refresh token it replaces (GitHub).
    var rotationRevokesPreviousAccessToken = false
    /// Grants may include a refresh token at all (GitHub OAuth apps never give one).
    var issuesRefreshTokens = true
    /// Access tokens expire (GitHub OAuth-app tokens live until revoked).
    var accessTokensExpire = true
    /// Whether a request is one to the token endpoint (the one faults and latency apply to).
    var isTokenEndpoint: @Sendable (_ method: String, _ path: String) -> Bool = { _, _ in false }
    /// Prefixes of generated tokens; nil for Webex's `<random>_<cluster>_<orgId>`.
    var accessTokenPrefix: String?
    var refreshTokenPrefix: String?
}

extension ProviderSandbox {
    /// The rules of the configured shape.
    var rules: ShapeRules {
        switch configuration.shape {
        case .webex: .webex
        case .google: .google
        case .microsoft: .microsoft
        case .github: configuration.githubOAuthApp ? .githubOAuthApp : .github
        case .slack: .slack
        case .oidc: .oidc
        }
    }

    /// `http://127.0.0.1:PORT`, the origin every non-Webex shape serves its paths on.
    var origin: String {
        guard let baseURL, let port = baseURL.port else { return "http://127.0.0.1" }
        return "http://127.0.0.1:\(port)"
    }
}
