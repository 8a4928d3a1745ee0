import ArgumentParser
import Foundation
import Spawning
import TokenVaultCore
import VaultAgent
import VaultOAuth
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

extension TokenVault {
    struct Exec: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "exec",
            abstract: "Run a command with the account's access token in its environment.",
            discussion: """
                tokenvault replaces itself with the command (like a shell's exec): stdin, stdout, stderr, signals and
                the exit status are the command's own. The token is passed only in the environment, never on argv.
                Example: tokenvault exec alice -- python3 report.py --since yesterday

                With --serve, tokenvault stays as the command's parent and lends it fresh tokens for as long as it \
                runs: the command also gets TOKENVAULT_SOCKET (a Unix socket of its own) and TOKENVAULT_TOKEN_URL, \
                and may ask GET /v1/accounts/NAME/token for the accounts named before --, and only those (inside it, \
                'tokenvault token NAME' asks there without a passphrase). The endpoint goes when the command exits.
                Example: tokenvault exec --serve alice bob -- ./bot
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: DurationArgument = DurationArgument(seconds: 600)

        @Flag(help: "Stay the command's parent and lend it fresh tokens on a socket of its own (TOKENVAULT_SOCKET).")
        var serve = false

        @Argument(help: "The account name (with --serve, one or more before --).", completion: .accountNames)
        var account: String

        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after --.")
        var command: [String] = []

        func run(_ context: Context) async throws {
            var command = command
            if serve {
                // `exec --serve alice bob -- CMD`: the names before -- are all lent.
                guard let dashes = command.firstIndex(of: "--") else {
                    throw CLIError.usage(
                        "--serve needs -- before the command",
                        hint: Format.command("tokenvault exec --serve \(account) -- COMMAND [ARGS…]"))
                }
                let accounts = [account] + command[..<dashes]
                return try await runServing(accounts: accounts, command: Array(command[(dashes + 1)...]), context)
            }
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

        /// `--serve`: the command as a child, with its own token endpoint for `accounts` until it exits.
        func runServing(accounts: [String], command: [String], _ context: Context) async throws {
            guard let program = command.first else {
                throw CLIError.usage(
                    "no command to run", hint: Format.command("tokenvault exec --serve \(account) -- COMMAND [ARGS…]"))
            }
            let path = try ProgramRunner.resolveToRun(program, environment: context.environment)
            var environment = ChildEnvironment.scrubbed(context.environment)
            // The vault unlocked once (one passphrase, one key derivation) for every account and the endpoint.
            let database = try openDatabase(context)
            var rows: [(Account, Integration)] = []
            for name in accounts {
                let account = try database.account(named: name)
                guard let integration = try database.integration(id: account.integrationId) else {
                    throw StoreError.noSuchIntegration(account.integrationId)
                }
                rows.append((account, integration))
            }
            let vault = try VaultUnlocking.unlock(database, global: global, context: context)
            let service = TokenService(vault: vault, services: context.services, verbose: global.verbose)
            // The usual variables, refreshed first; the first account named wins a variable two integrations share.
            var assigned: Set<String> = []
            for (account, integration) in rows {
                let token = try await service.freshAccessToken(
                    account: account, integration: integration, minValid: minValid.seconds, trigger: .exec)
                if assigned.insert(integration.envVar).inserted { environment[integration.envVar] = token }
            }
            MemoryLockReport.print(context: context, verbose: global.verbose)
            // A private directory of ours (0700) holds the socket (0600): no other user can reach it.
            let base = AgentSocket.directory(environment: context.environment)
            try AgentSocket.checkDirectory(base, create: true)
            var template = Array((base + "/exec-XXXXXX").utf8CString)
            guard let made = mkdtemp(&template) else {
                throw CLIError.usage("cannot make a directory in \(base): \(String(cString: strerror(errno)))")
            }
            let dir = String(cString: made)
            let socket = dir + "/token.sock"
            defer {
                unlink(socket)
                rmdir(dir)
            }
            let endpoint = try Lending.start(
                vault: vault, context: context,
                policy: .init(
                    ownerUID: geteuid(), accounts: Set(accounts), lendToOthers: false,
                    trigger: AuditTrigger("exec --serve")),
                socketPath: socket, mode: 0o600, minValid: minValid.seconds, verbose: global.verbose)
            defer { endpoint.stop() }
            environment["TOKENVAULT_SOCKET"] = socket
            environment["TOKENVAULT_TOKEN_URL"] = "http://localhost" + Lending.tokenPath(accounts[0])
            ChildEnvironment.closeOnExecAll()
            let child: SpawnedProcess
            do {
                child = try SpawnedProcess.spawn(
                    path, arguments: command, environment: environment, output: .inherited)
            } catch {
                throw CLIError.cannotExecute(program, reason: error.description)
            }
            ChildSignals.forward(to: child.pid)
            let exit = await child.exit()
            switch exit {
            case .exited(let code): throw CommandExit(code: ExitStatus(rawValue: code) ?? .other, raw: code)
            case .signalled(let signal): throw CommandExit(code: .other, raw: 128 + signal)
            case .unknown: throw CommandExit(code: .other)
            }
        }
    }
}

/// `exec --serve`: SIGTERM and SIGHUP sent to tokenvault go on to the command, which decides when to end. SIGINT
/// and SIGQUIT are ignored here: a terminal sends them to the command itself (the same process group), and passing
/// them on too would deliver each Ctrl-C twice.
enum ChildSignals {
    nonisolated(unsafe) static var child: pid_t = 0

    static func forward(to pid: pid_t) {
        child = pid
        for sig in [SIGTERM, SIGHUP] {
            signal(sig) { received in
                if ChildSignals.child > 0 { kill(ChildSignals.child, received) }
            }
        }
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
    }
}
