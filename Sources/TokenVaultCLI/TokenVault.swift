import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultStore

/// The root command. Subcommands are nested types in Commands/; `run(arguments:context:)` is the entry point
/// used by the executable and by in-process tests.
public struct TokenVault: AsyncParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "tokenvault",
        abstract: "Keep OAuth token pairs (access + refresh) encrypted on disk, alive, and ready for scripts.",
        discussion: """
            Exit codes: 0 ok, 1 other error, 2 usage, 3 wrong or missing passphrase, 4 no such vault/account/integration,
            5 needs re-authorization, 6 provider or network error, 7 integrity failure.
            """,
        version: version,
        subcommands: [
            Init.self, IntegrationGroup.self, Add.self, Integrations.self, RemoveIntegration.self, Import.self, List.self,
            Authorize.self, Refresh.self, RefreshAll.self, Env.self, Token.self, Exec.self, Whoami.self,
            Revoke.self, Passwd.self, Audit.self, Unlock.self, Lock.self, AgentGroup.self, Check.self, Copy.self,
            KeysGroup.self,
        ]
    )

    public init() {}

    /// Parses and runs one command line; returns the exit code. Errors print as `tokenvault: error: …`
    /// plus a `tokenvault: hint: …` line, never a stack trace.
    public static func run(arguments: [String], context: Context) async -> Int32 {
        if let shell = CompletionTree.requestedShell(arguments) {
            context.console.out(CompletionTree.completionScript(for: shell))
            return 0
        }
        let command: any ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // --help, --version, a completion script, or the names a shell completion asked for (none: silent).
                let text = fullMessage(for: error)
                if !text.isEmpty { context.console.out(text.hasSuffix("\n") ? text : text + "\n") }
                return 0
            }
            let usage = UsageError.describe(error, arguments: arguments)
            context.console.err("tokenvault: error: \(usage.message)\n")
            context.console.err("tokenvault: hint: \(usage.hint)\n")
            return ExitStatus.usage.rawValue
        }
        let global = (command as? any VaultCommand)?.global
        if let global {
            for warning in VaultStores.warnings(forLocation: VaultLocation.path(option: global.vault, context: context)) {
                context.console.err(warning)
            }
        }
        // Said last, after everything the command had to say (exec reports it itself before replacing the process).
        defer { MemoryLockReport.print(context: context, verbose: global?.verbose ?? false) }
        do {
            try await Context.$current.withValue(context) {
                if var asyncCommand = command as? any AsyncParsableCommand {
                    try await asyncCommand.run()
                } else {
                    var command = command
                    try command.run()
                }
            }
            return 0
        } catch let exit as CommandExit {
            return exit.raw ?? exit.code.rawValue
        } catch let error as ValidationError {
            context.console.err("tokenvault: error: \(error.message)\n")
            context.console.err("tokenvault: hint: \(UsageError.describe(error, arguments: arguments).hint)\n")
            return ExitStatus.usage.rawValue
        } catch {
            if exitCode(for: error) == .success { context.console.out(fullMessage(for: error) + "\n"); return 0 }
            let report = ErrorReport.describe(error)
            context.console.err("tokenvault: error: \(report.message)\n")
            if let hint = report.hint { context.console.err("tokenvault: hint: \(hint)\n") }
            return report.code.rawValue
        }
    }
}

/// Ends a command with a chosen exit code after it has printed what it had to say.
struct CommandExit: Error {
    var code: ExitStatus
    /// The exact status to exit with (exec passes its command's through); defaults to `code`.
    var raw: Int32? = nil
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The vault file (default: $TOKENVAULT_VAULT, else $XDG_DATA_HOME/tokenvault/vault.db).", valueName: "path"))
    var vault: String?

    @Option(name: .long, help: ArgumentHelp("Read the passphrase from this open file descriptor (for cron and scripts).", valueName: "n"))
    var passphraseFd: Int32?

    @Flag(name: .long, help: "Trace HTTP requests on stderr (tokens, secrets, codes and verifiers redacted).")
    var verbose = false

    @Option(name: .long, help: ArgumentHelp("Open the vault with this key slot's passphrase only (default: $TOKENVAULT_KEY_SLOT, else each slot in turn).", valueName: "name"),
            completion: .keySlotNames)
    var keySlot: String?

    /// The key slot to open with: `--key-slot`, else `TOKENVAULT_KEY_SLOT`; nil tries every slot.
    func keySlot(_ context: Context) -> String? {
        if let keySlot { return keySlot }
        guard let named = context.environment["TOKENVAULT_KEY_SLOT"], !named.isEmpty else { return nil }
        return named
    }
}

/// A subcommand that runs with the injected context.
protocol VaultCommand: AsyncParsableCommand {
    var global: GlobalOptions { get }
    func run(_ context: Context) async throws
}

extension VaultCommand {
    mutating func run() async throws {
        guard let context = Context.current else { fatalError("commands run through TokenVault.run(arguments:context:)") }
        try await run(context)
    }

    func vaultPath(_ context: Context) -> String { VaultLocation.path(option: global.vault, context: context) }

    /// The vault for commands that need no passphrase.
    func openDatabase(_ context: Context) throws -> any VaultStorage {
        try VaultStores.open(vaultPath(context))
    }

    /// Opens the vault and asks for the passphrase once; the KDF runs once per command.
    /// Through the vault's agent when one holds it (`tokenvault unlock`).
    func unlock(_ context: Context, allowAgent: Bool = true) throws -> UnlockedVault {
        try VaultUnlocking.unlock(try openDatabase(context), global: global, context: context, allowAgent: allowAgent)
    }
}

/// Names of integrations and accounts: letters, digits, `.`, `_`, `-`, `@`; 1 to 64 characters.
enum Names {
    static func check(_ name: String, what: String) throws {
        let allowed = name.unicodeScalars.allSatisfy {
            ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || ".-_@".unicodeScalars.contains($0)
        }
        guard !name.isEmpty, name.count <= 64, allowed else {
            throw CLIError.usage("invalid \(what) name \(Format.quoted(name))",
                                 hint: "use 1 to 64 letters, digits, '.', '_', '-' or '@'")
        }
    }
}

/// Argument errors in the shape of every other error (`tokenvault: error: …` and a hint), instead of the
/// parser's `Error: …` followed by the whole usage.
enum UsageError {
    static func describe(_ error: any Error, arguments: [String]) -> (message: String, hint: String) {
        let message = TokenVault.message(for: error)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .joined(separator: "; ")
        let command = subcommand(in: arguments)
        let help = command.map { "tokenvault \($0._commandName) --help" } ?? "tokenvault --help"
        let hint = command == nil && !arguments.isEmpty && !arguments[0].hasPrefix("-")
            ? "'\(help)' lists the commands"
            : "'\(help)' shows the usage"
        return (lowercasedFirstWord(message), hint)
    }

    /// The subcommand the arguments name, if any (the first word that is one).
    static func subcommand(in arguments: [String]) -> ParsableCommand.Type? {
        guard let first = arguments.first else { return nil }
        return TokenVault.configuration.subcommands.first { $0._commandName == first }
    }

    /// "Missing expected argument" → "missing expected argument", as the rest of tokenvault's errors read;
    /// a word in capitals (an acronym, a name) is left alone.
    static func lowercasedFirstWord(_ text: String) -> String {
        guard let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true else { return text }
        return first.lowercased() + text.dropFirst()
    }
}
