import Foundation
import VaultStore

/// The one rule for times in the future. Every expiry is the time the pair was stored (`updated_at`) plus a
/// lifetime the provider returned, so a pair "stored" later than now (a clock that ran ahead during a refresh, or an
/// edited file) has lifetimes that cannot be trusted: it would count as fresh, `ok` and not due until the refresh
/// token died. Such an account is treated as stale instead: refresh-all and refresh-on-use refresh it, `list` shows
/// `stale`, and each says why once.
public enum ClockAhead {
    /// Clock skew tolerated between the machines or moments that wrote the vault.
    public static let tolerance: TimeInterval = 300

    /// Pairs stored after this moment are "ahead" at `now`.
    public static func limit(now: Date) -> Date { now.addingTimeInterval(tolerance) }

    public static func isAhead(updatedAt: Date, now: Date) -> Bool { updatedAt > limit(now: now) }

    public static func isAhead(_ account: Account, now: Date) -> Bool {
        isAhead(updatedAt: account.updatedAt, now: now)
    }

    /// The warning each command prints once per such account; `then` says what the command does about it.
    public static func warning(account: String, updatedAt: Date, now: Date, then: String) -> String {
        "account '\(account)' was last stored at \(Format.timestamp(updatedAt)), later than now (\(Format.timestamp(now))): the clock ran ahead or the vault file was edited, so its expiry times cannot be trusted; \(then)"
    }
}
