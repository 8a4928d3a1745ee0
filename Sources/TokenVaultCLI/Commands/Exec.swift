import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct Exec: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "exec",
            abstract: "Run a command with the account's access token in its environment.",
            discussion: """
                tokenvault replaces itself with the command (like a shell's exec): stdin, stdout, stderr, signals and
                the exit status are the command's own. The token is passed only in the environment, never on argv.
                Example: tokenvault exec alice -- python3 report.py --since yesterday
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: DurationArgument = DurationArgument(seconds: 600)

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after --.")
        var command: [String] = []

        func run(_ context: Context) async throws {
            var command = command
            if command.first == "--" { command.removeFirst() }
            guard let program = command.first else {
                throw CLIError.usage(
                    "no command to run", hint: Format.command("tokenvault exec \(account) -- COMMAND [ARGS…]"))
            }
            let (token, integration) = try await freshAccessToken(
                account: account, global: global, minValid: minValid.seconds,
                trigger: .exec, context: context)
            // The vault's passphrase, in any form, is not the child's.
            var environment = ChildEnvironment.scrubbed(context.environment)
            environment[integration.envVar] = token
            let status = try context.execute(program, Array(command.dropFirst()), environment)
            throw CommandExit(code: ExitStatus(rawValue: status) ?? .other, raw: status)
        }
    }
}
