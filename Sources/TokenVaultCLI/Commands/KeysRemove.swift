import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

extension TokenVault {
    struct KeysRemove: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove a key slot: its passphrase no longer opens this vault (never the last slot).",
            discussion: """
                Needs a current passphrase (any slot's, the removed one's included while another slot remains). The \
                master key does not change: run 'tokenvault keys rotate' next if the slot's owner may have kept a copy \
                of the vault file or its key. The slot's bytes are erased from the file and its write-ahead log. \
                Audited; ends the vault's agent.
                Example:
                  tokenvault keys remove bob
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The slot to remove ('tokenvault keys list' shows them).", completion: .keySlotNames)
        var name: String

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let slots = try database.keySlots()
            guard slots.contains(where: { $0.name == name }) else { throw StoreError.noSuchKeySlot(name) }
            // Said before asking for a passphrase (the transaction checks again).
            guard slots.count > 1 else {
                throw CLIError.vault(
                    .invalid(
                        "key slot '\(name)' is the vault's only one: without it no passphrase would open the vault",
                        hint:
                            "add another first ('tokenvault keys add NAME'), or change its passphrase with 'tokenvault passwd'"
                    ))
            }
            let (vault, opened) = try KeySlotCommands.unlock(database, global: global, context: context)
            let change = try vault.removeKeySlot(named: name, opened: opened, now: context.now())
            // secure_delete zeroed the row in place; this moves the write-ahead log's copy out of the files too.
            try vault.database.purgeDeletedData()
            context.console.err("Removed key slot '\(name)': its passphrase no longer opens this vault.\n")
            KeySlotCommands.reportConversion(change, context: context)
            context.console.err(
                "tokenvault: hint: the master key is unchanged; if '\(name)' may have kept a copy of the vault file or its key, run 'tokenvault keys rotate'\n"
            )
            KeySlotCommands.endAgent(of: vault, context: context)
        }
    }
}
