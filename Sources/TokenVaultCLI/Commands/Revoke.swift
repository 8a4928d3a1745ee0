import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

extension TokenVault {
    struct Revoke: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke",
            abstract: "Revoke an account's tokens at the provider, then delete the pair from the vault (audited).",
            discussion: """
                The provider's own way is used: Webex DELETE /authorizations?clientId=... (when the token has \
                identity:tokens_write or its scopes are unknown), RFC 7009 for Google and generic providers, the REST \
                API for GitHub, auth.revoke for Slack. Microsoft has no revocation endpoint. Otherwise, or with \
                --local, it only deletes the local pair and says how to revoke at the provider. The sealed bytes are \
                removed from both the database file and its write-ahead log. Webex's way revokes every token the \
                person gave the integration's client: the other accounts of that person on the integration are named \
                and marked needs-reauth (audited). When the provider refuses or cannot be reached, the local pair \
                is deleted all the same and the exit is 6: the tokens stay valid at the provider until they expire.
                Examples:
                  tokenvault revoke bob
                  tokenvault revoke bob --local
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Flag(help: "Only remove the local pair; do not contact the provider.")
        var local = false

        func run(_ context: Context) async throws {
            let vault = try unlock(context)
            let record = try vault.database.account(named: account)
            let integration = try vault.database.integration(id: record.integrationId)
            var outcome = AuditOutcome.removedLocally
            var remoteNote: String?
            var revocationFailed = false
            let provider = try integration.map(Provider.of)
            if !local, let integration, let provider {
                if !provider.supportsRevoke {
                    if case .none(let hint) = provider.revocation {
                        remoteNote = hint
                    } else {
                        remoteNote = "\(provider.displayName) has no revocation endpoint configured"
                    }
                } else if !provider.canRevoke(grantedScopes: record.grantedScopes) {
                    remoteNote = "the token lacks the \(provider.revokeScope ?? "revocation") scope"
                } else if (record.accessExpiresAt ?? .distantPast) <= context.now() {
                    remoteNote = "its access token has expired"
                } else {
                    do {
                        let transport = context.makeTransport(global.verbose ? Trace.tracer(context.console) : nil)
                        let client = try OAuthClient.make(for: integration, vault: vault, transport: transport)
                        let access = try vault.accessToken(of: record).copyToString() ?? ""
                        let refresh = try? vault.refreshToken(of: record).copyToString()
                        try await client.revoke(accessToken: access, refreshToken: refresh ?? nil)
                        outcome = .revokedAt(provider.id.rawValue)
                    } catch OAuthError.unsupported(let why) {
                        // Nothing was sent: as a provider without a revocation endpoint.
                        remoteNote = why
                    } catch {
                        remoteNote = ErrorReport.describe(error).message
                        outcome = .revokeFailedRemovedLocally
                        revocationFailed = true
                    }
                }
            }
            // Webex's DELETE /authorizations?clientId=… revokes every authorization the person gave this client, so
            // the other accounts of the same person on this integration lost their tokens too: they are marked
            // needs-reauth (audited) in the same transaction, and named below.
            let personWide: Bool
            if case .revokedAt = outcome, case .webexAuthorizations? = provider?.revocation {
                personWide = true
            } else {
                personWide = false
            }
            let revokedWith = try vault.revoke(
                record, integration: integration,
                revocation: UnlockedVault.Revocation(
                    trigger: local ? .revokeLocal : .revoke, outcome: outcome, detail: remoteNote,
                    personWideAt: personWide ? provider?.id.rawValue ?? "?" : nil), now: context.now())
            let samePerson = revokedWith.samePerson
            let unknownPerson = revokedWith.unknownPerson
            if case .revokedAt = outcome {
                context.console.err(
                    "Revoked the tokens of '\(account)' at the provider and removed the pair from the vault.\n")
                let integrationName = integration?.name ?? "?"
                if !samePerson.isEmpty {
                    let quoted = samePerson.map { "'\($0.name)'" }
                    let names =
                        quoted.count == 1
                        ? quoted[0] : quoted.dropLast().joined(separator: ", ") + " and " + quoted.last!
                    context.console.err(
                        "\(provider?.displayName ?? "The provider") revokes every token the same person gave integration '\(integrationName)': those of \(names) are revoked too, and marked needs-reauth.\n"
                    )
                    context.console.err(
                        "tokenvault: hint: run 'tokenvault authorize NAME' for each of them that should keep working\n")
                }
                if !unknownPerson.isEmpty {
                    let names = unknownPerson.map { "'\($0.name)'" }.joined(separator: ", ")
                    context.console.warn(
                        "\(names) of integration '\(integrationName)' may have lost their tokens too if they are the same person ('tokenvault whoami NAME' records who an account is)"
                    )
                }
            } else {
                context.console.err("Removed the token pair of '\(account)' from the vault.\n")
                // The provider was asked and said no (or could not be reached): a script must see that the tokens
                // are still good at the provider.
                if revocationFailed {
                    throw CLIError.revokeFailed(
                        account: account, reason: remoteNote ?? "unknown reason",
                        hint: (provider ?? .webex).hints.revokeElsewhere)
                }
                if !local {
                    context.console.warn(
                        "not revoked at the provider (\(remoteNote ?? "unknown reason")): the tokens stay valid until they expire."
                    )
                }
                context.console.err("tokenvault: hint: \((provider ?? .webex).hints.revokeElsewhere).\n")
            }
        }
    }
}
