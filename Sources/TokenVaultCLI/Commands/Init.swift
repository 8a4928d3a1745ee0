import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultStore

extension TokenVault {
    struct Init: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a new, empty vault protected by a passphrase.",
            discussion: """
                The passphrase is asked twice on the terminal (or taken once from --passphrase-fd, \
                TOKENVAULT_PASSPHRASE_FILE or TOKENVAULT_PASSPHRASE). One shorter than 8 characters is refused \
                (exit 3) unless --allow-weak-passphrase, and one shorter than 12 is warned about. An existing vault \
                is refused (exit 2). Missing directories are made 0700 and the file 0600, whatever the umask. The \
                vault gets one key slot, 'main'; 'tokenvault keys add' gives it more. The Argon2id cost is paid once \
                per command, never per account.

                Examples:
                  tokenvault init
                  tokenvault init --kdf sensitive
                  tokenvault --vault 'postgresql://tv_owner@db.example.com/tokenvault?sslmode=verify-full' init
                """)

        @OptionGroup var global: GlobalOptions

        @Option(
            help: "Argon2id cost: interactive (64 MiB, ~0.15 s), moderate (256 MiB, ~1 s) or sensitive (1 GiB, ~9 s).")
        var kdf: KDFParameters.Level = .moderate

        @Flag(help: "Accept a passphrase shorter than 8 characters.")
        var allowWeakPassphrase = false

        func run(_ context: Context) async throws {
            let path = vaultPath(context)
            if FileManager.default.fileExists(atPath: path) { throw StoreError.vaultExists(path: path) }
            let source = try PassphraseSource.resolve(fd: global.passphraseFd, context: context)
            let passphrase = try source.readNew(context: context)
            try PassphraseStrength.check(passphrase, allowWeak: allowWeakPassphrase, context: context)
            let parameters = context.kdfParameters(kdf)
            let vault = try UnlockedVault.create(
                at: path, passphrase: passphrase, parameters: parameters, now: context.now())
            try vault.database.close()
            context.console.err(
                "Created vault \(path) (Argon2id, \(kdf.rawValue): \(parameters.memLimit >> 20) MiB, \(parameters.opsLimit) passes; key slot '\(KeySlots.firstName)').\n"
            )
        }
    }
}
