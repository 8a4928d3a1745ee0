import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP request as plain data, so a fake transport can record and compare it.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var url: URL
    /// Header names as sent; look them up with ``header(_:)``, which ignores case.
    public var headers: [String: String]
    public var body: Data?

    public init(method: String, url: URL, headers: [String: String] = [:], body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { lookup(headers, name) }

    /// The body decoded as a form, for tests and for redaction.
    public var formFields: [String: String] {
        guard let body, let text = String(data: body, encoding: .utf8) else { return [:] }
        return Dictionary(FormEncoding.decode(text), uniquingKeysWith: { first, _ in first })
    }
}

/// One HTTP response as plain data.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { lookup(headers, name) }
}

func lookup(_ headers: [String: String], _ name: String) -> String? {
    if let exact = headers[name] { return exact }
    let lower = name.lowercased()
    return headers.first { $0.key.lowercased() == lower }?.value
}

/// Sends HTTP requests. The only way ``OAuthClient`` reaches the network, so tests substitute a fake
/// that records requests and answers from a script.
public protocol HTTPTransport: Sendable {
    /// Sends one request; HTTP error statuses are returned, not thrown. Throws ``OAuthError/transport(_:host:)``
    /// when no HTTP answer arrived.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// The production transport: Foundation's URLSession with an ephemeral configuration (no cookies, no cache,
/// nothing written to disk), a request timeout, `User-Agent: tokenvault/VERSION`, and no redirect following:
/// a token endpoint that redirects is misconfigured, and following it would carry the client secret elsewhere.
public final class URLSessionTransport: HTTPTransport {
    public typealias Tracer = @Sendable (String) -> Void

    private let session: URLSession
    private let userAgent: String
    private let tracer: Tracer?
    private let timeout: TimeInterval

    /// - Parameters:
    ///   - version: tokenvault's version, sent as `User-Agent: tokenvault/VERSION`.
    ///   - timeout: seconds a request may wait for data before failing as timed out (a stalled provider).
    ///     Rounded up to whole seconds, at least 1: swift-corelibs-foundation truncates the interval to whole
    ///     seconds, so 0.5 would time out at once.
    ///   - tracer: receives one redacted line per request and per response (`--verbose`).
    public init(version: String, timeout: TimeInterval = 30, tracer: Tracer? = nil) {
        let timeout = max(1, timeout.rounded(.up))
        self.timeout = timeout
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        // Bound the whole exchange too, so a provider that trickles bytes cannot hold a refresh forever.
        config.timeoutIntervalForResource = max(timeout * 2, timeout + 30)
        config.httpCookieAcceptPolicy = .never
        config.httpShouldSetCookies = false
        config.httpCookieStorage = nil
        config.urlCache = nil
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        config.urlCredentialStorage = nil
        // The default of 6 (libcurl's per-host limit on Linux) silently caps `refresh-all --concurrency`;
        // callers bound their own concurrency.
        config.httpMaximumConnectionsPerHost = 256
        self.session = URLSession(configuration: config, delegate: NoRedirects(), delegateQueue: nil)
        self.userAgent = "tokenvault/\(version)"
        self.tracer = tracer
    }

    deinit { session.finishTasksAndInvalidate() }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var r = URLRequest(url: request.url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        r.httpMethod = request.method
        r.httpBody = request.body
        r.httpShouldHandleCookies = false
        for (name, value) in request.headers { r.setValue(value, forHTTPHeaderField: name) }
        if request.header("User-Agent") == nil { r.setValue(userAgent, forHTTPHeaderField: "User-Agent") }
        if request.header("Accept") == nil { r.setValue("application/json", forHTTPHeaderField: "Accept") }

        tracer?(Redaction.describe(request))
        let start = ContinuousClock.now
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: r)
        } catch {
            let mapped = Self.map(error, url: request.url)
            tracer?("\(request.method) \(Redaction.url(request.url)) failed after \(Self.ms(since: start)): \(mapped.localizedDescription)")
            throw mapped
        }
        guard let http = response as? HTTPURLResponse else {
            throw OAuthError.transport(.other("not an HTTP response"), host: request.url.host ?? "?")
        }
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields {
            if let k = k as? String, let v = v as? String { headers[k] = v }
        }
        let result = HTTPResponse(status: http.statusCode, headers: headers, body: data)
        tracer?(Redaction.describe(result, for: request, duration: Self.ms(since: start)))
        return result
    }

    static func ms(since start: ContinuousClock.Instant) -> String {
        let d = ContinuousClock.now - start
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return "\(ms) ms"
    }

    /// Maps URLSession failures to the module's transport errors, naming the host.
    static func map(_ error: Error, url: URL) -> OAuthError {
        if let e = error as? OAuthError { return e }
        let host = url.host.map { h in url.port.map { "\(h):\($0)" } ?? h } ?? url.absoluteString
        guard let u = error as? URLError else {
            if error is CancellationError { return .transport(.other("cancelled"), host: host) }
            return .transport(.other(String(describing: type(of: error))), host: host)
        }
        switch u.code {
        case .cannotFindHost, .dnsLookupFailed: return .transport(.cannotFindHost, host: host)
        case .cannotConnectToHost, .notConnectedToInternet: return .transport(.cannotConnect, host: host)
        case .timedOut: return .transport(.timedOut, host: host)
        // Foundation on Linux reports a body cut short of its Content-Length as "unknown" (-1).
        case .networkConnectionLost, .unknown: return .transport(.connectionLost, host: host)
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
            .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected:
            return .transport(.tls, host: host)
        case .cancelled: return .transport(.other("cancelled"), host: host)
        case .badServerResponse: return .transport(.other("malformed HTTP response"), host: host)
        default: return .transport(.other("URLError \(u.code.rawValue)"), host: host)
        }
    }
}

/// Refuses every redirect so the 3xx itself reaches the client.
private final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
