import Foundation
import TokenVaultCore

/// The live progress line on a terminal: done/total, counted as the summary counts, and the rate, or the wait
/// in progress while a retry waits (a rate would only go stale then).
final class RefreshProgress: @unchecked Sendable {
    private let total: Int
    private let console: any Console
    private let live: Bool
    private let started = Date()
    private let lock = NSLock()
    private var counts = Counts()
    private var waits: [RetryWait] = []
    private var lastDraw = Date.distantPast

    struct Counts: Equatable {
        var refreshed = 0, fresh = 0, needsReauth = 0, failed = 0
        /// Accounts without a refresh token, left alone: done from the start, and counted in the total as the
        /// summary counts them.
        var skipped = 0
        var done: Int { refreshed + fresh + needsReauth + failed + skipped }
    }

    init(total: Int, skipped: Int = 0, console: any Console, live: Bool) {
        self.total = total
        self.console = console
        self.live = live
        counts.skipped = skipped
    }

    func step(_ status: RefreshOutcome.Status) {
        let line: String? = lock.withLock {
            switch status {
            case .refreshed: counts.refreshed += 1
            case .alreadyFresh: counts.fresh += 1
            case .needsReauth: counts.needsReauth += 1
            case .failed, .pending: counts.failed += 1
            case .noRefresh: return nil
            }
            guard live, counts.done == total || Date().timeIntervalSince(lastDraw) > 0.1 else { return nil }
            return render()
        }
        if let line { console.err(line) }
    }

    /// A retry wait started (a wait) or ended (nil); drawn at once, whatever the last draw.
    func waiting(_ wait: RetryWait?) {
        let line: String? = lock.withLock {
            if let wait {
                waits.append(wait)
            } else if !waits.isEmpty {
                waits.removeFirst()
            }
            return live ? render() : nil
        }
        if let line { console.err(line) }
    }

    private func render() -> String {
        lastDraw = Date()
        let rate = Double(counts.done) / max(Date().timeIntervalSince(started), 0.001)
        // The longest wait in progress speaks for the line; a Retry-After is the provider's, so it is named.
        let wait = waits.max { ($0.retryAfter ? 1 : 0, $0.seconds) < ($1.retryAfter ? 1 : 0, $1.seconds) }
        return "\r\u{1B}[K" + Self.line(counts, total: total, rate: rate, waiting: wait)
    }

    /// "refresh-all: 6/10 done: 3 refreshed, 0 fresh, 3 need re-authorization, 0 failed, 140.0/s", or with
    /// "waiting 2s (Retry-After)" in place of the rate.
    static func line(_ c: Counts, total: Int, rate: Double, waiting: RetryWait?) -> String {
        let tail = waiting.map { "waiting \(Int($0.seconds.rounded(.up)))s (\($0.retryAfter ? "Retry-After" : "backoff"))" }
            ?? "\(String(format: "%.1f", rate))/s"
        let skipped = c.skipped > 0 ? ", \(c.skipped) skipped (no refresh token)" : ""
        return "refresh-all: \(c.done)/\(total) done: \(c.refreshed) refreshed, \(c.fresh) fresh, \(c.needsReauth) need re-authorization, \(c.failed) failed\(skipped), \(tail)"
    }

    func finish() { if live { console.err("\n") } }
}
