import Foundation

/// Every way an OAuth exchange, the provider, the network or the browser callback can fail.
///
/// One error type for the whole module so that the CLI maps errors to exit codes in one place and the retry
/// policy classifies them without knowing where they came from. The texts say what to do next and never
/// contain a token, code, verifier or client secret: only provider error codes, HTTP statuses, hosts and
/// Webex `trackingId`s, which Webex support asks for.
public enum OAuthError: Error, LocalizedError, Equatable, Sendable {
    /// What was wrong with a response body that should have been JSON.
    public enum BodyProblem: String, Sendable, Equatable {
        case empty, html, notJSON, truncated, notObject
    }

    /// What went wrong below HTTP.
    public enum TransportProblem: Sendable, Equatable {
        case cannotFindHost
        case cannotConnect
        case timedOut
        case connectionLost
        case tls
        /// A library the request needs (libcurl) could not be loaded: a problem of this machine, not of the network.
        case missingLibrary(String)
        case other(String)
    }

    /// The provider's OAuth layer refused (`{"error":"invalid_grant",…}`). `invalid_grant` means the account
    /// needs re-authorization.
    case oauth(code: String, description: String?, status: Int, trackingId: String?)
    /// The provider's REST layer refused (`{"message":…,"trackingId":…}`), e.g. 401 on people/me or 403 on revoke.
    case api(status: Int, message: String?, trackingId: String?)
    /// 429 (or 423 with Retry-After): wait `retryAfter` seconds.
    case rateLimited(retryAfter: Double, trackingId: String?)
    /// 5xx from the provider.
    case server(status: Int, trackingId: String?)
    /// A 3xx: the transport never follows redirects, so the API base is probably wrong.
    case unexpectedRedirect(status: Int, location: String?)
    /// The body was not the JSON object expected.
    case unexpectedBody(BodyProblem, status: Int, trackingId: String?)
    /// A token response that is JSON but not a usable token pair; the reason names the field and value.
    case invalidTokenResponse(String)
    /// A successful response that lacks a field we need (e.g. people/me without `id`).
    case invalidResponse(String)
    /// DNS, connection, timeout or TLS failure talking to `host`.
    case transport(TransportProblem, host: String)
    /// The browser came back with a `state` that is not the one we sent (RFC 6749 §10.12): refused.
    case stateMismatch
    /// The browser came back with `error=…` (access_denied, invalid_scope, server_error, …).
    case callbackError(code: String, description: String?)
    /// The browser came back without a `code`.
    case callbackMissingCode
    /// No callback arrived in time.
    case callbackTimeout(seconds: Double)
    /// The redirect URI's port is taken by another program.
    case portInUse(host: String, port: UInt16)
    /// The loopback listener could not be set up (other socket errors).
    case listenerFailed(String)
    /// The redirect URI cannot be parsed or served.
    case invalidRedirectURI(String)
    /// What the user pasted is neither a callback URL nor a code.
    case invalidPaste(String)
    /// The provider's answer (announced or received) was larger than `limit` bytes, so it was refused unread.
    /// Not retried: an endpoint that sends megabytes is misconfigured or hostile, not busy.
    case responseTooLarge(limit: Int, host: String)
    /// The device code expired before the user approved.
    case deviceCodeExpired
    /// The provider has no such feature (identity, revoke, device grant).
    case unsupported(String)

    /// True when the account's grant is gone (expired, revoked or rotated refresh token): the user must run
    /// 'tokenvault authorize' again. Never retried.
    public var isInvalidGrant: Bool {
        if case .oauth(let code, _, _, _) = self { return code == "invalid_grant" }
        return false
    }

    /// Whether trying the same request again later can succeed: rate limits, 5xx, network failures and a
    /// garbled body on a 5xx (a proxy's error page). Every 4xx, including `invalid_grant`, is final.
    public var retryable: Bool {
        switch self {
        case .rateLimited, .server: return true
        case .transport(let problem, _):
            if case .tls = problem { return false }  // a certificate problem does not fix itself in seconds
            if case .missingLibrary = problem { return false }  // nor does a library that is not installed
            return true
        case .unexpectedBody(_, let status, _): return status >= 500
        default: return false
        }
    }

