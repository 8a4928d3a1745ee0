import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    /// The old name of `integration add`, kept for scripts.
    struct Add: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Same as 'tokenvault integration add'.", shouldDisplay: false)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: AddIntegrationOptions

        func run(_ context: Context) async throws { try await options.run(global: global, context: context) }
    }
}
