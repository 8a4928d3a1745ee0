import Foundation
import Testing
import VaultOAuth

/// Real HTTP (the libcurl transport), but only to this machine: a test that would reach the internet fails loudly
/// instead. `before` sees every request before it is sent (to change a provider's state in between).
public struct LoopbackOnlyTransport: HTTPTransport {
    let inner: CurlTransport
    let before: (@Sendable (HTTPRequest) async -> Void)?

    public init(tracer: HTTPTracer?, before: (@Sendable (HTTPRequest) async -> Void)? = nil) {
        inner = CurlTransport(version: "test", timeout: 60, tracer: tracer)
        self.before = before
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let host = request.url.host, ["127.0.0.1", "localhost", "::1"].contains(host) else {
            Issue.record("a test tried to reach \(request.url.host ?? "?") over the network")
            throw OAuthError.transport(.cannotConnect, host: request.url.host ?? "?")
        }
        await before?(request)
        return try await inner.send(request)
    }
}
