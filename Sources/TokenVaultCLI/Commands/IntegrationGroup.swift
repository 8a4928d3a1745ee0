import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    /// `tokenvault integration add|list|remove|edit`.
    struct IntegrationGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "integration",
            abstract: "Register, list, show, edit and remove OAuth integrations.",
            discussion: """
                An integration is an OAuth client registered at a provider (client id, client secret, redirect URI, \
                scopes); each account's token pair is obtained through one. 'tokenvault add', 'tokenvault \
                integrations' and 'tokenvault remove-integration' are the older names of 'integration add', \
                'integration list' and 'integration remove'.
                """,
            subcommands: [
                AddIntegration.self, ListIntegrations.self, ShowIntegration.self, EditIntegration.self,
                RemoveIntegration.self,
            ])
    }
}
