import ArgumentParser
import Foundation
import TokenVaultCore
import VaultAgent
import VaultCrypto
import VaultStore

extension TokenVault {
    struct Passwd: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the vault passphrase (re-seals the master key only: one small write).")

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Read the new passphrase from this open file descriptor.", valueName: "n"))
        var newPassphraseFd: Int32?

        @Option(help: "New Argon2id cost (default: keep the current one).")
        var kdf: KDFParameters.Level?

        func run(_ context: Context) async throws {
            // From the passphrase: the agent does not hand out the key, and a new passphrase ends it.
            let vault = try unlock(context, allowAgent: false)
            let newSource: PassphraseSource
            if let fd = newPassphraseFd {
                newSource = .fileDescriptor(fd)
            } else if let terminal = context.terminal, terminal.isAvailable {
                newSource = .terminal(terminal)
            } else {
                throw CLIError.usage("a new passphrase is needed and there is no terminal to ask on",
                                     hint: "pass it with --new-passphrase-fd N")
            }
            let passphrase = try newSource.readNew(context: context)
            let current = try UnlockedVault.storedParameters(try vault.database.header())
            var parameters = kdf.map(context.kdfParameters) ?? current
            parameters.salt = Random.bytes(parameters.salt.count)
            try vault.changePassphrase(to: passphrase, parameters: parameters, now: context.now())
            context.console.err("Passphrase changed.\n")
            if let path = VaultUnlocking.socketPath(location: vault.database.location, context: context),
               let agent = try? AgentClient.connect(socketPath: path), (try? agent.lockAgent()) != nil {
                context.console.err("The agent that held this vault forgot its key; 'tokenvault unlock' starts a new one.\n")
            }
        }
    }
}
