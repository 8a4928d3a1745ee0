import ArgumentParser
import Testing
@testable import TokenVaultCLI

/// Issue 11 §3: for a command type without a `commandName`, the argument parser derives the name with
/// `String(describing:)` at every start, and each such type costs the Swift runtime a scan of every protocol
/// conformance in the binary (callgrind: 63 % of the instructions of `tokenvault --version` before the names
/// were written out). A new command names itself.
@Test func everyCommandNamesItself() {
    func tree(_ command: any ParsableCommand.Type) -> [any ParsableCommand.Type] {
        [command] + command.configuration.subcommands.flatMap(tree)
    }
    let unnamed = tree(TokenVault.self).filter { $0.configuration.commandName == nil }.map { $0._commandName }
    #expect(unnamed.isEmpty, "commands without a commandName: \(unnamed)")
}
