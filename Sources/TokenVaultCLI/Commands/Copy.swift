import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

extension TokenVault {
    struct Copy: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "copy",
            abstract: "Copy the vault to a new place, between SQLite and PostgreSQL (no passphrase needed).",
            discussion: """
                Copies everything as it is: sealed bytes, ids, key slots, the audit log with its MACs and its head, \
                notification records. No secret is opened, so no passphrase is asked; the copy opens with the same \
                passphrases and 'tokenvault audit --verify' passes on it. The destination must not hold a vault yet. \
                The source is read in one transaction: run it while other commands use the vault if you like, but \
                what they write after that moment is not in the copy.
                Examples:
                  tokenvault copy --to 'postgresql://vault@db.example.com/tokenvault?sslmode=verify-full'
                  tokenvault --vault service=tokenvault copy --to ~/vault-backup.db
                """)

        @OptionGroup var global: GlobalOptions

        @Option(
            help: ArgumentHelp(
                "Where the copy goes: a file path, a postgresql:// URI or a libpq service=NAME.", valueName: "location")
        )
        var to: String

        func run(_ context: Context) async throws {
            let source = try openDatabase(context)
            let destination = VaultLocation.resolve(option: to, context: context)
            guard destination != VaultLocation(source.location) else {
                throw ValidationError("--to names the vault being copied")
            }
            let copied: (snapshot: VaultSnapshot, location: String)
            do {
                copied = try VaultCopy.copy(from: source, to: destination)
            } catch StoreError.vaultExists(let path) {
                throw CLIError.usage(
                    "a vault already exists at \(path)",
                    hint: "copy never writes over a vault: give another destination with --to, or remove that one first"
                )
            }
            let snapshot = copied.snapshot
            context.console.err(
                "copied to \(copied.location): \(snapshot.integrations.count) integration\(snapshot.integrations.count == 1 ? "" : "s"), \(snapshot.accounts.count) account\(snapshot.accounts.count == 1 ? "" : "s"), \(snapshot.keySlots.count) key slot\(snapshot.keySlots.count == 1 ? "" : "s"), \(snapshot.auditEntries.count) audit entries (head \(snapshot.auditHeadSeq)).\n"
            )
        }
    }
}
