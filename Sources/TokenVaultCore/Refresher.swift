import Foundation
import Synchronization
import VaultCrypto
import VaultOAuth
import VaultStore

/// What became of one account in a refresh.
public struct RefreshOutcome: Sendable {
    public enum Status: String, Sendable {
        case refreshed
        /// Another process refreshed it while we waited for the lock (or just before): nothing was sent.
        case alreadyFresh = "fresh"
        case needsReauth = "needs-reauth"
        case failed
        /// No refresh token and a valid access token (`DisplayState.noRefresh`): left alone, nothing was sent.
        case noRefresh = "no-refresh"
        /// The provider answered but the vault's store failed: the new pair waits in the local journal, and the
        /// next command that unlocks the vault stores it.
        case pending
    }

    public var account: String
    public var integration: String
    public var status: Status
    public var accessExpiresBefore: Date?
    public var accessExpiresAfter: Date?
    public var refreshExpiresBefore: Date?
    public var refreshExpiresAfter: Date?
    public var refreshTokenChanged: Bool?
    public var trackingId: String?
    /// Why the refresh failed or was not tried (the CLI maps it to a message, a hint and an exit code).
    public var failure: (any Error)?

    /// The failure in words, without the account's name where the error carries it (the caller names it).
    public var reason: String? {
        guard let failure else { return nil }
        if case VaultError.needsReauthorization(_, let reason)? = failure as? VaultError { return reason }
        return failure.localizedDescription
    }

    /// Whether the account's lock was held by another process and not waited for (a `lockTimeout` of 0).
    public var lockWasBusy: Bool {
        if case StoreError.lockBusy? = failure as? StoreError { return true }
        return false
    }

    /// Nothing was sent because the vault's store was failing (refresh-all says so once for all of them).
    public var notSentStoreFailing = false

    public init(
        account: String, integration: String, status: Status, accessExpiresBefore: Date? = nil,
        accessExpiresAfter: Date? = nil
    ) {
        self.account = account
        self.integration = integration
        self.status = status
        self.accessExpiresBefore = accessExpiresBefore
        self.accessExpiresAfter = accessExpiresAfter
    }
}

/// A refresh token that lapses within this, even right after a refresh, gets a warning: the provider did not
/// reset its lifetime and the account will need a browser soon.
public let refreshLapseWarning: TimeInterval = 14 * 86_400

/// An expiry that moved by no more than this in a refresh did not move: each expiry is our clock plus the
/// provider's whole seconds left, so the same instant reads a little differently from one answer to the next.
public let refreshExpiryTolerance: TimeInterval = 10

extension RefreshOutcome {
    /// A warning when this process refreshed the pair and the provider left the refresh token's expiry where it
    /// was (no new lifetime), and that expiry is near. A short lifetime the provider did renew (a rotating provider
    /// with short lifetimes) is not warned about, nor is a pair another process refreshed (that process warns).
    public func lapseWarning(now: Date) -> String? {
        guard status == .refreshed, let expiry = refreshExpiresAfter, let before = refreshExpiresBefore,
            // Not moved later (kept, or shortened): refreshing did not extend the refresh token's life.
            expiry.timeIntervalSince(before) <= refreshExpiryTolerance,
            expiry.timeIntervalSince(now) < refreshLapseWarning
        else { return nil }
        return
            "the refresh token of '\(account)' lapses in \(Format.span(Int(expiry.timeIntervalSince(now)))) even after refreshing (the provider did not reset its lifetime); run \(Format.command("tokenvault authorize \(account)")) before \(Format.timestamp(expiry))"
    }
}

/// A wait between two attempts, as a progress line shows it.
public struct RetryWait: Sendable, Equatable {
    public var seconds: Double
    /// The provider asked for it (429 with Retry-After), rather than our own backoff.
    public var retryAfter: Bool

    public init(seconds: Double, retryAfter: Bool) {
        self.seconds = seconds
        self.retryAfter = retryAfter
    }
}

extension RetryPolicy {
    /// `run(sleep:_:)`, telling `onWait` when each wait starts (the wait) and ends (nil).
    public func run<T>(
        sleep: @Sendable (Double) async throws -> Void, onWait: (@Sendable (RetryWait?) -> Void)?,
        _ op: () async throws -> T
    ) async throws -> T {
        try await run(
            sleep: { seconds in
                defer { onWait?(nil) }
                try await sleep(seconds)
            },
            willWait: { seconds, error in
                onWait?(RetryWait(seconds: seconds, retryAfter: (error as? OAuthError)?.retryAfter != nil))
            }, op)
    }
}

