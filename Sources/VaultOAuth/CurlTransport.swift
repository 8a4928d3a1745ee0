import CCurl
import Foundation

/// The production transport: libcurl (loaded at the first request, see ``CurlLibrary``), driven by one thread for
/// all requests of the process (``CurlMulti``), with connections kept alive per host between requests.
///
/// What it does, and what the tests pin down:
/// - No redirects followed: a token endpoint that redirects is misconfigured, and following it would carry the
///   client secret elsewhere. The 3xx itself is returned.
/// - Only `http` and `https`; TLS certificates and host names always verified, against the system's CA store;
///   certificate and handshake failures named as TLS failures (``OAuthError/TransportProblem/tls``), not retried.
/// - A request that gets no data for `timeout` seconds fails as timed out; the whole exchange is bounded too.
/// - Response bodies are capped (``defaultMaxResponseBytes``): an announced `Content-Length` over the cap is
///   refused when the headers arrive, and a body that grows past it is cut off as it crosses it. One bad endpoint
///   or proxy must not take the process's memory, or hold a nightly `refresh-all` for minutes.
/// - Nothing stored: no cookies, no cache, no `.netrc`, no HSTS or alt-svc files. Proxies come from the
///   environment as libcurl reads them (`http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`).
/// - `User-Agent: tokenvault/VERSION`, `Accept: application/json` unless the request sets them; no
///   `Expect: 100-continue` round trip. libcurl's own verbose output is never switched on: `--verbose` traces go
///   through ``Redaction`` only.
public struct CurlTransport: HTTPTransport {
    public typealias Tracer = HTTPTracer

    /// 1 MiB: an OAuth token response or `people/me` is a few hundred bytes to a few KiB.
    public static let defaultMaxResponseBytes = 1 << 20

    /// What every request of this transport is given.
    struct Limits: Sendable {
        /// Whole seconds without data before a request fails as timed out (libcurl's low-speed window).
        var idleSeconds: Int
        /// Milliseconds the whole exchange may take.
        var totalMilliseconds: Int
        var maxResponseBytes: Int
    }

    let limits: Limits
    let userAgent: String
    let tracer: Tracer?

    /// - Parameters:
    ///   - version: tokenvault's version, sent as `User-Agent: tokenvault/VERSION`.
    ///   - timeout: seconds a request may wait for data before failing as timed out (a stalled provider); rounded up
    ///     to whole seconds, at least 1. The whole exchange may take twice that, or that plus 30 s if longer, so a
    ///     provider that trickles bytes cannot hold a refresh forever.
    ///   - maxResponseBytes: the largest response body accepted; a larger one fails with
    ///     ``OAuthError/responseTooLarge(limit:host:)``.
    ///   - tracer: receives one redacted line per request and per response (`--verbose`).
    public init(
        version: String, timeout: TimeInterval = 30, maxResponseBytes: Int = CurlTransport.defaultMaxResponseBytes,
        tracer: Tracer? = nil
    ) {
        let seconds = max(1, Int(timeout.rounded(.up)))
        limits = Limits(
            idleSeconds: seconds, totalMilliseconds: max(2 * seconds, seconds + 30) * 1000,
            maxResponseBytes: max(maxResponseBytes, 0))
        userAgent = "tokenvault/\(version)"
        self.tracer = tracer
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        tracer?(Redaction.describe(request))
        let start = ContinuousClock.now
        do {
            let multi = try CurlMulti.shared.get()
            let response = try await multi.perform(
                CurlTransfer(request: request, headerLines: headerLines(request), limits: limits))
            tracer?(Redaction.describe(response, for: request, duration: Self.ms(since: start)))
            return response
        } catch {
            let mapped = Self.map(error, url: request.url)
            tracer?(
                "\(request.method) \(Redaction.url(request.url)) failed after \(Self.ms(since: start)): \(mapped.localizedDescription)"
            )
            throw mapped
        }
    }

    /// The request's headers as libcurl takes them, with the transport's defaults.
    func headerLines(_ request: HTTPRequest) -> [String] {
        var lines = request.headers.map { name, value in
            // `Name;` is libcurl's way to send a header with an empty value (`Name:` would remove it).
            value.isEmpty ? "\(name);" : "\(name): \(value)"
        }
        if request.header("User-Agent") == nil { lines.append("User-Agent: \(userAgent)") }
        if request.header("Accept") == nil { lines.append("Accept: application/json") }
        lines.append("Expect:")
        return lines
    }

    static func hostLabel(_ url: URL) -> String {
        url.host.map { h in url.port.map { "\(h):\($0)" } ?? h } ?? url.absoluteString
    }

    static func ms(since start: ContinuousClock.Instant) -> String {
        let d = ContinuousClock.now - start
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return "\(ms) ms"
    }

