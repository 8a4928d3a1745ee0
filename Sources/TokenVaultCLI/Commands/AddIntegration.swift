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
                --client-secret-stdin; never from the command line (--public-client: none). --from-url takes the \
                "OAuth Authorization URL" the Webex developer portal shows for an integration and fills client id, \
                redirect URI and scopes.

                --provider picks the preset (default webex): its endpoints, client authentication, default scopes \
                and variable, and how refreshing, revocation and whoami work. Names are 1 to 64 letters, digits, \
                '.', '_', '-' or '@'; URIs must be absolute http or https, plain http only to localhost, 127.0.0.1 \
                or [::1]. The redirect URI must be the one registered at the provider, character for character: \
                an http one on a loopback address is served by 'authorize' itself, any other is completed by \
                pasting. The variable may not be one that changes how programs run (PATH, LD_*, BASH_ENV, \
                *_PROXY, ...): exit 2.

                Examples:
                  tokenvault integration add reporting --client-id C0ffee... --redirect-uri http://localhost:8765/callback --scopes "spark:people_read spark:rooms_read"
                  tokenvault integration add reporting --from-url 'https://webexapis.com/v1/authorize?client_id=...&response_type=code&redirect_uri=...&scope=...'
                  printf '%s\\n' "$SECRET" | tokenvault integration add bots --client-id C... --redirect-uri https://localhost:8443/cb --scopes "spark:all" --client-secret-stdin
                  tokenvault integration add gmail --provider google --client-id C... --redirect-uri http://127.0.0.1:8765/callback
                  tokenvault integration add m365 --provider microsoft --tenant organizations --public-client --client-id C... --redirect-uri http://localhost:8765/callback
                  tokenvault integration add gh --provider github --client-id Iv... --redirect-uri http://127.0.0.1:8765/callback
                  tokenvault integration add sso --provider generic --issuer https://sso.example.com/realms/main --client-id C... --redirect-uri http://127.0.0.1:8765/callback
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: AddIntegrationOptions

        func run(_ context: Context) async throws { try await options.run(global: global, context: context) }
    }
}
