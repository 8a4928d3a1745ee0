import Foundation
import Testing

@testable import VaultOAuth

@Suite struct RetryPolicyTests {
    let transient = OAuthError.server(status: 503, trackingId: nil)

    @Test func exponentialBackoffWithFullJitterAndCap() {
        let top = RetryPolicy(maxAttempts: 20, random: { 0.999_999 })
        #expect(abs(top.delay(forAttempt: 1, error: transient)! - 0.5) < 0.001)
        #expect(abs(top.delay(forAttempt: 2, error: transient)! - 1.0) < 0.001)
        #expect(abs(top.delay(forAttempt: 4, error: transient)! - 4.0) < 0.001)
        #expect(abs(top.delay(forAttempt: 10, error: transient)! - 30) < 0.001)
        #expect(abs(top.delay(forAttempt: 19, error: transient)! - 30) < 0.001)
        let half = RetryPolicy(random: { 0.5 })
        #expect(half.delay(forAttempt: 3, error: transient) == 1.0)
        let zero = RetryPolicy(random: { 0 })
        #expect(zero.delay(forAttempt: 3, error: OAuthError.transport(.timedOut, host: "h")) == 0)
    }

    @Test func retryAfterIsHonoured() {
        let p = RetryPolicy(random: { 0.999 })
        #expect(p.delay(forAttempt: 1, error: OAuthError.rateLimited(retryAfter: 7, trackingId: nil)) == 7)
        // Backoff larger than Retry-After wins.
        let d = p.delay(forAttempt: 4, error: OAuthError.rateLimited(retryAfter: 1, trackingId: nil))!
        #expect(d > 3.9 && d < 4.0)
        // An absurd Retry-After gives up rather than stall the run.
        #expect(p.delay(forAttempt: 1, error: OAuthError.rateLimited(retryAfter: 3600, trackingId: nil)) == nil)
    }

    @Test func finalErrorsAndExhaustion() {
        let p = RetryPolicy(maxAttempts: 3, random: { 0.5 })
        #expect(
            p.delay(
                forAttempt: 1,
                error: OAuthError.oauth(code: "invalid_grant", description: nil, status: 400, trackingId: nil)) == nil)
        #expect(
            p.delay(
                forAttempt: 1,
                error: OAuthError.oauth(code: "invalid_client", description: nil, status: 401, trackingId: nil)) == nil)
        #expect(p.delay(forAttempt: 1, error: OAuthError.api(status: 404, message: nil, trackingId: nil)) == nil)
        #expect(p.delay(forAttempt: 1, error: OAuthError.unexpectedBody(.html, status: 200, trackingId: nil)) == nil)
        #expect(p.delay(forAttempt: 1, error: OAuthError.unexpectedBody(.html, status: 502, trackingId: nil)) != nil)
        #expect(p.delay(forAttempt: 1, error: CancellationError()) == nil)
        #expect(p.delay(forAttempt: 2, error: transient) != nil)
        #expect(p.delay(forAttempt: 3, error: transient) == nil)
    }

    @Test func runRetriesThenSucceeds() async throws {
        let p = RetryPolicy(random: { 0.5 })
        let errors: [OAuthError] = [
            .rateLimited(retryAfter: 2, trackingId: nil), .server(status: 502, trackingId: nil),
        ]
        var calls = 0
        var slept: [Double] = []
        let value = try await p.run(sleep: { slept.append($0) }) { () async throws -> String in
            calls += 1
            if calls <= errors.count { throw errors[calls - 1] }
            return "ok"
        }
        #expect(value == "ok")
        #expect(calls == 3)
        #expect(slept == [2, 0.5])
    }

    @Test func runStopsOnInvalidGrantAndAfterMaxAttempts() async throws {
        let p = RetryPolicy(maxAttempts: 4, random: { 0.5 })
        var calls = 0
        await #expect(throws: OAuthError.oauth(code: "invalid_grant", description: nil, status: 400, trackingId: nil)) {
            try await p.run(sleep: { _ in }) { () async throws -> Int in
                calls += 1
                throw OAuthError.oauth(code: "invalid_grant", description: nil, status: 400, trackingId: nil)
            }
        }
        #expect(calls == 1)
        calls = 0
        var sleeps = 0
        await #expect(throws: OAuthError.server(status: 500, trackingId: nil)) {
            try await p.run(sleep: { _ in sleeps += 1 }) { () async throws -> Int in
                calls += 1
                throw OAuthError.server(status: 500, trackingId: nil)
            }
        }
        #expect(calls == 4)
        #expect(sleeps == 3)
    }
}
