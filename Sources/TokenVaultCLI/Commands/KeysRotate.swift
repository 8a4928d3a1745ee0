import ArgumentParser
import Foundation
import TokenVaultCore

extension TokenVault {
    struct KeysRotate: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate",
            abstract:
                "Replace the master key: re-seal every secret, give the new key to every key slot, re-key the audit log.",
            discussion: """
                One write transaction: it verifies the audit log under the current key first, and changes nothing if \
                anything fails. Every slot keeps its passphrase. Run it after 'keys remove' when the removed member \
                may have kept a copy of the vault or its key. It does not change the tokens themselves: tokens a \
                removed member saw stay valid at the provider until they expire or are revoked, and copies made \
                before still open with the old key. Refused (exit 2) while a legacy slot other than the one it was \
                opened with remains, and (exit 7) for a slot whose public key the current key does not vouch for. \
                Run it when no other command works on the vault: one that opened it before cannot write after. \
                On PostgreSQL, run it as the owner role. Audited; ends the vault's agent.
                """)

        @OptionGroup var global: GlobalOptions

        func run(_ context: Context) async throws {
            let (vault, opened) = try KeySlotCommands.unlock(
                try openDatabase(context), global: global, context: context)
            let rotation = try vault.rotateMasterKey(opened: opened, now: context.now())
            // Every old sealed value was overwritten in place (secure_delete); this moves the write-ahead log's copies
            // of the old pages out of the files too.
            try vault.database.purgeDeletedData()
            let slots = rotation.slots.count
            context.console.err(
                "Replaced the master key: re-sealed \(rotation.clientSecrets) client secret\(rotation.clientSecrets == 1 ? "" : "s") and \(rotation.tokens) token\(rotation.tokens == 1 ? "" : "s"), gave the new key to \(slots) key slot\(slots == 1 ? "" : "s") (\(rotation.slots.joined(separator: ", "))), re-keyed \(rotation.auditEntries) audit entr\(rotation.auditEntries == 1 ? "y" : "ies").\n"
            )
            if let converted = rotation.converted {
                context.console.err("Key slot '\(converted)' was converted from the v1-v3 form on the way.\n")
            }
            context.console.err(
                "tokenvault: hint: tokens someone copied before stay valid at the provider until they expire; 'tokenvault refresh-all --skip-recent 0' replaces the access tokens (and, where the provider rotates them, the refresh tokens), and 'tokenvault authorize NAME' replaces a pair entirely\n"
            )
            KeySlotCommands.endAgent(of: rotation.vault, context: context)
        }
    }
}
