import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct Env: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "env",
            abstract: "Print the account's access token as a shell export: eval \"$(tokenvault env alice)\".",
            aliases: ["export-env"])

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Option(help: "Output format: sh (bash, dash, zsh), fish, dotenv (NAME=value, unquoted; token characters only) or json.")
        var format: EnvExport.Style = .sh

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: DurationArgument = DurationArgument(seconds: 600)

        func run(_ context: Context) async throws {
            let (token, integration) = try await freshAccessToken(account: account, global: global, minValid: minValid.seconds,
                                                                  trigger: .env, context: context)
            context.console.out(try EnvExport.render([(integration.envVar, token)], format: format))
        }
    }
}
