import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

extension TokenVault {
    struct RemoveIntegration: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove an integration; refused while accounts use it unless --force (which removes them too).",
            discussion: """
                Refused (exit 2) while accounts use the integration. With --force their token pairs are deleted \
                locally, without revoking them at the provider, and each is audited as revoked; 'tokenvault revoke' \
                first revokes at the provider. Needs the passphrase only with --force. The old name is \
                'tokenvault remove-integration'.
                Example:
                  tokenvault integration remove old --force
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: RemoveIntegrationOptions

        func run(_ context: Context) async throws {
            try await Self.remove(options.name, force: options.force, global: global, context: context)
        }

        static func remove(_ name: String, force: Bool, global: GlobalOptions, context: Context) async throws {
            let database = try VaultStores.open(VaultLocation.path(option: global.vault, context: context))
            let integration = try database.integration(named: name)
            let affected = try database.accounts().filter { $0.integrationId == integration.id }
            if !affected.isEmpty && !force { throw StoreError.integrationInUse(name, accounts: affected.count) }
            // The audit entries for the removed accounts need the key, so unlock only when there are some.
            if !affected.isEmpty {
                let vault = try VaultUnlocking.unlock(database, global: global, context: context)
                context.console.err(
                    "Removing \(affected.count) account\(affected.count == 1 ? "" : "s") with it: \(affected.map(\.name).joined(separator: ", ")).\n"
                )
                try vault.removeIntegration(integration, accounts: affected, now: context.now())
            } else {
                try UnlockedVault.removeUnusedIntegration(integration, from: database)
            }
            context.console.err("Removed integration '\(name)'.\n")
        }
    }
}

/// What `integration remove` and its old name `remove-integration` take.
struct RemoveIntegrationOptions: ParsableArguments {
    @Argument(help: "The integration's name.", completion: .integrationNames)
    var name: String

    @Flag(help: "Also remove the accounts that use it (their token pairs are deleted locally, not revoked).")
    var force = false
}
