import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    /// The old name of `integration list`.
    struct Integrations: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "integrations", abstract: "Same as 'tokenvault integration list'.", shouldDisplay: false)

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws {
            try ListIntegrations.list(try openDatabase(context), json: json, context: context)
        }
    }
}