    /// True for a token refused because it has characters outside RFC 6750 `b64token`. `import` reports this one
    /// as the provider's fault (exit 6), like a refresh would, and other malformed input as a usage error.
    public var isTokenCharacterRefusal: Bool {
        guard case .invalidTokenResponse(let reason) = self else { return false }
        return reason == TokenResponse.notB64Token("access_token")
            || reason == TokenResponse.notB64Token("refresh_token")
    }

    /// The wait the provider asked for, if any.
    public var retryAfter: Double? {
        if case .rateLimited(let seconds, _) = self { return seconds }
        return nil
    }

    /// Webex's tracking id, when the provider sent one.
    public var trackingId: String? {
        switch self {
        case .oauth(_, _, _, let t), .api(_, _, let t), .rateLimited(_, let t), .server(_, let t),
            .unexpectedBody(_, _, let t):
            return t
        default: return nil
        }
    }

    public var errorDescription: String? {
        let text: String
        switch self {
        case .oauth(let code, let description, let status, _):
            text = Self.oauthText(code: code, description: description, status: status)
        case .api(let status, let message, _):
            let what = message.map { ": \(Self.clip($0))" } ?? ""
            switch status {
            case 401:
                text =
                    "the provider refused the access token (HTTP 401\(what)); refresh it with `tokenvault refresh`, or authorize again"
            case 403:
                text =
                    "the provider refused the request (HTTP 403\(what)); the token lacks a scope or the user lacks the role for it"
            case 404: text = "the provider has no such endpoint (HTTP 404\(what)); check the integration's API base URL"
            default: text = "the provider refused the request (HTTP \(status)\(what))"
            }
        case .rateLimited(let seconds, _):
            text = "the provider is rate limiting requests (HTTP 429); try again in \(Self.seconds(seconds))"
        case .server(let status, _):
            text = "the provider had a server error (HTTP \(status)); try again later"
        case .unexpectedRedirect(let status, let location):
            let to = location.map { " to \(Self.clip($0))" } ?? ""
            text = "the provider answered with a redirect (HTTP \(status)\(to)); check the integration's API base URL"
        case .unexpectedBody(let problem, let status, _):
            let what: String
            switch problem {
            case .empty: what = "an empty body"
            case .html: what = "HTML, not JSON"
            case .notJSON: what = "something that is not JSON"
            case .truncated: what = "JSON that is cut off or malformed"
            case .notObject: what = "JSON that is not an object"
            }
            let hint = status >= 500 ? "try again later" : "check the integration's API base URL, or a proxy in between"
            text = "the provider answered with \(what) (HTTP \(status)); \(hint)"
        case .invalidTokenResponse(let reason):
            text = "the token response is not usable: \(reason)"
        case .invalidResponse(let reason):
            text = "the provider's answer is not usable: \(reason)"
        case .transport(let problem, let host):
            switch problem {
            case .cannotFindHost:
                text = "cannot resolve \(host); check the network, DNS, and the integration's API base URL"
            case .cannotConnect:
                text = "cannot connect to \(host); check the network and the integration's API base URL"
            case .timedOut: text = "\(host) did not answer in time; check the network and try again"
            case .connectionLost: text = "the connection to \(host) was lost; try again"
            case .tls:
                text =
                    "the TLS connection to \(host) failed: its certificate was not accepted or the TLS handshake failed (a self-signed or expired certificate, a wrong host name, or a proxy that intercepts TLS); check the system's CA certificates and clock"
            case .missingLibrary(let detail): text = "cannot talk to \(host): \(detail)"
            case .other(let detail): text = "network error talking to \(host): \(detail)"
            }
        case .responseTooLarge(let limit, let host):
            text =
                "the provider's answer from \(host) was larger than \(Self.bytes(limit)), so it was refused without reading the rest; check the integration's API base URL, or a proxy in between"
        case .stateMismatch:
            text =
                "the authorization callback carried the wrong state, so it was refused (it may come from another tab or a forged link); run 'tokenvault authorize' again"
        case .callbackError(let code, let description):
            text = Self.callbackText(code: code, description: description)
        case .callbackMissingCode:
            text = "the authorization callback had no code; run 'tokenvault authorize' again"
        case .callbackTimeout(let seconds):
            text =
                "no authorization callback arrived within \(Self.seconds(seconds)); run 'tokenvault authorize' again (use --timeout to wait longer, or --no-browser to paste the URL)"
        case .portInUse(let host, let port):
            let shown = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            text =
                "\(shown) is already in use by another program, so the browser callback cannot be received; stop that program (see `ss -ltnp 'sport = :\(port)'`) or use --no-browser to paste the URL instead"
        case .listenerFailed(let detail):
            text = "cannot listen for the browser callback: \(detail); use --no-browser to paste the URL instead"
        case .invalidRedirectURI(let detail):
            text = "the integration's redirect URI is not usable: \(detail)"
        case .invalidPaste(let detail):
            text =
                "\(detail); paste the whole URL the browser landed on (it contains code= and state=), or just the code"
        case .deviceCodeExpired:
            text =
                "the device code expired before it was approved; run `tokenvault authorize --device` again and approve sooner"
        case .unsupported(let detail):
            text = detail
        }
        if let t = trackingId { return "\(text) (trackingId \(Self.clip(t)))" }
        return text
    }

