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

/// The production transport: Foundation's URLSession configured to store nothing (no cookies, no cache,
/// nothing written to disk), a request timeout, `User-Agent: tokenvault/VERSION`, and no redirect following:
/// a token endpoint that redirects is misconfigured, and following it would carry the client secret elsewhere.
///
/// Bodies are read through a data delegate with a cap (``defaultMaxResponseBytes``): an announced
/// `Content-Length` over the cap is refused as soon as the headers arrive, and a body that grows past it
/// (chunked, or a server that never stops) is cancelled as soon as it crosses it. One bad endpoint or proxy
/// must not take the process's memory, or hold a nightly `refresh-all` for minutes.
public final class URLSessionTransport: HTTPTransport {
    public typealias Tracer = @Sendable (String) -> Void

    /// 1 MiB: an OAuth token response or `people/me` is a few hundred bytes to a few KiB.
    public static let defaultMaxResponseBytes = 1 << 20

    private let session: URLSession
    private let bodies: BodyCollectors
    private let userAgent: String
    private let tracer: Tracer?
    private let timeout: TimeInterval
    private let maxResponseBytes: Int

    /// - Parameters:
    ///   - version: tokenvault's version, sent as `User-Agent: tokenvault/VERSION`.
    ///   - timeout: seconds a request may wait for data before failing as timed out (a stalled provider).
    ///     Rounded up to whole seconds, at least 1: swift-corelibs-foundation truncates the interval to whole
    ///     seconds, so 0.5 would time out at once.
    ///   - maxResponseBytes: the largest response body accepted; a larger one fails with
    ///     ``OAuthError/responseTooLarge(limit:host:)``.
    ///   - tracer: receives one redacted line per request and per response (`--verbose`).
    public init(
        version: String, timeout: TimeInterval = 30, maxResponseBytes: Int = URLSessionTransport.defaultMaxResponseBytes,
        tracer: Tracer? = nil
    ) {
        let timeout = max(1, timeout.rounded(.up))
        self.timeout = timeout
        self.maxResponseBytes = max(maxResponseBytes, 0)
        // Not `.ephemeral`: on Linux it builds a URLCache of its own, whose initialiser creates
        // ~/.cache/org.swift.foundation.URLCache/<name>/ every time. `.default` refers to the shared cache and cookie
        // store instead (created once, out of the user's directories, by the executable's start-up), and everything
        // that would store anything is switched off below.
        let config = URLSessionConfiguration.default
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
        let bodies = BodyCollectors()
        self.bodies = bodies
        self.session = URLSession(configuration: config, delegate: bodies, delegateQueue: InlineDelegateQueue())
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
            (data, response) = try await fetch(r, host: Self.hostLabel(request.url))
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

    /// Runs one data task whose body goes to a capped collector; cancelling the calling task cancels it.
    private func fetch(_ request: URLRequest, host: String) async throws -> (Data, URLResponse) {
        let task = session.dataTask(with: request)
        let collector = BodyCollector(limit: maxResponseBytes, host: host, task: task)
        bodies.register(collector, for: task.taskIdentifier)
        defer { bodies.remove(task.taskIdentifier) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                collector.wait(continuation)
                task.resume()
            }
        } onCancel: {
            collector.finish(.failure(CancellationError()))
        }
    }

    static func hostLabel(_ url: URL) -> String {
        url.host.map { h in url.port.map { "\(h):\($0)" } ?? h } ?? url.absoluteString
    }

    static func ms(since start: ContinuousClock.Instant) -> String {
        let d = ContinuousClock.now - start
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return "\(ms) ms"
    }

