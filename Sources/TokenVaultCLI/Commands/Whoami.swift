import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct Whoami: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "whoami",
            abstract: "Ask the provider who the account's token belongs to (refreshed first if needed).",
            discussion: """
                Updates the stored identity (not audited). A token the provider rejects (401) is refreshed once and \
                asked again; a second 401 marks the account needs-reauth (exit 5).
                Examples:
                  tokenvault whoami alice
                  tokenvault whoami alice --json
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: DurationArgument = DurationArgument(seconds: 600)

        @Flag(help: "Print JSON.")
        var json = false

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        func run(_ context: Context) async throws {
            let (token, integration, vault) = try await freshAccessTokenAndVault(
                account: account, global: global, minValid: minValid.seconds, trigger: .whoami, context: context)
            let transport = context.makeTransport(global.verbose ? Trace.tracer(context.console) : nil)
            let client = try OAuthClient.make(for: integration, vault: vault, transport: transport)
            let identity: Identity
            do {
                identity = try await client.identity(accessToken: token)
            } catch let error as OAuthError where error.isUnauthorized {
                // The provider refused a token that looked valid (revoked, or its expiry was wrong): refresh once,
                // whatever the expiry says, and ask again.
                let retried = try await refreshAfterRejection(vault: vault, rejected: error, context: context)
                do {
                    identity = try await client.identity(accessToken: retried)
                } catch let again as OAuthError where again.isUnauthorized {
                    try await markNeedsReauthorization(
                        vault: vault, integration: integration.name, because: again, context: context)
                    throw CLIError.needsReauthorization(
                        account: account,
                        reason: "the provider refused its access token even after a refresh (HTTP 401)")
                }
            }
            // Keep the plain identity metadata current; this is not a lifetime change, so no audit entry.
            try vault.recordIdentity(identity, account: account)
            if json {
                context.console.out(Format.json(IdentityReport(account: account, identity)) + "\n")
            } else {
                // What the provider did not say is left out, not shown as "-" (a generic provider has no org or type).
                let who = [identity.displayName, identity.email.map { "<\($0)>" }].compactMap { $0 }.joined(
                    separator: " ")
                var lines = [who.isEmpty ? identity.id : who, "  id: \(identity.id)"]
                if let org = identity.orgId { lines.append("  org: \(org)") }
                if let type = identity.type { lines.append("  type: \(type)") }
                context.console.out(lines.joined(separator: "\n") + "\n")
            }
        }
    }
}

extension OAuthError {
    /// The provider refused the access token itself (HTTP 401).
    var isUnauthorized: Bool {
        if case .api(401, _, _) = self { return true }
        return false
    }
}

extension TokenVault.Whoami {
    /// After a 401: refreshes the account once (unless another process just did) and returns the token to retry
    /// with. An account that cannot be refreshed is marked needs-reauth at once.
    func refreshAfterRejection(vault: UnlockedVault, rejected: OAuthError, context: Context) async throws -> String {
        let planned = try vault.database.account(named: account)
        let integrationName = try vault.database.integration(id: planned.integrationId)?.name
        guard planned.refreshTokenSealed != nil, planned.state == .ok else {
            try await markNeedsReauthorization(
                vault: vault, integration: integrationName, because: rejected, context: context)
            throw CLIError.needsReauthorization(
                account: account,
                reason: "the provider refused its access token (HTTP 401) and it holds no refresh token")
        }
        try vault.database.checkRefreshLocks()
        let refresher = Refresher(vault: vault, services: context.services, trigger: .whoami, verbose: global.verbose)
        let outcome = await refresher.refresh(planned) { $0.updatedAt == planned.updatedAt }
        switch outcome.status {
        case .refreshed, .alreadyFresh:
            if let warning = outcome.lapseWarning(now: context.now()) { context.console.warn("\(warning)") }
            let fresh = try vault.database.account(named: account)
            guard let text = try vault.accessToken(of: fresh).copyToString() else {
                throw CLIError.integrity("the access token of '\(account)' is not text")
            }
            return text
        case .needsReauth, .noRefresh:
            throw CLIError.needsReauthorization(
                account: account, reason: outcome.reason ?? "the provider refused its refresh token")
        case .pending:
            throw CLIError.vault(.storeFailed(outcome.reason ?? "the vault's store failed", hint: outcome.hint))
        case .failed:
            if outcome.failureCode == .integrity {
                throw CLIError.integrity(
                    outcome.reason ?? "integrity failure",
                    hint: "the vault was damaged or tampered with; restore it from a backup or authorize again")
            }
            throw CLIError.provider(
                "the provider refused the access token of '\(account)' (HTTP 401) and refreshing it failed: \(outcome.reason ?? "unknown error")",
                hint: "try again later; if it persists, run \(Format.command("tokenvault authorize \(account)"))")
        }
    }

    /// Records that the provider refuses the account's tokens: list shows needs-reauth and no run retries it.
    func markNeedsReauthorization(
        vault: UnlockedVault, integration: String?, because error: OAuthError, context: Context
    ) async throws {
        try vault.markAccessTokenRejected(
            account: account, integration: integration, trigger: .whoami,
            detail: error.localizedDescription, now: context.now())
    }
}
