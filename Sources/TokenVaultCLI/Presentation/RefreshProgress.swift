import Foundation
import Synchronization
import TokenVaultCore

/// The live progress line on a terminal: done/total, counted as the summary counts, and the rate, or the wait
/// in progress while a retry waits (a rate would only go stale then).
final class RefreshProgress: Sendable {
    private let total: Int
    private let console: any Console
    private let live: Bool
    private let started = Date()
    /// What changes as the refreshes go.
    private struct Drawn {
        var counts = Counts()
        var waits: [RetryWait] = []
        var lastDraw = Date.distantPast
    }
    private let state: Mutex<Drawn>

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
        var drawn = Drawn()
        drawn.counts.skipped = skipped
        state = Mutex(drawn)
    }

    func step(_ status: RefreshOutcome.Status) {
        let line: String? = state.withLock { state in
            switch status {
            case .refreshed: state.counts.refreshed += 1
            case .alreadyFresh: state.counts.fresh += 1
            case .needsReauth: state.counts.needsReauth += 1
            case .failed, .pending: state.counts.failed += 1
            case .noRefresh: return nil
            }
            guard live, state.counts.done == total || Date().timeIntervalSince(state.lastDraw) > 0.1 else { return nil }
            return render(&state)
        }
        if let line { console.err(line) }
    }

    /// A retry wait started (a wait) or ended (nil); drawn at once, whatever the last draw.
    func waiting(_ wait: RetryWait?) {
        let line: String? = state.withLock { state in
            if let wait {
                state.waits.append(wait)
            } else if !state.waits.isEmpty {
                state.waits.removeFirst()
            }
            return live ? render(&state) : nil
        }
        if let line { console.err(line) }
    }

    private func render(_ state: inout Drawn) -> String {
        state.lastDraw = Date()
        let rate = Double(state.counts.done) / max(Date().timeIntervalSince(started), 0.001)
        // The longest wait in progress speaks for the line; a Retry-After is the provider's, so it is named.
        let wait = state.waits.max { ($0.retryAfter ? 1 : 0, $0.seconds) < ($1.retryAfter ? 1 : 0, $1.seconds) }
        return "\r\u{1B}[K" + Self.line(state.counts, total: total, rate: rate, waiting: wait)
    }

    /// "refresh-all: 6/10 done: 3 refreshed, 0 fresh, 3 need re-authorization, 0 failed, 140.0/s", or with
    /// "waiting 2s (Retry-After)" in place of the rate.
    static func line(_ c: Counts, total: Int, rate: Double, waiting: RetryWait?) -> String {
        let tail =
            waiting.map { "waiting \(Int($0.seconds.rounded(.up)))s (\($0.retryAfter ? "Retry-After" : "backoff"))" }
            ?? "\(String(format: "%.1f", rate))/s"
        let skipped = c.skipped > 0 ? ", \(c.skipped) skipped (no refresh token)" : ""
        return
            "refresh-all: \(c.done)/\(total) done: \(c.refreshed) refreshed, \(c.fresh) fresh, \(c.needsReauth) need re-authorization, \(c.failed) failed\(skipped), \(tail)"
    }

    func finish() { if live { console.err("\n") } }
}
