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
              CREDENTIALS_DIRECTORY       a systemd credential 'passphrase' in it, when
                                          TOKENVAULT_PASSPHRASE_FILE is not set
              TOKENVAULT_SOCKET           set by 'exec --serve' for its command: 'token' asks it
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
              $XDG_RUNTIME_DIR/tokenvault/token-DEV-INODE.sock
                  the agent's token endpoint (yours alone); 'serve' listens on --socket, else
                  $RUNTIME_DIRECTORY/token.sock
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
            Init.self, IntegrationGroup.self, Add.self, Integrations.self, RemoveIntegrationOldName.self, Import.self,
            List.self,
            Authorize.self, Refresh.self, RefreshAll.self, Env.self, Token.self, Exec.self, Whoami.self,
            Revoke.self, Passwd.self, Audit.self, Unlock.self, Lock.self, AgentGroup.self, Check.self, Copy.self,
            KeysGroup.self, Serve.self, GrantAccount.self, UngrantAccount.self, ListGrants.self,
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
        if let code = AgentShortcut.run(arguments, context: context) { return code }
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
            for warning in VaultStores.warnings(
                forLocation: VaultLocation.resolve(option: global.vault, context: context))
            {
                context.console.warn(warning)
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
            if exitCode(for: error) == .success {
                context.console.out(fullMessage(for: error) + "\n")
                return 0
            }
            let report = ErrorReport.describe(error)
            context.console.err("tokenvault: error: \(report.message)\n")
            if let hint = report.hint { context.console.err("tokenvault: hint: \(hint)\n") }
            return report.code.rawValue
        }
    }
}
