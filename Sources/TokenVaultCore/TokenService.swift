import Foundation
import VaultCrypto
import VaultOAuth
import VaultStore

/// How a fresh access token is obtained for an account (`env`, `exec`, `token`, `whoami`): the stored one when it
/// stays valid long enough, else one refreshed first; never an expired one. Its store calls run off the cooperative
/// pool (`BlockingWork`, the store's async reads): on PostgreSQL each is a round trip to the server.
public struct TokenService: Sendable {
    public let vault: UnlockedVault
    let services: VaultServices
    /// `--verbose`: trace the requests of a refresh.
    let verbose: Bool

    /// Seconds refresh-on-use waits for another process refreshing the same account while the token in hand is valid.
    public static let refreshOnUseLockTimeout: TimeInterval = 15

    public init(vault: UnlockedVault, services: VaultServices, verbose: Bool) {
        self.vault = vault
        self.services = services
        self.verbose = verbose
    }

    /// The access token to hand out for `account` (read before the vault was unlocked), refreshed first when it
    /// lapses within `minValid`. Warnings (a clock ahead, a failed refresh while the token in hand is still good)
    /// go to the console.
    public func freshAccessToken(
        account initial: Account, integration: Integration, minValid: TimeInterval,
        trigger: AuditTrigger
    ) async throws -> String {
        try await freshAccessTokenAndRow(
            account: initial, integration: integration, minValid: minValid, trigger: trigger
        ).token
    }

    /// The same, with the account's row the token was opened from (its expiry and pair id: the token endpoint's
    /// `expires_at`, and what a `lent` entry names).
    public func freshAccessTokenAndRow(
        account initial: Account, integration: Integration, minValid: TimeInterval,
        trigger: AuditTrigger
    ) async throws -> (token: String, account: Account) {
        let database = vault.database
        let name = initial.name
        var account = initial
        // A newer pair an earlier command could not store is stored first: the row's refresh token may be spent.
        if await !RefreshJournal.storePending(vault: vault, services: services).stored.isEmpty {
            account = try await database.accountAsync(named: name)
        }
        let now = services.now()
        let threshold = now.addingTimeInterval(minValid)
        // A pair stored in the future has expiries that cannot be trusted (ClockAhead): refresh it now.
        @Sendable func lapsesSoon(_ a: Account) -> Bool {
            (a.accessExpiresAt ?? .distantPast) < threshold || ClockAhead.isAhead(a, now: now)
        }
        // The stored name must be the one sealed with the integration, and not one that changes how programs run.
        // A token that stays valid is opened in the same trip off the pool (the common case: one trip in all).
        let vault = vault
        let inHand = account
        let handOut = !lapsesSoon(account)
        let valid = try await BlockingWork.run { () throws -> SecretBytes? in
            _ = try vault.environmentVariable(of: integration)
            return handOut ? try vault.accessToken(of: inHand) : nil
        }
        if ClockAhead.isAhead(account, now: now) {
            services.console.warn(
                ClockAhead.warning(
                    account: name, updatedAt: account.updatedAt, now: now, then: "refreshing it before use"))
        }
        if lapsesSoon(account) {
            if account.refreshTokenSealed != nil && account.state == .ok {
                // A provider known to rotate (GitHub, Slack, Microsoft) counts as seen rotating from its first refresh.
                let declared = (try? Provider.of(integration))?.rotation ?? .strict
                let rotates = try await BlockingWork.run { () throws -> Bool in
                    try database.checkRefreshLocks()
                    return declared != .none
                        || ((try? database.refreshTokensRotate(integration: integration.name)) ?? true)
                }
                // The token in hand is still good: a provider that is down or throttles is tried twice, and one that
                // stalls gets about two seconds in all; then the stored token is handed out with a warning. Only an
                // expired (or untrustworthy) one is worth the full retry policy.
                // Except the time limit for an integration seen rotating its refresh tokens: a request cut off after the
                // provider processed it would lose the new pair and, under strict rotation, the old one with it; such a
                // request is given the transport's normal timeout instead.
                let stillValid =
                    (account.accessExpiresAt ?? .distantPast) > now && !ClockAhead.isAhead(account, now: now)
                let refresher =
                    stillValid
                    ? Refresher(
                        vault: vault, services: services, trigger: trigger, verbose: verbose,
                        retry: Refresher.quickRetryPolicy, budget: rotates ? nil : services.refreshOnUseBudget,
                        lockTimeout: Self.refreshOnUseLockTimeout)
                    : Refresher(vault: vault, services: services, trigger: trigger, verbose: verbose)
                let outcome = await refresher.refresh(account) { lapsesSoon($0) }
                account = try await database.accountAsync(named: name)
                switch outcome.status {
                case .refreshed, .alreadyFresh:
                    if let warning = outcome.lapseWarning(now: now) { services.console.warn("\(warning)") }
                case .needsReauth, .failed, .noRefresh, .pending:
                    let reason = outcome.reason ?? "unknown error"
                    if outcome.failure.map(Self.isIntegrityFailure) == true {
                        throw VaultError.integrity(
                            reason,
                            hint: "the vault was damaged or tampered with; restore it from a backup or authorize again")
                    }
                    guard let expiry = account.accessExpiresAt, expiry > now else {
                        if outcome.status == .needsReauth {
                            throw VaultError.needsReauthorization(account: name, reason: reason)
                        }
                        throw VaultError.provider(
                            "the access token of '\(name)' expired and refreshing it failed: \(reason)",
                            hint: "try again later; add --verbose to see the requests")
                    }
                    services.console.warn(
                        "could not refresh '\(name)' (\(reason)); using the current token, valid \(Format.remaining(expiry, now: now))"
                    )
                }
            } else if let expiry = account.accessExpiresAt, expiry > now {
                services.console.warn(
                    "the access token of '\(name)' lapses in \(Format.remaining(expiry, now: now)) and cannot be refreshed (\(account.state == .needsReauth ? "needs re-authorization" : "no refresh token")); run \(Format.command("tokenvault authorize \(name)"))"
                )
            } else if account.state == .needsReauth {
                throw VaultError.needsReauthorization(account: name, reason: "the provider refused its refresh token")
            } else {
                throw VaultError.accessTokenExpired(account: name, at: account.accessExpiresAt ?? now)
            }
        }
        let token: SecretBytes
        if let valid {
            token = valid
        } else {
            let refreshed = account
            token = try await BlockingWork.run { try vault.accessToken(of: refreshed) }
        }
        guard let text = token.copyToString() else {
            throw VaultError.integrity("the access token of '\(name)' is not text")
        }
        return (text, account)
    }

