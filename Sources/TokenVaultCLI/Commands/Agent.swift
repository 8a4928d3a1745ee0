import ArgumentParser
import Foundation
import TokenVaultCore
import VaultAgent
import VaultCrypto
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

extension TokenVault {
    struct AgentGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "agent",
            abstract: "The agent that keeps a vault unlocked: run it in the foreground (systemd), or ask its status.",
            discussion: """
                'tokenvault unlock' starts an agent in the background; 'agent run --foreground' runs one under a \
                service manager, with the passphrase from TOKENVAULT_PASSPHRASE_FILE or a systemd credential. \
                Beside its key socket it answers GET /v1/accounts/NAME/token on a token socket of yours \
                ('agent status' shows it): an access token, never a refresh token.
                Example unit line:
                  ExecStart=/usr/bin/tokenvault agent run --foreground --refresh-every 12h
                """,
            subcommands: [AgentRun.self, AgentStatus.self],
            defaultSubcommand: AgentRun.self)
    }

    struct AgentRun: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract:
                "Hold the vault's key and serve it until told to stop (what 'unlock' starts; --foreground for systemd).",
            discussion: """
                Without --for it keeps the key until stopped (SIGTERM, 'tokenvault lock', 'tokenvault passwd', or \
                the vault replaced). Example:
                  tokenvault agent run --foreground --refresh-every 12h
                """)

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Stay attached to the terminal or service manager (the default when not started by 'unlock').")
        var foreground = false

        @Option(name: .customLong("for"), help: "How long to keep the key (default: until stopped).")
        var lifetime: DurationArgument?

        @Option(help: "Forget the key after this long without a request.")
        var idle: DurationArgument?

        @Option(help: "Run refresh-all on this period (+/-10 %).")
        var refreshEvery: DurationArgument?

        @Option(help: ArgumentHelp("The scheduled runs' refresh-all --notify command.", valueName: "cmd"))
        var notify: String?

        @Option(help: .hidden) var keyFd: Int32?
        @Option(help: .hidden) var readyFd: Int32?
        /// `unlock --notify CMD`: CMD arrives on this descriptor, not on the agent's command line.
        @Option(help: .hidden) var notifyFd: Int32?

        func run(_ context: Context) async throws {
            ProcessHardening.disableCoreDumps()
            let ready = readyFd
            func say(_ text: String) {
                guard let ready else { return }
                let bytes = Array((text + "\n").utf8)
                _ = bytes.withUnsafeBytes { write(ready, $0.baseAddress, $0.count) }
            }
            do {
                let database = try openDatabase(context)
                let location = database.location
                guard let identity = AgentSocket.VaultIdentity.of(location: location) else {
                    throw CLIError.usage("cannot find the vault file \(location)")
                }
                let keys: any KeyHolder
                if let keyFd {
                    // Started by 'unlock': the key arrives on the pipe, once. A session of its own, so the
                    // terminal's hangup does not end it.
                    setsid()
                    guard let received = InProcessKeyHolder.receive(from: keyFd) else {
                        throw CLIError.usage("no key arrived on descriptor \(keyFd)")
                    }
                    close(keyFd)
                    keys = received
                } else {
                    keys = try VaultUnlocking.unlock(database, global: global, context: context, allowAgent: false).keys
                }
                var notifyCommand = notify
                if let notifyFd {
                    guard let handed = HandOff.read(from: notifyFd) else {
                        throw CLIError.usage("no notify command arrived on descriptor \(notifyFd)")
                    }
                    close(notifyFd)
                    notifyCommand = handed
                }
                if try UnlockedVault.keyMatches(keys, database: database) == false {
                    throw CLIError.integrity("the key does not open this vault", hint: "run 'tokenvault unlock' again")
                }
                let program =
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                    ?? CommandLine.arguments[0]
                let server = AgentServer(
                    keys: keys,
                    settings: .init(
                        vaultPath: location, identity: identity,
                        socketPath: AgentSocket.path(for: identity, environment: context.environment),
                        until: lifetime.map { Date().addingTimeInterval($0.seconds) }, idle: idle?.seconds,
                        refreshEvery: refreshEvery?.seconds,
                        refreshCommand: [program, "refresh-all", "--vault", location],
                        refreshNotify: notifyCommand))
                try server.bind()
                // The token endpoint, beside the key socket and like it its owner's alone (0600 in a 0700
                // directory): `curl --unix-socket` gets an access token without a passphrase or a key operation.
                let tokenSocket = Lending.agentSocketPath(keySocket: server.settings.socketPath)
                let endpoint = try Lending.start(
                    vault: UnlockedVault(database: database, keys: keys), context: context,
                    policy: .init(ownerUID: geteuid(), lendToOthers: false, trigger: AuditTrigger("agent")),
                    socketPath: tokenSocket, mode: 0o600, minValid: 600)
                AgentSignals.alsoRemove(tokenSocket)
                defer {
                    endpoint.stop()
                    unlink(tokenSocket)
                }
                say("ready")
                if let ready { close(ready) }
                if readyFd == nil {
                    context.console.err(
                        "tokenvault agent: holding \(location) on \(server.settings.socketPath); tokens on \(tokenSocket)\n"
                    )
                }
                let reason = await Task.detached { server.run() }.value
                context.console.err("tokenvault agent: forgot the key of \(location): \(reason)\n")
            } catch {
                say(ErrorReport.describe(error).message)
                throw error
            }
        }
    }

    struct AgentStatus: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Say whether an agent holds the vault, since when and until when (exit 1 when none).",
            discussion: "Also the socket it listens on, and why it is not the usual one when it is not.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws {
            let location = vaultPath(context)
            guard let path = VaultUnlocking.socketPath(location: location, context: context),
                let agent = try AgentClient.connect(socketPath: path)
            else {
                if json {
                    context.console.out("{\"running\":false}\n")
                } else {
                    context.console.out("No agent holds \(VaultStores.named(location)).\n")
                }
                throw CommandExit(code: .other)
            }
            let status = try agent.status()
            let fallback = AgentSocket.fallbackReason(environment: context.environment)
            if json {
                // Times in ISO 8601, as every other JSON output gives them (the agent's protocol carries epoch seconds).
                context.console.out(
                    Format.json(AgentStatusReport(status: status, socket: path, fallbackReason: fallback)) + "\n")
                return
            }
            var lines = [
                "vault: \(status.vault)", "pid: \(status.pid)", "since: \(Format.timestamp(status.sinceDate))",
                "until: \(status.untilDate.map(Format.timestamp) ?? "stopped")",
            ]
            if let idle = status.idleSeconds { lines.append("idle limit: \(Format.span(idle))") }
            if let every = status.refreshEverySeconds { lines.append("refresh-all every: \(Format.span(every))") }
            lines.append("socket: \(path)" + (fallback.map { " (\($0))" } ?? ""))
            let tokenSocket = Lending.agentSocketPath(keySocket: path)
            if FileManager.default.fileExists(atPath: tokenSocket) { lines.append("token socket: \(tokenSocket)") }
            context.console.out(lines.joined(separator: "\n") + "\n")
        }
    }
}