    /// Errors that are not already the module's (cancellation, libcurl missing) as transport errors naming the host.
    static func map(_ error: Error, url: URL) -> OAuthError {
        if let e = error as? OAuthError { return e }
        let host = hostLabel(url)
        if error is CancellationError { return .transport(.other("cancelled"), host: host) }
        if let e = error as? CurlLibrary.LoadError { return .transport(.missingLibrary(e.description), host: host) }
        return .transport(.other(String(describing: type(of: error))), host: host)
    }

    /// libcurl's result codes for certificate and handshake failures.
    static let tlsFailures: Set<UInt32> = [
        CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
        CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS,
        CURLE_SSL_CRL_BADFILE, CURLE_USE_SSL_FAILED, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
        CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_CLIENTCERT,
    ].reduce(into: []) { $0.insert($1.rawValue) }

    /// Words of libcurl's message when a handshake (`CURLE_SSL_CONNECT_ERROR`) ended because the connection went,
    /// not because of TLS ("OpenSSL SSL_connect: Connection reset by peer", "SSL_ERROR_SYSCALL"): that is a lost
    /// connection, worth retrying.
    static let lostDuringHandshake = ["reset by peer", "ssl_error_syscall", "unexpected eof", "connection refused"]

    /// A failed transfer as the module's error. `message` is libcurl's error buffer (host names and library
    /// words, never request data); only the TLS classification reads it.
    static func map(_ code: CURLcode, message: String, host: String, limit: Int) -> OAuthError {
        if tlsFailures.contains(code.rawValue) {
            let said = message.lowercased()
            if code == CURLE_SSL_CONNECT_ERROR, lostDuringHandshake.contains(where: { said.contains($0) }) {
                return .transport(.connectionLost, host: host)
            }
            return .transport(.tls, host: host)
        }
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return .transport(.cannotFindHost, host: host)
        case CURLE_COULDNT_CONNECT: return .transport(.cannotConnect, host: host)
        case CURLE_OPERATION_TIMEDOUT: return .transport(.timedOut, host: host)
        case CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return .transport(.connectionLost, host: host)
        case CURLE_FILESIZE_EXCEEDED: return .responseTooLarge(limit: limit, host: host)
        case CURLE_WEIRD_SERVER_REPLY: return .transport(.other("malformed HTTP response"), host: host)
        case CURLE_UNSUPPORTED_PROTOCOL: return .transport(.other("only http and https URLs are used"), host: host)
        case CURLE_URL_MALFORMAT: return .transport(.other("malformed URL"), host: host)
        default: return .transport(.other("libcurl error \(code.rawValue)"), host: host)
        }
    }
}

/// One request in flight: made by ``CurlTransport/send(_:)``, run by ``CurlMulti``'s thread, which alone touches
/// the fields marked so, and answered exactly once through ``finish(_:)`` (the answer, an error, or cancellation).
// @unchecked: its easy handle, header list and error buffer are C pointers that only CurlMulti's thread touches.
final class CurlTransfer: @unchecked Sendable {
    let request: HTTPRequest
    let headerLines: [String]
    let limits: CurlTransport.Limits
    let host: String

    // The multi's thread only.
    var easy: UnsafeMutableRawPointer?
    var headerList: UnsafeMutablePointer<curl_slist>?
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    private var headers: [String: String] = [:]
    private var body = Data()
    private var tooLarge = false

    private let lock = NSLock()
    private var continuation: CheckedContinuation<HTTPResponse, Error>?
    private var outcome: Result<HTTPResponse, Error>?

    init(request: HTTPRequest, headerLines: [String], limits: CurlTransport.Limits) {
        self.request = request
        self.headerLines = headerLines
        self.limits = limits
        self.host = CurlTransport.hostLabel(request.url)
        errorBuffer[0] = 0
    }

    deinit { errorBuffer.deallocate() }

