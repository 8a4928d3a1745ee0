import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct Token: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "token", abstract: "Print the account's bare access token.",
            discussion: """
                Refreshed first as 'tokenvault env' does (--min-valid); never an expired token (exit 5 or 6). \
                Inside 'tokenvault exec --serve' (TOKENVAULT_SOCKET set, no --vault) it asks that command's token \
                endpoint instead, with no passphrase.
                Example:
                  token=$(tokenvault token alice)
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: DurationArgument = DurationArgument(seconds: 600)

        func run(_ context: Context) async throws {
            // Inside `exec --serve`: the endpoint it runs answers, with no passphrase (unless a vault is named).
            if let socket = context.environment["TOKENVAULT_SOCKET"], !socket.isEmpty, global.vault == nil {
                let token = try await Task.detached { try Lending.tokenFromEndpoint(socket: socket, account: account) }
                    .value
                guard !token.contains(where: \.isNewline) else {
                    throw CLIError.integrity(
                        "the access token of '\(account)' contains a line break; refusing to print it")
                }
                context.console.out(token + "\n")
                return
            }
            if let (token, _) = Lending.throughAgent(
                account: account, global: global, minValid: minValid.seconds, trigger: "token", context: context)
            {
                guard !token.contains(where: \.isNewline) else {
                    throw CLIError.integrity(
                        "the access token of '\(account)' contains a line break; refusing to print it")
                }
                context.console.out(token + "\n")
                return
            }
            let (token, _) = try await freshAccessToken(
                account: account, global: global, minValid: minValid.seconds,
                trigger: .token, context: context)
            guard !token.contains(where: \.isNewline) else {
                throw CLIError.integrity("the access token of '\(account)' contains a line break; refusing to print it")
            }
            context.console.out(token + "\n")
        }
    }
}
