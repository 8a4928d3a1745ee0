import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct Refresh: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "refresh",
            abstract: "Refresh one account's token pair now (audited with old and new lifetimes).",
            discussion: """
                The new pair and both new expiries are stored durably before anything else; the audit entry says \
                whether the refresh token changed. It warns when the refresh token lapses within 14 days even after \
                refreshing (the provider did not extend it). A refused refresh token makes the account \
                needs-reauth (exit 5). For every account at once (cron): 'tokenvault refresh-all'.
                Example:
                  tokenvault refresh alice
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let planned = try database.account(named: account)
            if ClockAhead.isAhead(planned, now: context.now()) {
                context.console.warn(
                    ClockAhead.warning(
                        account: planned.name, updatedAt: planned.updatedAt, now: context.now(), then: "refreshing it"))
            }
            let vault = try unlock(context)
            // After the passphrase: a wrong one leaves everything as it was, the lock directory included.
            try database.checkRefreshLocks()
            // A newer pair an earlier command could not store goes in first: the row's refresh token may be spent.
            await RefreshJournal.storePending(vault: vault, services: context.services)
            let refresher = Refresher(
                vault: vault, services: context.services, trigger: .refresh, verbose: global.verbose)
            // Skip only if another process refreshed it after we read it (no refresh token sent twice at once).
            let outcome = await refresher.refresh(planned) { $0.updatedAt == planned.updatedAt }
            let now = context.now()
            switch outcome.status {
            case .refreshed, .alreadyFresh:
                let how = outcome.status == .refreshed ? "Refreshed" : "Another tokenvault process just refreshed"
                // A provider that gives no refresh-token lifetime (most generic ones) gets no "valid -".
                let refreshLifetime =
                    outcome.refreshExpiresAfter.map { "refresh token valid \(Format.remaining($0, now: now))" }
                    ?? "refresh token without a stated lifetime"
                context.console.err(
                    "\(how) '\(account)': access token valid \(Format.remaining(outcome.accessExpiresAfter, now: now)) (was \(Format.remaining(outcome.accessExpiresBefore, now: now))), \(refreshLifetime)"
                        + (outcome.refreshTokenChanged.map { $0 ? " (new refresh token)" : " (same refresh token)" }
                            ?? "") + ".\n")
                if let warning = outcome.lapseWarning(now: now) { context.console.warn("\(warning)") }
            case .needsReauth, .noRefresh:
                throw CLIError.needsReauthorization(
                    account: account, reason: outcome.reason ?? "the provider refused its refresh token")
            case .pending:
                throw CLIError.vault(.storeFailed(outcome.reason ?? "the vault's store failed", hint: outcome.hint))
            case .failed:
                let message = "refreshing '\(account)' failed: \(outcome.reason ?? "unknown error")"
                if outcome.failureCode == .integrity {
                    throw CLIError.integrity(
                        message, hint: "the vault was damaged or tampered with; nothing was sent to the provider")
                }
                if outcome.failureCode == .other {  // a local problem (its lock), not the provider's
                    throw CLIError.busy(message, hint: outcome.hint)
                }
                throw CLIError.provider(
                    message, hint: "the stored pair is unchanged; try again later, or add --verbose to see the requests"
                )
            }
        }
    }
}
