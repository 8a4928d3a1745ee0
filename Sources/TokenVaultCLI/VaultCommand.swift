import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

/// A subcommand that runs with the injected context.
protocol VaultCommand: AsyncParsableCommand {
    var global: GlobalOptions { get }
    func run(_ context: Context) async throws
}

extension VaultCommand {
    mutating func run() async throws {
        guard let context = Context.current else {
            fatalError("commands run through TokenVault.run(arguments:context:)")
        }
        try await run(context)
    }

    func vaultLocation(_ context: Context) -> VaultLocation {
        VaultLocation.resolve(option: global.vault, context: context)
    }

    func vaultPath(_ context: Context) -> String { vaultLocation(context).text }

    /// The vault for commands that need no passphrase.
    func openDatabase(_ context: Context) throws -> any VaultStorage {
        try VaultStores.open(vaultLocation(context))
    }

    /// Opens the vault and asks for the passphrase once; the KDF runs once per command.
    /// Through the vault's agent when one holds it (`tokenvault unlock`).
    func unlock(_ context: Context, allowAgent: Bool = true) throws -> UnlockedVault {
        try VaultUnlocking.unlock(try openDatabase(context), global: global, context: context, allowAgent: allowAgent)
    }
}
