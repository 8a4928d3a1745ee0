import Foundation
import Synchronization
import VaultOAuth

/// Gives every request sent through it a share of one time budget that starts with the first request: once it is
/// spent, a request still waiting fails as timed out and further ones fail at once. Measured on the real clock,
/// because it bounds real network waits (a stalled provider), which no test clock can step.
public struct DeadlineTransport: HTTPTransport {
    let inner: any HTTPTransport
    let budget: TimeInterval
    private let start = StartOnce()

    public init(inner: any HTTPTransport, budget: TimeInterval) {
        self.inner = inner
        self.budget = budget
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let host = request.url.host.map { h in request.url.port.map { "\(h):\($0)" } ?? h } ?? "?"
        let remaining = start.instant().advanced(by: .milliseconds(Int64(budget * 1000))) - ContinuousClock.now
        guard remaining > .zero else { throw OAuthError.transport(.timedOut, host: host) }
        let once = ResumeOnce()
        let inner = inner
        // Not a task group: a group waits for its cancelled child, and a stalled request may not stop at once.
        return try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            let work = Task {
                let result: Result<HTTPResponse, any Error>
                do { result = .success(try await inner.send(request)) } catch { result = .failure(error) }
                once.resume(result)
            }
            Task {
                try? await Task.sleep(for: remaining)
                once.resume(.failure(OAuthError.transport(.timedOut, host: host)))
                work.cancel()
            }
        }
    }

    private final class StartOnce: Sendable {
        private let started = Mutex<ContinuousClock.Instant?>(nil)
        func instant() -> ContinuousClock.Instant {
            started.withLock { started in
                if let started { return started }
                let now = ContinuousClock.now
                started = now
                return now
            }
        }
    }

    private final class ResumeOnce: Sendable {
        private let continuation = Mutex<CheckedContinuation<HTTPResponse, any Error>?>(nil)

        func set(_ c: CheckedContinuation<HTTPResponse, any Error>) { continuation.withLock { $0 = c } }

        /// The first result wins; later ones are dropped.
        func resume(_ result: Result<HTTPResponse, any Error>) {
            let target = continuation.withLock { continuation in
                defer { continuation = nil }
                return continuation
            }
            target?.resume(with: result)
        }
    }
}
