import Foundation

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
    return headers.first { sameHeaderName($0.key, name) }?.value
}

/// Header names compare without regard to ASCII case (RFC 9110 §5.1). Compared byte by byte, without lowercased
/// copies: every response's headers are looked up several times.
func sameHeaderName(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    return zip(a.utf8, b.utf8).allSatisfy { x, y in
        x == y || (x | 0x20 == y | 0x20 && (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(x | 0x20))
    }
}

/// Sends HTTP requests. The only way ``OAuthClient`` reaches the network, so tests substitute a fake
/// that records requests and answers from a script. The production one is ``CurlTransport``.
public protocol HTTPTransport: Sendable {
    /// Sends one request; HTTP error statuses are returned, not thrown. Throws ``OAuthError/transport(_:host:)``
    /// when no HTTP answer arrived.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// Receives one redacted line per request and per response (`--verbose`).
public typealias HTTPTracer = @Sendable (String) -> Void