/// Refreshes token pairs: the provider's answer is durably stored (and audited) before anything else happens.
public final class Refresher: Sendable {
    public let vault: UnlockedVault
    let services: VaultServices
    let trigger: AuditTrigger
    let transport: any HTTPTransport
    let retry: RetryPolicy
    private let committer: GroupCommitter
    /// Where each new pair waits until the store has it; nil: none (a failed store write is then tried once).
    let journal: RefreshJournal?
    /// Shared by this command's refreshes: once the store fails, no refresh token is sent until it works again.
    public let storeHealth: StoreHealth
    /// Each integration and its client, opened once per integration and command, by integration id.
    private let opened = Mutex<[String: (integration: Integration, client: OAuthClient)]>([:])

    /// Eight attempts: a nightly run rides out a provider's bad minutes (about two minutes of capped, jittered
    /// backoff at worst) rather than leaving accounts for tomorrow; invalid_grant is never retried.
    public static let retryPolicy = RetryPolicy(maxAttempts: 8)

    /// Refresh-on-use while the stored access token is still valid: the token in hand is good, so a provider that
    /// is down, stalls or answers 429/5xx is given about two seconds in all (`RefreshBudget`), not the nightly policy.
    public static let quickRetryPolicy = RetryPolicy(maxAttempts: 2, base: 0.25, cap: 0.25, maxRetryAfter: 1)

    /// Seconds an account's lock is waited for (another process refreshing it).
    let lockTimeout: TimeInterval
    /// Told about each wait between attempts (refresh-all's progress line shows it).
    let onWait: (@Sendable (RetryWait?) -> Void)?

    public init(
        vault: UnlockedVault, services: VaultServices, trigger: AuditTrigger, verbose: Bool,
        retry: RetryPolicy = Refresher.retryPolicy,
        budget: TimeInterval? = nil, lockTimeout: TimeInterval? = nil, onWait: (@Sendable (RetryWait?) -> Void)? = nil
    ) {
        self.vault = vault
        self.services = services
        self.trigger = trigger
        self.retry = retry
        self.lockTimeout = lockTimeout ?? services.lockTimeout
        self.onWait = onWait
        committer = GroupCommitter(database: vault.database)
        journal = services.journalBase.map { RefreshJournal(base: $0, location: vault.database.location) }
        storeHealth = StoreHealth(wait: services.storeWait, enabled: journal != nil)
        let transport = services.makeTransport(verbose ? Trace.tracer(services.console) : nil)
        self.transport = budget.map { DeadlineTransport(inner: transport, budget: $0) } ?? transport
    }

    /// The integration and its client when `client(for:)` has opened them already.
    private func cachedClient(for integrationId: String) -> (Integration, OAuthClient)? {
        opened.withLock { opened in
            opened[integrationId].map { ($0.integration, $0.client) }
        }
    }

    /// The integration and its client, opened once per integration and command.
    func client(for integrationId: String) throws -> (Integration, OAuthClient) {
        try opened.withLock { opened in
            if let known = opened[integrationId] { return (known.integration, known.client) }
            guard let integration = try vault.database.integration(id: integrationId) else {
                throw StoreError.noSuchIntegration(integrationId)
            }
            let client = try OAuthClient.make(for: integration, vault: vault, transport: transport)
            opened[integrationId] = (integration, client)
            return (integration, client)
        }
    }

