import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct RemoveIntegrationCommand: VaultCommand {
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
            try await RemoveIntegration.remove(options.name, force: options.force, global: global, context: context)
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