    /// Maps URLSession failures to the module's transport errors, naming the host.
    static func map(_ error: Error, url: URL) -> OAuthError {
        if let e = error as? OAuthError { return e }
        let host = hostLabel(url)
        guard let u = error as? URLError else {
            if error is CancellationError { return .transport(.other("cancelled"), host: host) }
            return .transport(.other(String(describing: type(of: error))), host: host)
        }
        if isTLSFailure(u) { return .transport(.tls, host: host) }
        switch u.code {
        case .cannotFindHost, .dnsLookupFailed: return .transport(.cannotFindHost, host: host)
        case .cannotConnectToHost, .notConnectedToInternet: return .transport(.cannotConnect, host: host)
        case .timedOut: return .transport(.timedOut, host: host)
        // Foundation on Linux reports a body cut short of its Content-Length as "unknown" (-1).
        case .networkConnectionLost, .unknown: return .transport(.connectionLost, host: host)
        case .cancelled: return .transport(.other("cancelled"), host: host)
        case .badServerResponse: return .transport(.other("malformed HTTP response"), host: host)
        default: return .transport(.other("URLError \(u.code.rawValue)"), host: host)
        }
    }
}

extension URLSessionTransport {
    /// Words of libcurl's messages for certificate and handshake failures ("SSL certificate problem: self-signed
    /// certificate", "SSL: no alternative certificate subject name matches…", "…SSL routines::tlsv1 alert
    /// protocol version"). Not "SSL_read"/"SSL_write" alone: a reset in the middle of an HTTPS body is a lost
    /// connection, worth retrying.
    static let tlsFailureWords = ["certificate", "ssl routines", "handshake", "ssl connect error", "tls connect error", "alert", "ssl peer"]

    /// swift-corelibs-foundation reports every TLS failure as `URLError(.unknown)` (-1) with libcurl's message as
    /// the description, so the message is the only way to tell a bad certificate from a lost connection.
    static func isTLSFailure(_ error: URLError) -> Bool {
        switch error.code {
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
            .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected:
            return true
        case .unknown:
            var texts = [(error as NSError).localizedDescription]
            if let underlying = error.errorUserInfo[NSUnderlyingErrorKey] as? NSError { texts.append(underlying.localizedDescription) }
            let said = texts.joined(separator: " ").lowercased()
            return tlsFailureWords.contains { said.contains($0) }
        default:
            return false
        }
    }
}

/// The body of one data task, collected up to a limit. Finishes exactly once: with the body, or with the first
/// error (too large, cancelled, or the task's own failure); what arrives after that is dropped.
private final class BodyCollector: @unchecked Sendable {
    let limit: Int
    let host: String
    private let task: URLSessionDataTask
    private let lock = NSLock()
    private var body = Data()
    private var response: URLResponse?
    private var result: Result<(Data, URLResponse), Error>?
    private var continuation: CheckedContinuation<(Data, URLResponse), Error>?

    init(limit: Int, host: String, task: URLSessionDataTask) {
        self.limit = limit
        self.host = host
        self.task = task
    }

    var tooLarge: OAuthError { .responseTooLarge(limit: limit, host: host) }

    func wait(_ c: CheckedContinuation<(Data, URLResponse), Error>) {
        let ready: Result<(Data, URLResponse), Error>? = lock.withLock {
            if let result { return result }
            continuation = c
            return nil
        }
        if let ready { c.resume(with: ready) }
    }

    /// The headers arrived. An announced length over the limit ends the task before any of the body is read.
    func received(_ r: URLResponse) {
        if r.expectedContentLength > Int64(limit) {
            finish(.failure(tooLarge))
            return
        }
        lock.withLock { response = r }
    }

    /// A piece of the body; crossing the limit ends the task at once. What still arrives before the cancellation
    /// lands is dropped, not kept.
    func received(_ data: Data) {
        let over: Bool = lock.withLock {
            guard result == nil else { return false }
            if body.count + data.count > limit { return true }
            body.append(data)
            return false
        }
        if over { finish(.failure(tooLarge)) }
    }

    /// A 401 carrying an authentication challenge, answered by cancelling the challenge (see
    /// ``BodyCollectors/urlSession(_:task:didReceive:completionHandler:)``): the task then fails as cancelled, and
    /// this response, without its body, is what the client gets.
    private var challenged: URLResponse?

