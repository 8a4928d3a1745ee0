import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The vault: a file, or a PostgreSQL location (default: $TOKENVAULT_VAULT, else $XDG_DATA_HOME/tokenvault/vault.db).",
            valueName: "location"))
    var vault: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Read the passphrase from this open file descriptor (for cron and scripts).", valueName: "n")
    )
    var passphraseFd: Int32?

    @Flag(name: .long, help: "Trace HTTP requests on stderr (tokens, secrets, codes and verifiers redacted).")
    var verbose = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Open the vault with this key slot's passphrase only (default: $TOKENVAULT_KEY_SLOT, else each slot in turn).",
            valueName: "name"),
        completion: .keySlotNames)
    var keySlot: String?

    /// The options above with a value, and the one without.
    static let valued: Set<String> = ["--vault", "--passphrase-fd", "--key-slot"]
    static let flags: Set<String> = ["--verbose"]

    /// Options every command takes, written before the command (`tokenvault --vault X keys add bob`, as `git -C`
    /// and `kubectl --context` are), moved to just after the command's name (`keys add --vault X bob`), where the
    /// parser reads them. Nothing after the command's name moves, so `exec … -- CMD` keeps its arguments as given.
    static func hoisted(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            let name = first.split(separator: "=", maxSplits: 1).first.map(String.init) ?? first
            if flags.contains(first) {
                leading.append(first)
                rest = rest.dropFirst()
            } else if valued.contains(name) {
                leading.append(first)
                rest = rest.dropFirst()
                if name == first, let value = rest.first {  // `--vault X`, not `--vault=X`
                    leading.append(value)
                    rest = rest.dropFirst()
                }
            } else {
                break
            }
        }
        guard !leading.isEmpty else { return arguments }
        // The command's path: `keys add`, `agent status`, `integration edit`, or one word.
        var path: [String] = []
        var commands: [ParsableCommand.Type] = TokenVault.configuration.subcommands
        while let word = rest.first,
            let command = commands.first(where: {
                $0._commandName == word || $0.configuration.aliases.contains(word)
            })
        {
            path.append(word)
            rest = rest.dropFirst()
            commands = command.configuration.subcommands
        }
        return path + leading + Array(rest)
    }

    /// The key slot to open with: `--key-slot`, else `TOKENVAULT_KEY_SLOT`; nil tries every slot.
    func keySlot(_ context: Context) -> String? {
        if let keySlot { return keySlot }
        guard let named = context.environment["TOKENVAULT_KEY_SLOT"], !named.isEmpty else { return nil }
        return named
    }
}
