import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct Env: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "env",
            abstract: "Print the account's access token as a shell export: eval \"$(tokenvault env alice)\".",
            discussion: """
                The variable is the integration's (default WEBEX_ACCESS_TOKEN for Webex). The pair is refreshed \
                first when the access token lapses within --min-valid; an expired token is never printed (exit 5 \
                or 6). While the token is still valid, a provider that is down costs at most about 2 s and a \
                warning. Formats: sh (export NAME='...'), fish (set -gx NAME '...';), dotenv (NAME=value, unquoted) \
                and json. eval "$(...)" hides a failure: in a script, assign first (out=$(tokenvault env alice)) and \
                eval "$out" on its own line. 'export-env' is the same command.

                Examples:
                  eval "$(tokenvault env alice)"
                  tokenvault env alice --format fish | source
                  tokenvault env alice --format dotenv > .env
                """,
            aliases: ["export-env"])

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Option(
            help:
                "Output format: sh (bash, dash, zsh), fish, dotenv (NAME=value, unquoted; token characters only) or json."
        )
        var format: EnvExport.Style = .sh

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: DurationArgument = DurationArgument(seconds: 600)

        func run(_ context: Context) async throws {
            if let (token, variable) = Lending.throughAgent(
                account: account, global: global, minValid: minValid.seconds, trigger: "env", context: context)
            {
                context.console.out(try EnvExport.render([(variable, token)], format: format))
                return
            }
            let (token, integration) = try await freshAccessToken(
                account: account, global: global, minValid: minValid.seconds,
                trigger: .env, context: context)
            context.console.out(try EnvExport.render([(integration.envVar, token)], format: format))
        }
    }
}
