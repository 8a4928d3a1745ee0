import Foundation
import TokenVaultCore
import VaultStore

/// How usable an account's token pair is, as `list` shows it.
enum DisplayState: String {
    case ok, expiring, expired
    case needsReauth = "needs-reauth"
    /// Stored later than now (`ClockAhead`): its expiry times cannot be trusted; the next use or refresh-all refreshes it.
    case stale
    /// A valid access token and no refresh token (imported that way): usable until it lapses, then `needs-reauth`.
    /// refresh-all leaves it alone.
    case noRefresh = "no-refresh"

    /// An access token within a day of lapsing, or a refresh token within 14 days, is "expiring".
    static let accessWarning: TimeInterval = 86_400
    static let refreshWarning: TimeInterval = 14 * 86_400

    init(_ account: Account, now: Date) {
        self.init(
            state: account.state, hasAccessToken: account.accessTokenSealed != nil,
            hasRefreshToken: account.refreshTokenSealed != nil,
            access: account.accessExpiresAt, refresh: account.refreshExpiresAt, updatedAt: account.updatedAt, now: now)
    }

    init(_ summary: AccountSummary, now: Date) {
        self.init(
            state: summary.state, hasAccessToken: summary.hasAccessToken, hasRefreshToken: summary.hasRefreshToken,
            access: summary.accessExpiresAt, refresh: summary.refreshExpiresAt, updatedAt: summary.updatedAt, now: now)
    }

    init(
        state: AccountState, hasAccessToken: Bool, hasRefreshToken: Bool, access: Date?, refresh: Date?,
        updatedAt: Date, now: Date
    ) {
        if state == .needsReauth || !(hasAccessToken || hasRefreshToken) {
            self = .needsReauth
        } else if ClockAhead.isAhead(updatedAt: updatedAt, now: now) {
            self = .stale
        } else if !hasRefreshToken {
            // Nothing can renew it: usable while its access token lasts, then only authorize or import helps.
            self = (access.map { $0 > now } ?? false) ? .noRefresh : .needsReauth
        } else if let refresh, refresh <= now {
            self = (access.map { $0 > now } ?? false) ? .expiring : .needsReauth
        } else if let access, access <= now {
            self = .expired
        } else if let access, access.timeIntervalSince(now) < Self.accessWarning {
            self = .expiring
        } else if let refresh, refresh.timeIntervalSince(now) < Self.refreshWarning {
            self = .expiring
        } else {
            self = .ok
        }
    }
}
