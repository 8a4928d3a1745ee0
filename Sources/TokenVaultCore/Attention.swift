import Foundation
import VaultStore

/// An account that needs a person: what `check` reports and `--notify` tells.
public struct Attention: Sendable, Equatable {
    public enum Event: String, Sendable, CaseIterable {
        /// The provider refused the refresh token (or there is no usable pair): only `authorize` helps.
        case needsReauth = "needs-reauth"
        /// The refresh token lapses within 14 days: refreshing has not moved it (or nothing refreshes it).
        case refreshTokenLapsing = "refresh-token-lapsing"
        /// Refreshing has failed for more than 24 hours (the newest attempt failed, the pair is older than that).
        case refreshFailing = "refresh-failing"
        /// No refresh token, and the access token lapses within 14 days.
        case accessTokenLapsing = "access-token-lapsing"
        /// The provider handed out a new pair the vault's store did not take: it waits in the local journal.
        case pairNotStored = "pair-not-stored"
        /// A refresh was cut off after its refresh token was sent and no answer was kept (the store and the journal
        /// failed, or the process died): a rotating provider may have retired the stored refresh token.
        case refreshInterrupted = "refresh-interrupted"
    }

    public var account: String
    public var integration: String
    public var event: Event
    /// In words, without a secret.
    public var detail: String

    public init(account: String, integration: String, event: Event, detail: String) {
        self.account = account
        self.integration = integration
        self.event = event
        self.detail = detail
    }

    public static let lapseWindow: TimeInterval = 14 * 86_400
    public static let failingFor: TimeInterval = 86_400

    /// Every account that needs a person now, from plain metadata and the audit log (no passphrase).
    ///
    /// `waiting`: the local journal's entries with a pair (``RefreshJournal/waitingPairs()``), named first.
    /// `interrupted`: ``RefreshJournal/interruptedRefreshes(in:)``.
    public static func find(
        in database: any VaultStorage, now: Date,
        waiting: [RefreshJournal.Entry] = [], interrupted: [RefreshJournal.Entry] = []
    ) throws -> [Attention] {
        let waitingByName = Dictionary(waiting.map { ($0.account, $0) }, uniquingKeysWith: { a, _ in a })
        let interruptedByName = Dictionary(interrupted.map { ($0.account, $0) }, uniquingKeysWith: { a, _ in a })
        let names = Dictionary(uniqueKeysWithValues: try database.integrations().map { ($0.id, $0.name) })
        var found: [Attention] = []
        for a in try database.accountSummaries() {
            let integration = names[a.integrationId] ?? "?"
            func add(_ event: Event, _ detail: String) {
                found.append(Attention(account: a.name, integration: integration, event: event, detail: detail))
            }
            if let entry = waitingByName[a.name] {
                add(
                    .pairNotStored,
                    "its newest pair (from \(Format.timestamp(entry.sentAt))) waits in the local journal, not in the vault (the store failed); run \(Format.command("tokenvault refresh \(a.name)")) once the store works: it stores that pair first"
                )
            } else if let entry = interruptedByName[a.name], a.state == .ok {
                add(
                    .refreshInterrupted,
                    "a refresh of it was cut off at \(Format.timestamp(entry.sentAt)) after its refresh token was sent, and no answer was kept; a provider that rotates refresh tokens may have retired it: run \(Format.command("tokenvault refresh \(a.name)")) to find out, and \(Format.command("tokenvault authorize \(a.name)")) if the provider refuses it"
                )
            } else if a.state == .needsReauth || !(a.hasAccessToken || a.hasRefreshToken) {
                add(
                    .needsReauth,
                    "the provider refused its refresh token; run \(Format.command("tokenvault authorize \(a.name)"))")
            } else if !a.hasRefreshToken {
                if let access = a.accessExpiresAt, access.timeIntervalSince(now) < lapseWindow {
                    add(
                        access <= now ? .needsReauth : .accessTokenLapsing,
                        access <= now
                            ? "its access token lapsed at \(Format.timestamp(access)) and it has no refresh token"
                            : "its access token lapses at \(Format.timestamp(access)) and it has no refresh token")
                }
            } else if let refresh = a.refreshExpiresAt, refresh.timeIntervalSince(now) < lapseWindow {
                add(
                    refresh <= now ? .needsReauth : .refreshTokenLapsing,
                    refresh <= now
                        ? "its refresh token lapsed at \(Format.timestamp(refresh))"
                        : "its refresh token lapses at \(Format.timestamp(refresh)); refreshing has not extended it")
            } else if now.timeIntervalSince(a.updatedAt) > failingFor,
                let newest = try database.auditEntries(account: a.name).last(where: {
                    $0.draft.event == .refreshed || $0.draft.event == .refreshFailed
                }),
                newest.draft.event == .refreshFailed
            {
                add(
                    .refreshFailing,
                    "refreshing has failed since \(Format.timestamp(a.updatedAt)): \(newest.draft.detail ?? newest.draft.outcome.rawValue)"
                )
            }
        }
        return found
    }
}
