import ArgumentParser
import Foundation
import TokenVaultCore
import VaultAgent
import VaultCrypto
import VaultStore

extension TokenVault {
    /// `tokenvault keys add|list|remove|rotate`: a passphrase per member or host.
    struct KeysGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keys",
            abstract: "Key slots: one passphrase per member or host, each opening the same vault.",
            discussion: """
                Each key slot wraps the vault's master key under its own passphrase (its own Argon2id salt and cost). \
                'keys rotate' replaces the master key after a member leaves. 'passwd --slot NAME' changes one slot's \
                passphrase. By default a passphrase is tried on every slot in turn (one key derivation each); \
                --key-slot or TOKENVAULT_KEY_SLOT names the one to try. Changes are audited and end the vault's agent.
                Examples:
                  tokenvault keys add bob
                  tokenvault keys add ci-runner --kdf moderate --new-passphrase-fd 3 3< /run/credentials/tokenvault-ci
                  tokenvault keys list
                  tokenvault keys remove bob
                  tokenvault keys rotate
                """,
            subcommands: [KeysAdd.self, KeysList.self, KeysRemove.self, KeysRotate.self])
    }
}

/// What the commands that change key slots share: they open the vault from a passphrase (the agent does not hand
/// out the key, and a slot of the v1-v3 form needs its passphrase's key to be converted), read a new passphrase
/// without argv, and end the vault's agent afterwards.
enum KeySlotCommands {
    /// The vault opened from a passphrase (never the agent), with the slot that opened it.
    static func unlock(_ database: any VaultStorage, global: GlobalOptions, context: Context) throws -> (
        vault: UnlockedVault, opened: OpenedSlot
    ) {
        try UnlockedVault.unlockSlot(
            database, source: try PassphraseSource.resolve(fd: global.passphraseFd, context: context),
            keySlot: global.keySlot(context), context: context)
    }

    /// A new passphrase: once from descriptor `fd`, else twice on the terminal.
    static func readNewPassphrase(fd: Int32?, context: Context, prompt: String) throws -> SecretBytes {
        let source: PassphraseSource
        if let fd {
            source = .fileDescriptor(fd)
        } else if let terminal = context.terminal, terminal.isAvailable {
            source = .terminal(terminal)
        } else {
            throw CLIError.usage(
                "a new passphrase is needed and there is no terminal to ask on",
                hint: "pass it with --new-passphrase-fd N")
        }
        return try source.readNew(context: context, prompt: prompt)
    }

    /// Tells the agent holding this vault (if any) to forget its key: after a change of key slots it must be
    /// started again from a passphrase that still opens the vault, and after `keys rotate` it holds a dead key.
    static func endAgent(of vault: UnlockedVault, context: Context) {
        if let path = VaultUnlocking.socketPath(location: vault.database.location, context: context),
            let agent = try? AgentClient.connect(socketPath: path), (try? agent.lockAgent()) != nil
        {
            context.console.err(
                "The agent that held this vault forgot its key; 'tokenvault unlock' starts a new one.\n")
        }
    }

    static func reportConversion(_ change: KeySlotChange, context: Context) {
        if let converted = change.converted {
            context.console.err(
                "Key slot '\(converted)' was converted from the v1-v3 form: 'tokenvault keys rotate' can now give it a new master key.\n"
            )
        }
    }
}