    func challenge(_ response: URLResponse?) {
        lock.withLock { challenged = response }
    }

    func completed(_ error: Error?) {
        if let error {
            if let challenged = lock.withLock({ challenged }) { finish(.success((Data(), challenged))); return }
            finish(.failure(error))
            return
        }
        let done: Result<(Data, URLResponse), Error> = lock.withLock {
            guard let response else { return .failure(URLError(.badServerResponse)) }
            return .success((body, response))
        }
        finish(done)
    }

    /// Delivers the first result; an error also cancels the task, so libcurl stops reading and closes the socket.
    func finish(_ r: Result<(Data, URLResponse), Error>) {
        let (waiting, first): (CheckedContinuation<(Data, URLResponse), Error>?, Bool) = lock.withLock {
            guard result == nil else { return (nil, false) }
            result = r
            body = Data()
            let c = continuation
            continuation = nil
            return (c, true)
        }
        guard first else { return }
        if case .failure = r {
            // Not here: this may run on the session's work queue (see ``InlineDelegateQueue``), and cancel() waits
            // for that queue on swift-corelibs-foundation 6.3.
            let task = task
            DispatchQueue.global().async { task.cancel() }
        }
        waiting?.resume(with: r)
    }
}

/// Runs each delegate callback at once, on the thread that delivers it (the session's work queue, inside
/// libcurl's callbacks), instead of queueing it.
///
/// Why: swift-corelibs-foundation hands every piece of a body to the delegate queue as a new operation and never
/// pauses libcurl. Against an endless body on loopback the queued operations outran the delegate: 600 MB read
/// and 700 MB resident before the cancel got through, against 47 MB resident with the callbacks run inline.
/// The callbacks only take a lock and append (or drop) bytes, so running them inline costs libcurl nothing; they
/// must never wait for the session's queues (see ``BodyCollector/finish(_:)``).
///
/// What this cannot fix: `cancel()` itself waits for the work queue that libcurl's read loop holds while data
/// keeps arriving, so after a refusal libcurl may go on reading (and this collector dropping) for a while.
final class InlineDelegateQueue: OperationQueue, @unchecked Sendable {
    override func addOperation(_ block: @escaping @Sendable () -> Void) { block() }
}

/// The session's delegate: routes each task's callbacks to its ``BodyCollector`` and refuses every redirect so
/// the 3xx itself reaches the client.
private final class BodyCollectors: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private var collectors: [Int: BodyCollector] = [:]

    func register(_ c: BodyCollector, for id: Int) { lock.withLock { collectors[id] = c } }
    func remove(_ id: Int) { _ = lock.withLock { collectors.removeValue(forKey: id) } }
    private func collector(_ id: Int) -> BodyCollector? { lock.withLock { collectors[id] } }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        guard let c = collector(dataTask.taskIdentifier) else { completionHandler(.cancel); return }
        c.received(response)
        // swift-corelibs-foundation ignores the disposition; the collector cancels the task itself when needed.
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        collector(dataTask.taskIdentifier)?.received(data)
    }

    /// A 401 with `WWW-Authenticate` (RFC 6749 §5.2 requires one when a client sent wrong Basic credentials).
    /// tokenvault never answers challenges; and swift-corelibs-foundation 6.3.1 hangs the task forever when the
    /// default handling is asked for (swiftlang/swift-corelibs-foundation#5456). So the challenge is cancelled and
    /// the 401 itself, headers without body, is handed to the client, which reports the refusal.
    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        collector(task.taskIdentifier)?.challenge(challenge.failureResponse)
        // Not inline: this runs on the session's work queue (``InlineDelegateQueue``), and cancelling waits for it.
        DispatchQueue.global().async { completionHandler(.cancelAuthenticationChallenge, nil) }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        collector(task.taskIdentifier)?.completed(error)
    }
}
