import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

extension TokenVault {
    /// The old name of `integration remove`.
    struct RemoveIntegration: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-integration", abstract: "Same as 'tokenvault integration remove'.", shouldDisplay: false)

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
                context.console.err("Removing \(affected.count) account\(affected.count == 1 ? "" : "s") with it: \(affected.map(\.name).joined(separator: ", ")).\n")
                try vault.removeIntegration(integration, accounts: affected, now: context.now())
            } else {
                try UnlockedVault.removeUnusedIntegration(integration, from: database)
            }
            context.console.err("Removed integration '\(name)'.\n")
        }
    }
}
