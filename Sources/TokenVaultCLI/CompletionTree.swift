import ArgumentParser
import Foundation

/// The command tree the shell completion scripts are generated from: tokenvault's own, plus the other names a
/// command answers to. The parser's generators leave out hidden commands (the old `add`, `integrations`,
/// `remove-integration`) and aliases (`status`, `export-env`), so those completed as nothing; here each is a
/// visible command of that name with the same arguments. The scripts call `tokenvault ---completion NAME …` back,
/// and the real parser resolves NAME, alias or not, to the real command and its completion functions.
struct CompletionTree: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: TokenVault.configuration.commandName,
        abstract: TokenVault.configuration.abstract,
        subcommands: TokenVault.configuration.subcommands.filter { $0.configuration.shouldDisplay } + [
            AddName.self, IntegrationsName.self, RemoveIntegrationName.self, StatusName.self, ExportEnvName.self,
        ])

    struct AddName: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: TokenVault.Add.configuration.abstract)
        @OptionGroup var command: TokenVault.Add
    }

    struct IntegrationsName: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "integrations", abstract: TokenVault.Integrations.configuration.abstract)
        @OptionGroup var command: TokenVault.Integrations
    }

    struct RemoveIntegrationName: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-integration", abstract: TokenVault.RemoveIntegrationOldName.configuration.abstract)
        @OptionGroup var command: TokenVault.RemoveIntegrationOldName
    }

    struct StatusName: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Same as 'tokenvault list'.")
        @OptionGroup var command: TokenVault.List
    }

    struct ExportEnvName: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-env", abstract: "Same as 'tokenvault env'.")
        @OptionGroup var command: TokenVault.Env
    }

    /// The shell `--generate-completion-script SHELL` (or `=SHELL`) asks for, wherever it stands, as the parser
    /// reads it (before any `--`); without a value, the shell tokenvault runs under (`$SHELL`). Nil: not asked, or not a shell the
    /// parser knows (it then reports the error).
    static func requestedShell(_ arguments: [String]) -> CompletionShell? {
        let flag = "--generate-completion-script"
        for (i, argument) in arguments.enumerated() {
            // After `--` the words are another program's (`exec ACCOUNT -- CMD …`).
            if argument == "--" { return nil }
            if argument.hasPrefix(flag + "=") {
                return CompletionShell(rawValue: String(argument.dropFirst(flag.count + 1)))
            }
            guard argument == flag else { continue }
            guard i + 1 < arguments.count, !arguments[i + 1].hasPrefix("-") else {
                return CompletionShell.autodetected()
            }
            return CompletionShell(rawValue: arguments[i + 1])
        }
        return nil
    }
}