    /// Refreshes `account` unless, once its lock is held and it is read again, `stillNeeded` says another
    /// process already did the work. The lock makes sure no refresh token is ever sent twice at once.
    ///
    /// `lockTimeout` overrides the command's wait for the account's lock; 0 tries it once, and an account another
    /// process holds then comes back at once with ``RefreshOutcome/lockWasBusy`` (refresh-all's first pass).
    ///
    /// `peek`: read the account once before taking its lock, and leave it (`alreadyFresh`) if another process has
    /// plainly done the work already: one read instead of a lock, a read and an unlock, for runs that see others
    /// at work. Reading without the lock can only find it still needed when it is not; the read under the lock decides.
    public func refresh(
        _ planned: Account, lockTimeout: TimeInterval? = nil, peek: Bool = false,
        stillNeeded: @Sendable (Account) -> Bool
    ) async -> RefreshOutcome {
        var outcome = RefreshOutcome(account: planned.name, integration: "?", status: .failed)
        var sent = false
        do {
            let (integration, client) = try await storeHealth.noting(now: services.now, sleep: services.sleep) {
                // Read from the store once per integration and command, off the pool; then from memory.
                if let cached = self.cachedClient(for: planned.integrationId) { return cached }
                return try await BlockingWork.run { try self.client(for: planned.integrationId) }
            }
            outcome.integration = integration.name
            if peek {
                // Through the store's health like every read before sending: a server restarting must not turn
                // the rest of the run into instant failures (nothing sent, but nothing refreshed either).
                let current = try await storeHealth.noting(now: services.now, sleep: services.sleep) {
                    try await vault.database.accountAsync(named: planned.name)
                }
                if current.id == planned.id, current.state == .ok, !stillNeeded(current) {
                    outcome.status = .alreadyFresh
                    outcome.accessExpiresBefore = current.accessExpiresAt
                    outcome.refreshExpiresBefore = current.refreshExpiresAt
                    outcome.accessExpiresAfter = current.accessExpiresAt
                    outcome.refreshExpiresAfter = current.refreshExpiresAt
                    return outcome
                }
            }
            // Nothing is sent while the store is failing: wait for it to work again, or give up with it.
            try await storeHealth.waitUntilWritable(now: services.now, sleep: services.sleep)
            let lock = try await storeHealth.noting(now: services.now, sleep: services.sleep) {
                try await vault.database.lockForRefresh(
                    planned, timeout: lockTimeout ?? self.lockTimeout, sleep: services.sleep)
            }
            defer { lock.release() }
            // Read again under the lock: the pair may have changed while we waited.
            var account = try await storeHealth.noting(now: services.now, sleep: services.sleep) {
                try await vault.database.accountAsync(named: planned.name)
            }
            guard account.id == planned.id else { throw StoreError.noSuchAccount(planned.name) }
            outcome.accessExpiresBefore = account.accessExpiresAt
            outcome.refreshExpiresBefore = account.refreshExpiresAt
            if account.state == .needsReauth {
                outcome.status = .needsReauth
                outcome.failure = VaultError.needsReauthorization(
                    account: account.name, reason: "the provider refused its refresh token earlier")
                return outcome
            }
            guard stillNeeded(account) else {
                outcome.status = .alreadyFresh
                outcome.accessExpiresAfter = account.accessExpiresAt
                outcome.refreshExpiresAfter = account.refreshExpiresAt
                return outcome
            }
            guard account.refreshTokenSealed != nil else {
                throw VaultError.needsReauthorization(account: account.name, reason: "it holds no refresh token")
            }
            let refreshToken = try vault.refreshToken(of: account)
            guard let refreshText = refreshToken.copyToString() else {
                throw VaultError.integrity("the refresh token of '\(account.name)' is not text")
            }
            let before = account
            // A lock that ended under us (a PostgreSQL advisory lock dies with its connection, say on a server
            // restart) may already be another host's: sending now could spend the refresh token twice.
            guard await lock.isStillHeld() else {
                throw StoreError.lockBusy(
                    "account '\(account.name)': its refresh lock was lost (the connection to the vault's server dropped) before anything was sent",
                    hint: "run the refresh again; nothing was changed")
            }
            // The journal's entry for this refresh exists, at full size, before the refresh token leaves: a pair the
            // provider hands out always has a place on local disk. An earlier run's pair still waiting there is
            // newer than the row: the row's refresh token is spent, so it is not sent.
            var reservation: RefreshJournal.Reservation?
            if let journal {
                if case .some(.some(let waiting)) = journal.entry(forAccountId: account.id), waiting.pair != nil,
                    waiting.startedFrom(account)
                {
                    // Left by a refresh whose process is gone (this one holds the lock): stored now, nothing sent.
                    if (try? await journal.store(waiting, over: account, vault: vault, now: services.now())) == .stored
                    {
                        unlink(journal.path(forAccountId: account.id))
                        let stored = waiting.applied(to: account)
                        outcome.status = .alreadyFresh
                        outcome.accessExpiresAfter = stored.accessExpiresAt
                        outcome.refreshExpiresAfter = stored.refreshExpiresAt
                        return outcome
                    }
                    outcome.status = .pending
                    outcome.failure = VaultError.storeFailed(
                        "a newer pair of '\(account.name)' from \(Format.timestamp(waiting.sentAt)) waits in the local journal (\(journal.directory)); nothing was sent",
                        hint: "run the command again once the vault's store works: it stores the pair first")
                    return outcome
                }
                do {
                    let (now, trigger, integration) = (services.now(), trigger, integration.name)
                    let planned = account
                    reservation = try await Self.offPool {
                        try journal.reserve(planned, integration: integration, trigger: trigger, now: now)
                    }
                } catch {
                    throw VaultError.storeFailed(
                        "account '\(account.name)' was not refreshed: \(error.localizedDescription)",
                        hint:
                            "tokenvault keeps each new pair there until the vault has stored it; make the directory writable (free space, mode 0700, yours)"
                    )
                }
            }
            let response: TokenResponse
            sent = true
            do {
                response = try await retry.run(sleep: services.sleep, onWait: onWait) {
                    try await client.refresh(refreshToken: refreshText)
                }
            } catch let error as OAuthError where error.isInvalidGrant {
                if let reservation { journal?.remove(reservation) }
                // Final: the account needs a browser. Recorded so that list shows it and no run retries it.
                account.state = .needsReauth
                account.updatedAt = services.now()
                var entry = draft(before, account, outcome: .needsReauthorizationInvalidGrant, event: .refreshFailed)
                entry.detail = error.localizedDescription
                try await store(account, audited: entry)
                outcome.status = .needsReauth
                outcome.failure = error
                outcome.trackingId = error.trackingId
                return outcome
            } catch {
                if let reservation { journal?.remove(reservation) }
                throw error
            }
            let now = services.now()
            try TokenStore.apply(response, to: &account, vault: vault, now: now)
            // The new pair is committed (synchronous=FULL) before anything else happens: with a rotating provider
            // the old refresh token may already be dead. It is in the journal (synced) before the store is asked.
            let changed = response.refreshToken.map { $0 != refreshText } ?? false
            var journalFailure: (any Error)?
            if let journal, let reserved = reservation {
                let answered = account
                do {
                    reservation = try await Self.offPool {
                        var kept = reserved
                        try journal.record(&kept, stored: answered, refreshTokenChanged: changed)
                        return kept
                    }
                } catch { journalFailure = error }
            }
            var entry = draft(before, account, outcome: .ok, event: .refreshed)
            entry.refreshTokenChanged = changed
            entry.pair = account.pair
            do {
                try await storeDurably(account, audited: entry)
            } catch {
                outcome.accessExpiresAfter = account.accessExpiresAt
                outcome.refreshExpiresAfter = account.refreshExpiresAt
                outcome.refreshTokenChanged = changed
                if let journal, journalFailure == nil {
                    outcome.status = .pending
                    outcome.failure = VaultError.storeFailed(
                        "the new pair of '\(account.name)' was not stored (\(error.localizedDescription)); it waits in the local journal \(journal.directory)",
                        hint:
                            "run any command that unlocks the vault (e.g. 'tokenvault refresh-all') once its store works again: it stores the pair first"
                    )
                } else {
                    outcome.status = .failed
                    let why = journalFailure.map { "; the local journal failed too (\($0.localizedDescription))" } ?? ""
                    outcome.failure = VaultError.storeFailed(
                        "the new pair of '\(account.name)' could not be kept: the vault's store failed (\(error.localizedDescription))\(why)",
                        hint:
                            "the provider may have retired the old refresh token: run 'tokenvault refresh \(account.name)' once the store works, and 'tokenvault authorize \(account.name)' if the provider refuses it"
                    )
                }
                return outcome
            }
            if let reservation { journal?.remove(reservation) }
            outcome.status = .refreshed
            outcome.accessExpiresAfter = account.accessExpiresAt
            outcome.refreshExpiresAfter = account.refreshExpiresAt
            outcome.refreshTokenChanged = changed
            return outcome
        } catch {
            outcome.status = VaultError.meansReauthorization(error) ? .needsReauth : .failed
            outcome.failure = error
            outcome.notSentStoreFailing = !sent && journal != nil && StoreHealth.isStoreFailure(error)
            outcome.trackingId = (error as? OAuthError)?.trackingId
            if error is OAuthError {
                // A failed attempt is part of the account's history too.
                let entry = AuditDraft(
                    at: services.now(), account: planned.name, integration: outcome.integration, event: .refreshFailed,
                    trigger: trigger, outcome: .failedPairUnchanged, accessExpiresBefore: planned.accessExpiresAt,
                    accessExpiresAfter: planned.accessExpiresAt, refreshExpiresBefore: planned.refreshExpiresAt,
                    refreshExpiresAfter: planned.refreshExpiresAt, detail: outcome.reason)
                let vault = vault
                try? await committer.commit { w in try vault.appendAudit(entry, in: w) }
            }
            return outcome
        }
    }