    static func oauthText(code: String, description: String?, status: Int) -> String {
        let said = description.map { " (\(clip($0)))" } ?? ""
        switch code {
        case "invalid_grant":
            return
                "the provider no longer accepts this grant\(said): the refresh token or code is expired, revoked or already used; run 'tokenvault authorize' for this account"
        case "invalid_client":
            return
                "the provider does not recognise the integration's client id and secret\(said); check them with `tokenvault integrations`, and set the right secret with `tokenvault integration edit NAME --client-secret-stdin`"
        case "invalid_scope":
            return "the provider refused the requested scopes\(said); request only scopes registered on the integration"
        case "unauthorized_client":
            return "the integration is not allowed to use this grant\(said); check its settings at the provider"
        case "access_denied":
            return "access was denied\(said); the user declined or may not grant these scopes"
        case "authorization_pending", "slow_down":
            return "the authorization is not approved yet\(said)"
        case "expired_token":
            return "the device code expired\(said); start again"
        default:
            return "the provider refused the request: \(clip(code))\(said) (HTTP \(status))"
        }
    }

    static func callbackText(code: String, description: String?) -> String {
        let said = description.map { " (\(clip($0)))" } ?? ""
        switch code {
        case "access_denied":
            return "authorization was declined in the browser\(said); run 'tokenvault authorize' again and accept"
        case "invalid_scope":
            return "the provider refused the requested scopes\(said); request only scopes registered on the integration"
        case "server_error", "temporarily_unavailable":
            return "the provider failed during authorization\(said); try again later"
        default:
            return
                "the provider returned an error to the browser: \(clip(code))\(said); run 'tokenvault authorize' again"
        }
    }

    /// Provider text goes into terminal output: keep it short and printable (again, for errors built elsewhere).
    static func clip(_ s: String) -> String { ProviderText.displayable(s) }

    /// `1 MiB`, `64 KiB`, `1000 bytes`.
    static func bytes(_ n: Int) -> String {
        if n >= 1 << 20, n % (1 << 20) == 0 { return "\(n >> 20) MiB" }
        if n >= 1 << 10, n % (1 << 10) == 0 { return "\(n >> 10) KiB" }
        return "\(n) bytes"
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s)
    }
}
