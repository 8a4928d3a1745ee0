import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultStore

extension TokenVault {
    struct KeysAdd: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add a key slot: the same vault opened by another passphrase (a member's or a host's).",
            discussion: """
                Opens the vault with a current passphrase (--passphrase-fd, TOKENVAULT_PASSPHRASE_FILE, \
                TOKENVAULT_PASSPHRASE or the terminal), then asks for the new slot's passphrase twice on the terminal, \
                or reads it once from --new-passphrase-fd (never from the command line). A name in use is exit 2. \
                Audited; ends the vault's agent.
                Example:
                  tokenvault keys add web-1 --new-passphrase-fd 3 3< web-1.passphrase
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The slot's name (1 to 64 letters, digits, '.', '_', '-', '@'), e.g. a member or a host.")
        var name: String

        @Option(
            help:
                "Argon2id cost of the new slot: interactive (64 MiB, ~0.15 s), moderate (256 MiB, ~1 s) or sensitive (1 GiB, ~9 s)."
        )
        var kdf: KDFParameters.Level = .moderate

        @Option(help: ArgumentHelp("Read the new slot's passphrase from this open file descriptor.", valueName: "n"))
        var newPassphraseFd: Int32?

        @Flag(help: "Accept a passphrase shorter than 8 characters.")
        var allowWeakPassphrase = false

        func validate() throws { try Names.check(name, what: "key slot") }

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            if try database.keySlots().contains(where: { $0.name == name }) { throw StoreError.duplicateKeySlot(name) }
            let (vault, opened) = try KeySlotCommands.unlock(database, global: global, context: context)
            let passphrase = try KeySlotCommands.readNewPassphrase(
                fd: newPassphraseFd, context: context,
                prompt: "Passphrase for key slot '\(name)': ")
            try PassphraseStrength.check(passphrase, allowWeak: allowWeakPassphrase, context: context)
            let parameters = context.kdfParameters(kdf)
            let change = try vault.addKeySlot(
                named: name, passphrase: passphrase, parameters: parameters, opened: opened,
                now: context.now())
            context.console.err(
                "Added key slot '\(name)' (Argon2id, \(kdf.rawValue)): its passphrase opens this vault.\n")
            KeySlotCommands.reportConversion(change, context: context)
            KeySlotCommands.endAgent(of: vault, context: context)
        }
    }
}