    /// Blocking file work (the journal's writes and fsyncs) on a thread of its own, not the cooperative pool's.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await BlockingWork.run(work)
    }

    /// The account's new state and its audit entry, in one durable commit (shared with concurrent refreshes).
    private func store(_ account: Account, audited entry: AuditDraft) async throws {
        let vault = vault
        try await committer.commit { w in
            try w.update(account)
            try vault.appendAudit(entry, in: w)
        }
    }

    /// `store`, retried with backoff while the store fails and its wait (``StoreHealth``) allows. A retry first
    /// reads the row back: a commit whose outcome was unknown (a connection cut at COMMIT) may have landed.
    /// Without a journal, one attempt, as before.
    private func storeDurably(_ account: Account, audited entry: AuditDraft) async throws {
        guard journal != nil else { return try await store(account, audited: entry) }
        do {
            try await store(account, audited: entry)
            storeHealth.succeeded()
            return
        } catch  where StoreHealth.isStoreFailure(error) {
            storeHealth.failed(error, now: services.now())
        }
        let vault = vault
        var delay = 0.25
        while true {
            guard let remaining = storeHealth.remaining(now: services.now()), remaining > 0 else {
                throw storeHealth.downError ?? VaultError.storeFailed("the vault's store failed")
            }
            try? await services.sleep(min(delay, remaining))
            delay = min(delay * 2, 4)
            do {
                try await vault.database.writeAsync { w in
                    let current = try w.account(named: account.name)
                    if current.id == account.id, current.accessTokenSealed == account.accessTokenSealed,
                        current.refreshTokenSealed == account.refreshTokenSealed
                    {
                        return
                    }
                    try w.update(account)
                    try vault.appendAudit(entry, in: w)
                }
                storeHealth.succeeded()
                return
            } catch  where StoreHealth.isStoreFailure(error) {
                storeHealth.failed(error, now: services.now())
            }
        }
    }

    private func draft(_ before: Account, _ after: Account, outcome: AuditOutcome, event: AuditEvent) -> AuditDraft {
        AuditDraft(
            at: services.now(), account: after.name,
            integration: opened.withLock { $0[after.integrationId]?.integration.name },
            event: event, trigger: trigger, outcome: outcome,
            accessExpiresBefore: before.accessExpiresAt, accessExpiresAfter: after.accessExpiresAt,
            refreshExpiresBefore: before.refreshExpiresAt, refreshExpiresAfter: after.refreshExpiresAt)
    }
}

