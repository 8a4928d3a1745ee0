import ArgumentParser
import Foundation
import Spawning
import TokenVaultCore
import VaultAgent
import VaultCrypto
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

extension TokenVault {
    struct Unlock: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "unlock",
            abstract: "Ask for the passphrase once and start an agent that keeps this vault unlocked for you.",
            discussion: """
                While the agent holds the vault, every command on it runs without a prompt and without the key \
                derivation. The key stays in the agent (locked, undumpable memory); commands ask it to seal, open \
                and MAC. It forgets the key after --for, after --idle without use, on 'tokenvault lock', on \
                'tokenvault passwd', on SIGTERM/SIGINT/SIGHUP, and when the vault file is replaced. Running \
                unlock again replaces the agent. With --refresh-every it runs 'refresh-all' on that period. \
                The agent listens on a socket only your user can use ('tokenvault agent status' shows it).
                Examples:
                  tokenvault unlock
                  tokenvault unlock --for 10h --idle 1h --refresh-every 12h
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("for"), help: "How long the agent keeps the key.")
        var lifetime = DurationArgument(seconds: 8 * 3600)

        @Option(help: "Forget the key after this long without a request (default: never).")
        var idle: DurationArgument?

        @Option(help: "Run refresh-all on this period (+/-10 %), e.g. 12h (default: never).")
        var refreshEvery: DurationArgument?

        @Option(
            help: ArgumentHelp(
                "With --refresh-every: the scheduled runs call this command for accounts that need a person (as refresh-all --notify).",
                valueName: "cmd"))
        var notify: String?

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let location = database.location
            guard let identity = AgentSocket.VaultIdentity.of(location: location) else {
                throw CLIError.usage("cannot find the vault file \(location)")
            }
            guard lifetime.seconds >= 1 else { throw CLIError.usage("--for must be at least 1s") }
            if let notify, notify.utf8.count > HandOff.limit {
                throw CLIError.usage(
                    "--notify is longer than \(HandOff.limit / 1024) KiB",
                    hint: "put the command in a script and give its path")
            }
            let socketPath = AgentSocket.path(for: identity, environment: context.environment)
            // The passphrase, checked here (three tries at a terminal), never through an agent.
            let vault = try VaultUnlocking.unlock(database, global: global, context: context, allowAgent: false)
            guard let keys = vault.keys as? InProcessKeyHolder else {
                throw CLIError.usage("the vault key is not in this process")
            }
            if let old = try? AgentClient.connect(socketPath: socketPath) { try? old.lockAgent() }

            var arguments = [
                "agent", "run", "--vault", location, "--key-fd", "3", "--ready-fd", "4",
                "--for", String(Int(lifetime.seconds)),
            ]
            if let idle { arguments += ["--idle", String(Int(idle.seconds))] }
            if let refreshEvery { arguments += ["--refresh-every", String(Int(refreshEvery.seconds))] }
            // Not on the agent's command line, which every local user can read for hours: on descriptor 5.
            if notify != nil { arguments += ["--notify-fd", "5"] }
            let pid = try AgentLauncher.start(
                arguments: arguments, keys: keys, notify: notify,
                environment: ChildEnvironment.scrubbed(context.environment))
            let until = context.now().addingTimeInterval(lifetime.seconds)
            context.console.err(
                "Unlocked \(location) until \(Format.timestamp(until)) (agent pid \(pid)); 'tokenvault lock' forgets the key.\n"
            )
        }
    }

    struct Lock: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "lock", abstract: "Make the vault's agent forget the key and exit.",
            discussion: "Commands then ask for the passphrase again. No passphrase needed.")

        @OptionGroup var global: GlobalOptions

        func run(_ context: Context) async throws {
            let location = vaultPath(context)
            guard let path = VaultUnlocking.socketPath(location: location, context: context),
                let agent = try AgentClient.connect(socketPath: path)
            else {
                context.console.err("No agent holds \(VaultStores.named(location)).\n")
                return
            }
            try agent.lockAgent()
            context.console.err("Locked: the agent forgot the key of \(VaultStores.named(location)).\n")
        }
    }
}

/// Starting the agent for `unlock`: this program again, detached, handed the key on a pipe.
enum AgentLauncher {
    /// Spawns `tokenvault agent run …` with the key on descriptor 3, a readiness pipe on 4 and the notify command
    /// (when there is one) on 5, stdio on /dev/null; waits until it listens (or says why it could not). Returns its pid.
    static func start(
        arguments: [String], keys: InProcessKeyHolder, notify: String? = nil, environment: [String: String]
    ) throws -> pid_t {
        var keyPipe: [Int32] = [-1, -1]
        var readyPipe: [Int32] = [-1, -1]
        var notifyPipe: [Int32] = [-1, -1]
        guard pipe(&keyPipe) == 0, pipe(&readyPipe) == 0, notify == nil || pipe(&notifyPipe) == 0 else {
            throw CLIError.usage("cannot make a pipe for the agent")
        }
        // The program itself: the agent is the same binary.
        let program =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var descriptors = [(from: keyPipe[0], to: Int32(3)), (from: readyPipe[1], to: Int32(4))]
        if notify != nil { descriptors.append((from: notifyPipe[0], to: 5)) }
        ChildEnvironment.closeOnExecAll()
        let spawned = Result { () throws(SpawnedProcess.Failure) in
            try SpawnedProcess.spawn(
                program, arguments: [program] + arguments, environment: environment, descriptors: descriptors)
        }
        close(keyPipe[0])
        close(readyPipe[1])
        if notify != nil { close(notifyPipe[0]) }
        defer { close(readyPipe[0]) }
        let agent: SpawnedProcess
        switch spawned {
        case .success(let child):
            agent = child
        case .failure(let failure):
            close(keyPipe[1])
            if notify != nil { close(notifyPipe[1]) }
            throw CLIError.usage("cannot start the agent: \(failure)")
        }
        var handed = keys.handOff(to: keyPipe[1])
        close(keyPipe[1])
        if let notify {
            handed = HandOff.write(notify, to: notifyPipe[1]) && handed
            close(notifyPipe[1])
        }
        // "ready\n", or a reason in words, then end of file.
        var said = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 512)
        while said.count < 4096 {
            let n = read(readyPipe[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            said += buffer[0..<n]
            if said.last == UInt8(ascii: "\n") { break }
        }
        let text = String(decoding: said, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard handed, text == "ready" else {
            // It closed its end of the readiness pipe: it has exited or is about to.
            _ = agent.waitForExit()
            throw CLIError.usage("the agent did not start: \(text.isEmpty ? "it exited" : text)")
        }
        return agent.pid
    }
}
