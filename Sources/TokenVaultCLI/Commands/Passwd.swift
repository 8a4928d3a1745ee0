import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultStore

extension TokenVault {
    struct Passwd: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "passwd",
            abstract: "Change one key slot's passphrase (re-wraps the master key for that slot only: one small write).",
            discussion: """
                Opens the vault with a current passphrase (any slot's, or --key-slot's), then asks for the new one \
                twice on the terminal, or reads it once from --new-passphrase-fd. Every stored secret and every other \
                slot stays as it is; --kdf changes this slot's cost. Audited; ends the vault's agent.
                Examples:
                  tokenvault passwd
                  tokenvault passwd --slot ci-runner --new-passphrase-fd 3 3< new-passphrase
                """)

        @OptionGroup var global: GlobalOptions

        @Option(
            help: ArgumentHelp(
                "The key slot whose passphrase changes (default: the one that opened the vault).", valueName: "name"))
        var slot: String?

        @Option(help: ArgumentHelp("Read the new passphrase from this open file descriptor.", valueName: "n"))
        var newPassphraseFd: Int32?

        @Option(help: "New Argon2id cost (default: keep the slot's current one).")
        var kdf: KDFParameters.Level?

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            if let slot, try !database.keySlots().contains(where: { $0.name == slot }) {
                throw StoreError.noSuchKeySlot(slot)
            }
            // From the passphrase: the agent does not hand out the key, and a new passphrase ends it.
            let (vault, opened) = try KeySlotCommands.unlock(database, global: global, context: context)
            let target = slot ?? opened.name
            let passphrase = try KeySlotCommands.readNewPassphrase(
                fd: newPassphraseFd, context: context,
                prompt: target == opened.name ? "New vault passphrase: " : "New passphrase for key slot '\(target)': ")
            let change = try vault.changePassphrase(
                ofSlot: target, to: passphrase, parameters: kdf.map(context.kdfParameters),
                opened: opened, now: context.now())
            context.console.err("Passphrase of key slot '\(target)' changed.\n")
            KeySlotCommands.reportConversion(change, context: context)
            KeySlotCommands.endAgent(of: vault, context: context)
        }
    }
}
