import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

extension TokenVault {
    struct RemoveIntegrationCommand: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove an integration; refused while accounts use it unless --force (which removes them too).")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The integration's name.", completion: .integrationNames)
        var name: String

        @Flag(help: "Also remove the accounts that use it (their token pairs are deleted locally, not revoked).")
        var force = false

        func run(_ context: Context) async throws {
            try await RemoveIntegration.remove(name, force: force, global: global, context: context)
        }
    }
}
