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
            subcommands: [AddIntegration.self, ListIntegrations.self, ShowIntegration.self, EditIntegration.self, RemoveIntegrationCommand.self])
    }
}
