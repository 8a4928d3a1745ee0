import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

/// The root command. Subcommands are nested types in Commands/; `run(arguments:context:)` is the entry point
/// used by the executable and by in-process tests.
public struct TokenVault: AsyncParsableCommand {
    /// The version number, from the top-level VERSION file (the one place it is written; the package and the
    /// tarball take theirs from there too).
    public static let version = BuildInfo.version

    public static let configuration = CommandConfiguration(
        commandName: "tokenvault",
        abstract: "Keep OAuth token pairs (access + refresh) encrypted on disk, alive, and ready for scripts.",
        discussion: """
            tokenvault keeps OAuth token pairs for many accounts (Webex, Google, Microsoft, GitHub, Slack, any \
            OAuth 2.0 or OpenID Connect provider) in one encrypted vault, gets them through the providers' own \
            authorization flows, refreshes them before they lapse, and hands them to shells and scripts. A Webex \
            access token lasts 14 days and its refresh token 90: a refresh token not used in time is gone, and only a \
            person in a browser gets a new one.

            Getting started:
              tokenvault init
              tokenvault add work --from-url 'https://webexapis.com/v1/authorize?client_id=...'
              tokenvault authorize alice
              eval "$(tokenvault env alice)"
              tokenvault refresh-all            (daily, from cron or a systemd timer)

            Options every command takes, before the command or after it:
              --vault <location>   a vault file or a PostgreSQL location (postgresql://...,
                                   service=...); default $TOKENVAULT_VAULT, else
                                   $XDG_DATA_HOME/tokenvault/vault.db
              --passphrase-fd <n>  read the passphrase from this open file descriptor
              --key-slot <name>    open the vault with this key slot's passphrase only
              --verbose            trace HTTP requests on stderr (secrets redacted)

            For example: tokenvault --vault service=tokenvault list

            Durations are written 90s, 10m, 12h, 1d, 2w, combinations like 1d12h, or a bare number of seconds. \
            Tokens, exports and JSON go to stdout; messages go to stderr as "tokenvault: error: ..." and \
            "tokenvault: hint: ...".

            Exit codes (the same for every command):
              0  success
              1  other error: file system or database, the vault's store failed (new pairs wait
                 in the local journal), a lock held by another process, a newer vault schema
              2  usage: bad arguments, options or names, a name in use, a vault that exists
              3  wrong or missing passphrase
              4  not found: no vault, account, integration or key slot
              5  needs re-authorization: the provider refused the refresh token, no usable token
              6  provider or network error: HTTP, TLS, timeouts, consent denied, a failed revoke
              7  integrity failure: a sealed value, the audit log, a key slot or an account's
                 row failed its check

            exec exits with its command's status instead (127: not found, 126: cannot run).

            Environment:
              TOKENVAULT_VAULT            the vault's location when --vault is not given
              TOKENVAULT_PASSPHRASE_FILE  a file holding the passphrase: yours, mode 0600 or
                                          0400, not a symbolic link
              TOKENVAULT_PASSPHRASE       the passphrase itself (least safe: every child inherits
                                          it unless removed, and /proc shows it to you and root)
              TOKENVAULT_KEY_SLOT         the key slot to try, as --key-slot
              TOKENVAULT_JOURNAL          "off": keep no refresh journal
              BROWSER                     browser commands for authorize, separated by ':'
                                          (%s stands for the URL); else xdg-open when
                                          DISPLAY or WAYLAND_DISPLAY is set
              XDG_DATA_HOME, XDG_STATE_HOME, XDG_RUNTIME_DIR
                                          where the vault, the journal and the agent live
              PGPASSWORD, PGSERVICEFILE, PGSSLMODE, PGCONNECT_TIMEOUT, ...
                                          read by libpq for a PostgreSQL vault (tokenvault's
                                          connect timeout is 15 s unless PGCONNECT_TIMEOUT is set)

            A --notify command gets TOKENVAULT_ACCOUNT, TOKENVAULT_INTEGRATION, TOKENVAULT_EVENT and \
            TOKENVAULT_DETAIL, never a token.

            Files:
              $XDG_DATA_HOME/tokenvault/vault.db, else ~/.local/share/tokenvault/vault.db
                  the default vault (0600, in a 0700 directory)
              VAULT.locks/
                  per-account refresh locks beside a vault file (0700, files 0600)
              $XDG_RUNTIME_DIR/tokenvault/agent-DEV-INODE.sock
                  the agent's socket, else under /tmp/tokenvault-agent-UID/ or ~/.tokenvault-agent/
              $XDG_RUNTIME_DIR/tokenvault/, else tokenvault-browser/ beside the vault
                  the private page that sends the browser on during authorize
              $XDG_STATE_HOME/tokenvault/journal/, else ~/.local/state/tokenvault/journal/
                  new pairs the vault's store could not take yet (sealed)

            Run 'tokenvault help <command>' for one command's options. The guides (providers, key slots, a \
            shared vault on PostgreSQL, the agent, monitoring, cron and systemd, the security model) are the \
            README.md and docs/ of tokenvault's source.
            """,
        version: VersionText.text,
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
        let arguments = GlobalOptions.hoisted(arguments)
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
            for warning in VaultStores.warnings(forLocation: VaultLocation.resolve(option: global.vault, context: context)) {
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
    @Option(name: .long, help: ArgumentHelp("The vault: a file, or a PostgreSQL location (default: $TOKENVAULT_VAULT, else $XDG_DATA_HOME/tokenvault/vault.db).", valueName: "location"))
    var vault: String?

    @Option(name: .long, help: ArgumentHelp("Read the passphrase from this open file descriptor (for cron and scripts).", valueName: "n"))
    var passphraseFd: Int32?

    @Flag(name: .long, help: "Trace HTTP requests on stderr (tokens, secrets, codes and verifiers redacted).")
    var verbose = false

    @Option(name: .long, help: ArgumentHelp("Open the vault with this key slot's passphrase only (default: $TOKENVAULT_KEY_SLOT, else each slot in turn).", valueName: "name"),
            completion: .keySlotNames)
    var keySlot: String?

    /// The options above with a value, and the one without.
    static let valued: Set<String> = ["--vault", "--passphrase-fd", "--key-slot"]
    static let flags: Set<String> = ["--verbose"]

    /// Options every command takes, written before the command (`tokenvault --vault X keys add bob`, as `git -C`
    /// and `kubectl --context` are), moved to just after the command's name (`keys add --vault X bob`), where the
    /// parser reads them. Nothing after the command's name moves, so `exec … -- CMD` keeps its arguments as given.
    static func hoisted(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            let name = first.split(separator: "=", maxSplits: 1).first.map(String.init) ?? first
            if flags.contains(first) {
                leading.append(first)
                rest = rest.dropFirst()
            } else if valued.contains(name) {
                leading.append(first)
                rest = rest.dropFirst()
                if name == first, let value = rest.first {  // `--vault X`, not `--vault=X`
                    leading.append(value)
                    rest = rest.dropFirst()
                }
            } else {
                break
            }
        }
        guard !leading.isEmpty else { return arguments }
        // The command's path: `keys add`, `agent status`, `integration edit`, or one word.
        var path: [String] = []
        var commands: [ParsableCommand.Type] = TokenVault.configuration.subcommands
        while let word = rest.first, let command = commands.first(where: {
            $0._commandName == word || $0.configuration.aliases.contains(word)
        }) {
            path.append(word)
            rest = rest.dropFirst()
            commands = command.configuration.subcommands
        }
        return path + leading + Array(rest)
    }

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

    func vaultLocation(_ context: Context) -> VaultLocation { VaultLocation.resolve(option: global.vault, context: context) }

    func vaultPath(_ context: Context) -> String { vaultLocation(context).text }

    /// The vault for commands that need no passphrase.
    func openDatabase(_ context: Context) throws -> any VaultStorage {
        try VaultStores.open(vaultLocation(context))
    }

    /// Opens the vault and asks for the passphrase once; the KDF runs once per command.
    /// Through the vault's agent when one holds it (`tokenvault unlock`).
    func unlock(_ context: Context, allowAgent: Bool = true) throws -> UnlockedVault {
        try VaultUnlocking.unlock(try openDatabase(context), global: global, context: context, allowAgent: allowAgent)
    }
}

/// Names of integrations, accounts and key slots, checked where they are created: the store's rule
/// (``StoredName``), which every name read back must obey too.
enum Names {
    static func check(_ name: String, what: String) throws {
        guard StoredName.isValid(name) else {
            throw CLIError.usage("invalid \(what) name \(Format.quoted(name))", hint: "use \(StoredName.rule)")
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
        if command == nil, let word = arguments.first, !word.hasPrefix("-") {
            let hint = nearestCommand(to: word).map { "did you mean 'tokenvault \($0)'? 'tokenvault --help' lists the commands" }
            return ("unknown command \(Format.quoted(word))", hint ?? "'tokenvault --help' lists the commands")
        }
        let help = command.map { "tokenvault \($0._commandName) --help" } ?? "tokenvault --help"
        let hint = command == nil && !arguments.isEmpty && !arguments[0].hasPrefix("-")
            ? "'\(help)' lists the commands"
            : "'\(help)' shows the usage"
        return (lowercasedFirstWord(message), hint)
    }

    /// The subcommand the arguments name, if any (the first word that is one, by its name or an alias).
    static func subcommand(in arguments: [String]) -> ParsableCommand.Type? {
        guard let first = arguments.first else { return nil }
        return TokenVault.configuration.subcommands.first { $0._commandName == first || $0.configuration.aliases.contains(first) }
    }

    /// The command (or alias) nearest to a mistyped word: at most two edits away (one for words of up to four
    /// letters), or a word it begins with; nil when none is that near.
    static func nearestCommand(to word: String) -> String? {
        let names = TokenVault.configuration.subcommands.flatMap { [$0._commandName] + $0.configuration.aliases }
            .filter { !$0.hasPrefix("-") && $0 != "help" }
        let typed = word.lowercased()
        if let prefixed = names.filter({ $0.hasPrefix(typed) && typed.count >= 3 }).min(by: { $0.count < $1.count }) {
            return prefixed
        }
        var best: (name: String, distance: Int)?
        for name in names.sorted() {
            let distance = editDistance(typed, name)
            if best == nil || distance < best!.distance { best = (name, distance) }
        }
        guard let best, best.distance <= (typed.count <= 4 ? 1 : 2) else { return nil }
        return best.name
    }

    /// Levenshtein distance, with an adjacent swap counted as one edit ("lsit").
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }

    /// "Missing expected argument" → "missing expected argument", as the rest of tokenvault's errors read;
    /// a word in capitals (an acronym, a name) is left alone.
    static func lowercasedFirstWord(_ text: String) -> String {
        guard let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true else { return text }
        return first.lowercased() + text.dropFirst()
    }
}
