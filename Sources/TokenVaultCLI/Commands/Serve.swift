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
    struct Serve: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Lend access tokens over HTTP on a Unix socket, to you and to the users you 'grant'.",
            discussion: """
                Answers GET /v1/accounts/NAME/token with the account's access token as JSON (refreshed first when \
                it lapses within --min-valid); never a refresh token or a client secret. Your own processes get \
                every account; another user's get only what 'tokenvault grant' gave their uid or one of their \
                groups (SO_PEERCRED), and 403 for every other name. Runs in the foreground until SIGTERM.
                The socket: --socket, else $RUNTIME_DIRECTORY/token.sock (systemd's RuntimeDirectory=), else \
                token.sock in the agent's directory (yours alone). It is made mode 666: the grants decide.
                The passphrase: TOKENVAULT_PASSPHRASE_FILE, else $CREDENTIALS_DIRECTORY/passphrase (systemd's \
                LoadCredential=passphrase:...), else as for any command.
                Example:
                  tokenvault serve --socket /run/tokenvault/token.sock
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The socket to listen on.", valueName: "path"))
        var socket: String?

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: DurationArgument = DurationArgument(seconds: 600)

        func run(_ context: Context) async throws {
            ProcessHardening.disableCoreDumps()
            let vault = try unlock(context, allowAgent: false)
            let path = try socketPath(context)
            let endpoint = try Lending.start(
                vault: vault, context: context,
                policy: .init(ownerUID: geteuid(), lendToOthers: true, trigger: AuditTrigger("serve")),
                socketPath: path, mode: 0o666, minValid: minValid.seconds, verbose: global.verbose)
            ServeSignals.install(socketPath: path)
            context.console.err("tokenvault serve: lending tokens of \(vault.database.location) on \(path)\n")
            _ = endpoint
            while true { try await Task.sleep(for: .seconds(3600)) }
        }

        func socketPath(_ context: Context) throws -> String {
            if let socket { return socket }
            if let runtime = context.environment["RUNTIME_DIRECTORY"], runtime.hasPrefix("/") {
                // systemd may list several directories, separated by colons: the first is ours.
                return String(runtime.split(separator: ":")[0]) + "/token.sock"
            }
            let dir = AgentSocket.directory(environment: context.environment)
            try AgentSocket.checkDirectory(dir, create: true)
            return dir + "/token.sock"
        }
    }
}

/// SIGTERM, SIGINT and SIGHUP end `serve` and `exec --serve`'s endpoint: the socket is removed first.
enum ServeSignals {
    nonisolated(unsafe) static var socketPath: UnsafeMutablePointer<CChar>?

    static func install(socketPath path: String) {
        socketPath = strdup(path)
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig) { _ in
                if let path = ServeSignals.socketPath { unlink(path) }
                _exit(0)
            }
        }
    }
}
