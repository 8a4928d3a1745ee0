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
        static let configuration = CommandConfiguration(commandName: "add", abstract: TokenVault.Add.configuration.abstract)
        @OptionGroup var command: TokenVault.Add
    }

    struct IntegrationsName: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "integrations", abstract: TokenVault.Integrations.configuration.abstract)
        @OptionGroup var command: TokenVault.Integrations
    }

    struct RemoveIntegrationName: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove-integration", abstract: TokenVault.RemoveIntegration.configuration.abstract)
        @OptionGroup var command: TokenVault.RemoveIntegration
    }

    struct StatusName: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Same as 'tokenvault list'.")
        @OptionGroup var command: TokenVault.List
    }

    struct ExportEnvName: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "export-env", abstract: "Same as 'tokenvault env'.")
        @OptionGroup var command: TokenVault.Env
    }

    /// The shell `--generate-completion-script SHELL` (or `=SHELL`) asks for, when that is the whole command line.
    static func requestedShell(_ arguments: [String]) -> CompletionShell? {
        let flag = "--generate-completion-script"
        if arguments.count == 2, arguments[0] == flag { return CompletionShell(rawValue: arguments[1]) }
        if arguments.count == 1, arguments[0].hasPrefix(flag + "=") { return CompletionShell(rawValue: String(arguments[0].dropFirst(flag.count + 1))) }
        return nil
    }
}