    /// Sets every option of a fresh (or reset) easy handle for this request.
    func configure(_ easy: UnsafeMutableRawPointer, _ curl: CurlLibrary) {
        self.easy = easy
        let me = Unmanaged.passUnretained(self).toOpaque()
        curl.set(easy, CURLOPT_URL, request.url.absoluteString)
        curl.set(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        curl.set(easy, CURLOPT_NOSIGNAL, 1)  // threads, not SIGALRM, for name lookups
        curl.set(easy, CURLOPT_SSL_VERIFYPEER, 1)
        curl.set(easy, CURLOPT_SSL_VERIFYHOST, 2)
        curl.set(easy, CURLOPT_FOLLOWLOCATION, 0)
        curl.set(easy, CURLOPT_CONNECTTIMEOUT_MS, limits.idleSeconds * 1000)
        curl.set(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        curl.set(easy, CURLOPT_LOW_SPEED_TIME, limits.idleSeconds)
        curl.set(easy, CURLOPT_TIMEOUT_MS, limits.totalMilliseconds)
        curl.set(easy, CURLOPT_MAXFILESIZE_LARGE, offset: Int64(limits.maxResponseBytes))
        curl.set(easy, CURLOPT_ERRORBUFFER, pointer: errorBuffer)
        curl.set(easy, CURLOPT_WRITEFUNCTION, callback: receiveBody)
        curl.set(easy, CURLOPT_WRITEDATA, pointer: me)
        curl.set(easy, CURLOPT_HEADERFUNCTION, callback: receiveHeader)
        curl.set(easy, CURLOPT_HEADERDATA, pointer: me)
        for line in headerLines { headerList = curl.slistAppend(headerList, line) }
        curl.set(easy, CURLOPT_HTTPHEADER, pointer: headerList)
        switch request.method {
        case "GET": curl.set(easy, CURLOPT_HTTPGET, 1)
        case "HEAD": curl.set(easy, CURLOPT_NOBODY, 1)
        default:
            if request.method != "POST" { curl.set(easy, CURLOPT_CUSTOMREQUEST, request.method) }
            if let body = request.body ?? (request.method == "POST" ? Data() : nil) {
                curl.set(easy, CURLOPT_POST, 1)
                curl.set(easy, CURLOPT_POSTFIELDSIZE_LARGE, offset: Int64(body.count))
                if body.isEmpty {
                    curl.set(easy, CURLOPT_COPYPOSTFIELDS, "")
                } else {
                    body.withUnsafeBytes { _ = curl.set(easy, CURLOPT_COPYPOSTFIELDS, pointer: $0.baseAddress) }
                }
            }
        }
    }

    /// The handle is done with (finished, failed or cancelled): the header list goes, the handle is the caller's.
    func detach(_ curl: CurlLibrary) {
        curl.slistFreeAll(headerList)
        headerList = nil
        easy = nil
    }

    /// The outcome of a transfer libcurl finished with `code`.
    func completed(_ code: CURLcode, status: Int) -> Result<HTTPResponse, Error> {
        if code == CURLE_OK { return .success(HTTPResponse(status: status, headers: headers, body: body)) }
        if tooLarge { return .failure(OAuthError.responseTooLarge(limit: limits.maxResponseBytes, host: host)) }
        let message = String(cString: errorBuffer)
        return .failure(CurlTransport.map(code, message: message, host: host, limit: limits.maxResponseBytes))
    }

    /// A piece of the body; false (stop) once it would cross the cap.
    fileprivate func received(body bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.count + bytes.count <= limits.maxResponseBytes else {
            tooLarge = true
            return false
        }
        body.append(contentsOf: bytes)
        return true
    }

    /// One header line. A status line starts a new set: 1xx interim answers and a proxy's CONNECT answer come before
    /// the real one. Repeated headers (in any case) are joined with ", ", as HTTP allows. Parsed on the bytes: this
    /// runs for every header of every response.
    fileprivate func received(headerLine bytes: UnsafeRawBufferPointer) {
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A }
        var line = bytes[...]
        while let last = line.last, isSpace(last) { line = line.dropLast() }
        if line.starts(with: "HTTP/".utf8) {
            headers = [:]
            return
        }
        // The end of the head, or an obsolete folded line: nothing to keep.
        guard let first = line.first, !isSpace(first), let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            return
        }
        var value = line[line.index(after: colon)...]
        while let c = value.first, isSpace(c) { value = value.dropFirst() }
        var name = String(decoding: line[..<colon], as: UTF8.self)
        let text = String(decoding: value, as: UTF8.self)
        if headers[name] == nil, let seen = headers.keys.first(where: { sameHeaderName($0, name) }) { name = seen }
        headers[name] = headers[name].map { "\($0), \(text)" } ?? text
    }

    var isFinished: Bool { lock.withLock { outcome != nil } }

    func wait(_ c: CheckedContinuation<HTTPResponse, Error>) {
        let ready: Result<HTTPResponse, Error>? = lock.withLock {
            if let outcome { return outcome }
            continuation = c
            return nil
        }
        if let ready { c.resume(with: ready) }
    }

    /// Delivers the first outcome; later ones (a completion after a cancellation) are dropped.
    func finish(_ result: Result<HTTPResponse, Error>) {
        let waiting: CheckedContinuation<HTTPResponse, Error>? = lock.withLock {
            guard outcome == nil else { return nil }
            outcome = result
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(with: result)
    }
}

private let receiveBody: curl_write_callback = { bytes, size, count, transfer in
    let t = Unmanaged<CurlTransfer>.fromOpaque(transfer!).takeUnretainedValue()
    return t.received(body: UnsafeRawBufferPointer(start: bytes, count: size * count)) ? size * count : 0
}

private let receiveHeader: curl_write_callback = { bytes, size, count, transfer in
    Unmanaged<CurlTransfer>.fromOpaque(transfer!).takeUnretainedValue()
        .received(headerLine: UnsafeRawBufferPointer(start: bytes, count: size * count))
    return size * count
}