extension Provider {
    /// The provider an integration names, with its stored options (a Microsoft tenant, a generic provider's
    /// endpoints) applied.
    public static func of(_ integration: Integration) throws -> Provider {
        do {
            return try configured(
                name: integration.provider, options: try ProviderOptions.decode(integration.providerOptions))
        } catch let error as OAuthError {
            throw VaultError.invalid("integration '\(integration.name)': \(error.localizedDescription)")
        }
    }
}

extension OAuthClient {
    /// A client for a stored integration, with its client secret opened from the vault.
    public static func make(for integration: Integration, vault: UnlockedVault, transport: any HTTPTransport) throws
        -> OAuthClient
    {
        guard let base = URL(string: integration.apiBase) else {
            throw VaultError.invalid(
                "integration '\(integration.name)' has an invalid API base \(Format.quoted(integration.apiBase))")
        }
        let secret = try vault.clientSecret(of: integration)
        guard let secretText = secret.copyToString() else {
            throw VaultError.integrity("the client secret of integration '\(integration.name)' is not text")
        }
        let options = try? ProviderOptions.decode(integration.providerOptions)
        return OAuthClient(
            provider: try Provider.of(integration),
            credentials: ClientCredentials(
                clientId: integration.clientId, clientSecret: secretText,
                redirectURI: integration.redirectURI, scopes: integration.scopes, apiBase: base,
                tenant: (options ?? nil)?.tenant),
            transport: transport)
    }
}
