/// When to try a failed request again: capped exponential backoff with full jitter, Retry-After honoured.
///
/// Pure (randomness injected, sleeping left to ``run(sleep:_:)``'s caller) so that tests step through delays
/// without waiting. Only errors that ``OAuthError/retryable`` calls transient are retried: every 4xx,
/// `invalid_grant` above all, is final, because repeating it cannot succeed and, with a rotating provider,
/// resending a refresh token can only make things worse.
public struct RetryPolicy: Sendable {
    /// Total attempts including the first.
    public var maxAttempts: Int
    /// Backoff ceiling for the first retry, doubled for each further one.
    public var base: Double
    /// Largest backoff (before jitter).
    public var cap: Double
    /// A Retry-After longer than this gives up instead of waiting: an hour-long stall of a nightly run is worse
    /// than reporting the account as failed.
    public var maxRetryAfter: Double
    /// Uniform random number in 0..<1 for full jitter.
    public var random: @Sendable () -> Double

    public init(
        maxAttempts: Int = 5, base: Double = 0.5, cap: Double = 30, maxRetryAfter: Double = 300,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.maxAttempts = maxAttempts
        self.base = base
        self.cap = cap
        self.maxRetryAfter = maxRetryAfter
        self.random = random
    }

    /// The wait before the next attempt, or nil to give up.
    /// - Parameter attempt: how many attempts have been made so far (1 after the first failure).
    public func delay(forAttempt attempt: Int, error: any Error) -> Double? {
        guard attempt >= 1, attempt < maxAttempts else { return nil }
        guard let e = error as? OAuthError, e.retryable else { return nil }
        // Full jitter (AWS architecture blog): uniform in 0...min(cap, base·2^(n-1)), so that many accounts
        // failing together do not retry together.
        let ceiling = min(cap, base * Double(1 << min(attempt - 1, 30)))
        let backoff = ceiling * min(max(random(), 0), 1)
        if let after = e.retryAfter {
            guard after <= maxRetryAfter else { return nil }
            return max(after, backoff)
        }
        return backoff
    }

    /// Runs `op`, sleeping and retrying as ``delay(forAttempt:error:)`` says; rethrows the last error.
    /// `willWait` hears of each wait before it starts, with the error that caused it (a progress line shows it).
    public func run<T>(
        isolation: isolated (any Actor)? = #isolation,
        sleep: (Double) async throws -> Void,
        willWait: ((_ seconds: Double, _ after: any Error) -> Void)? = nil,
        _ op: () async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await op()
            } catch {
                guard let wait = delay(forAttempt: attempt, error: error) else { throw error }
                willWait?(wait, error)
                try await sleep(wait)
            }
        }
    }
}
