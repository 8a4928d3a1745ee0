import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct AddIntegration: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Register an OAuth integration (client id, secret, redirect URI, scopes).",
            discussion: """
                The client secret is read from the terminal without echo, or from standard input with \
                --client-secret-stdin; never from the command line. --from-url takes the "OAuth Authorization URL" \
                the Webex developer portal shows for an integration and fills client id, redirect URI and scopes.
                Examples:
                  tokenvault integration add reporting --client-id C0ffee… --redirect-uri http://localhost:8765/callback --scopes "spark:people_read spark:rooms_read"
                  tokenvault integration add reporting --from-url 'https://webexapis.com/v1/authorize?client_id=…&response_type=code&redirect_uri=…&scope=…'
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: AddIntegrationOptions

        func run(_ context: Context) async throws { try await options.run(global: global, context: context) }
    }
}