    /// The stored access token of `name` when it stays valid past `minValid` and no pair waits in the local journal,
    /// with its row and integration: all synchronous (the token endpoint's connection thread blocks on the store),
    /// nothing refreshed. nil when a refresh is due: `freshAccessTokenAndRow` then does it.
    public func storedTokenIfFresh(account name: String, minValid: TimeInterval) throws -> (
        token: String, account: Account, integration: Integration
    )? {
        let database = vault.database
        if let journal = RefreshJournal.of(database, services: services),
            let names = try? FileManager.default.contentsOfDirectory(atPath: journal.directory),
            names.contains(where: { $0.hasSuffix(".pair") })
        {
            return nil
        }
        let account = try database.account(named: name)
        guard let integration = try database.integration(id: account.integrationId) else {
            throw StoreError.noSuchIntegration(account.integrationId)
        }
        let now = services.now()
        guard (account.accessExpiresAt ?? .distantPast) >= now.addingTimeInterval(minValid),
            !ClockAhead.isAhead(account, now: now)
        else { return nil }
        // The stored name must be the one sealed with the integration, as on the usual path.
        _ = try vault.environmentVariable(of: integration)
        guard let text = try vault.accessToken(of: account).copyToString() else {
            throw VaultError.integrity("the access token of '\(name)' is not text")
        }
        return (text, account, integration)
    }

    /// A failure that means the vault was damaged or tampered with (the CLI's exit 7).
    static func isIntegrityFailure(_ error: any Error) -> Bool {
        switch error {
        case let e as VaultError:
            if case .integrity = e { return true }
            if case .unsupportedKDF = e { return true }
            return false
        case let e as StoreError:
            switch e {
            case .damaged, .invalidRecord: return true
            default: return false
            }
        case is VaultCryptoError: return true
        default: return false
        }
    }
}
