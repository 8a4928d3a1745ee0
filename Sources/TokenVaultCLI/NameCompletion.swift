import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

/// Shell completion of account and integration names (bash, zsh, fish). The completion scripts the parser
/// generates call `tokenvault ---completion …` back; the names come from the vault's plain metadata, so there is
/// no passphrase prompt and no key derivation, and any problem (no vault, not a vault, a locked file) completes
/// nothing rather than printing an error into the user's command line.
extension CompletionKind {
    static var accountNames: CompletionKind {
        .custom { words, _, prefix in NameCompletion.names(.accounts, words: words, prefix: prefix) }
    }
    static var integrationNames: CompletionKind {
        .custom { words, _, prefix in NameCompletion.names(.integrations, words: words, prefix: prefix) }
    }
    static var keySlotNames: CompletionKind {
        .custom { words, _, prefix in NameCompletion.names(.keySlots, words: words, prefix: prefix) }
    }
}

enum NameCompletion {
    enum Kind { case accounts, integrations, keySlots }

    static func names(_ kind: Kind, words: [String], prefix: String) -> [String] {
        let path = VaultLocation.path(option: vaultOption(in: words), environment: ProcessInfo.processInfo.environment)
        guard let database = try? VaultStores.open(path) else { return [] }
        defer { try? database.close() }
        let names: [String]?
        switch kind {
        case .accounts: names = try? database.accountSummaries().map(\.name)
        case .integrations: names = try? database.integrations().map(\.name)
        // Slot names are plain metadata, like account names: no passphrase is asked for.
        case .keySlots: names = try? database.keySlots().map(\.name)
        }
        return (names ?? []).filter { $0.hasPrefix(prefix) }
    }

    /// The `--vault` already typed on the command line (`--vault PATH` or `--vault=PATH`), if any.
    static func vaultOption(in words: [String]) -> String? {
        var value: String?
        for (i, word) in words.enumerated() {
            if word == "--vault", i + 1 < words.count { value = words[i + 1] }
            if word.hasPrefix("--vault=") { value = String(word.dropFirst("--vault=".count)) }
        }
        return value
    }
}
