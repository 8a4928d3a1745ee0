import Foundation
import VaultStore

/// `env NAME` and `token NAME`, typed as they are most often, answered through the agent before the argument
/// parser runs: one request to its token endpoint. Building and running the parser for `env`'s command line cost
/// more instructions than the whole of `tokenvault --version` (callgrind: 16.5 M of the 26.9 M `env` took through
/// the agent, against 15.4 M for `--version`), so the plain forms skip it. Only those: any option (`--format`,
/// `--min-valid`, `--vault`, `--passphrase-fd`, `--verbose`), a name that looks like an option, and `token` inside
/// `exec --serve` (TOKENVAULT_SOCKET) go the usual way, as does everything when no agent answers with a token. What
/// it prints is what the parsed command prints through the agent, byte for byte (a test compares the two).
enum AgentShortcut {
    /// The exit code when the shortcut answered; nil to go the usual way.
    static func run(_ arguments: [String], context: Context) -> Int32? {
        guard arguments.count == 2, let command = arguments.first, ["env", "export-env", "token"].contains(command)
        else { return nil }
        let account = arguments[1]
        guard !account.isEmpty, !account.hasPrefix("-"), account != "help" else { return nil }
        let isToken = command == "token"
        if isToken, let socket = context.environment["TOKENVAULT_SOCKET"], !socket.isEmpty { return nil }
        // The defaults of the parsed commands: --min-valid 10m, --format sh.
        let location = VaultLocation.resolve(option: nil, context: context)
        guard
            let answer = Lending.askAgent(
                account: account, location: location, minValid: 600, trigger: isToken ? "token" : "env",
                context: context)
        else { return nil }
        let output: String
        if isToken {
            guard !answer.token.contains(where: \.isNewline) else { return nil }  // the usual path says why
            output = answer.token + "\n"
        } else {
            guard let text = try? EnvExport.render([(answer.variable, answer.token)], format: .sh) else { return nil }
            output = text
        }
        // In the order the parsed command gives them: where the vault is, then what the lookup said.
        for warning in VaultStores.warnings(forLocation: location) {
            context.console.warn(warning)
        }
        for warning in answer.warnings { context.console.warn(warning) }
        context.console.out(output)
        return 0
    }
}
