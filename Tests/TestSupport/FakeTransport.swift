import Foundation
import Testing
import VaultOAuth

/// Answers requests without a network, from a script (one answer per request, in order) or a function, and keeps
/// the requests. A request with no answer fails the test loudly.
public final class FakeTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var script: [Result<HTTPResponse, OAuthError>]
    private let answer: (@Sendable (HTTPRequest) -> HTTPResponse?)?
    private var recorded: [HTTPRequest] = []

    public init(_ script: [Result<HTTPResponse, OAuthError>] = []) {
        self.script = script
        answer = nil
    }

    /// `answer` nil: the request was not expected.
    public init(_ answer: @escaping @Sendable (HTTPRequest) -> HTTPResponse?) {
        script = []
        self.answer = answer
    }

    public var requests: [HTTPRequest] { lock.withLock { recorded } }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let next: Result<HTTPResponse, OAuthError>? = lock.withLock {
            recorded.append(request)
            if let answer { return answer(request).map { .success($0) } }
            return script.isEmpty ? nil : script.removeFirst()
        }
        guard let next else {
            Issue.record("unexpected request \(request.method) \(request.url)")
            throw OAuthError.transport(.other("no answer for this request"), host: "fake")
        }
        return try next.get()
    }
}
