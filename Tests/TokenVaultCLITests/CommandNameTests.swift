import ArgumentParser
import Testing

@testable import TokenVaultCLI

/// For a command type without a `commandName`, the argument parser derives the name with
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

/// The names under `command` the parser's completion generators leave out: hidden commands and aliases, as paths.
private func namesLeftOut(_ command: any ParsableCommand.Type, path: [String]) -> [String] {
    var found: [String] = []
    for sub in command.configuration.subcommands {
        let here = path + [sub._commandName]
        if !sub.configuration.shouldDisplay { found.append(here.joined(separator: " ")) }
        for alias in sub.configuration.aliases { found.append((path + [alias]).joined(separator: " ")) }
        found += namesLeftOut(sub, path: here)
    }
    return found
}

/// The completion scripts are generated from `CompletionTree`, which lists the names the parser's generators leave
/// out: every hidden command and every alias, at any depth, must be in it, or that name completes as nothing.
@Test func completionTreeCoversEveryHiddenCommandAndAlias() {
    let wanted = Set(namesLeftOut(TokenVault.self, path: []))
    var completed = Set<String>()
    for sub in CompletionTree.configuration.subcommands where sub.configuration.shouldDisplay {
        completed.insert(sub._commandName)
    }
    let missing = wanted.subtracting(completed).sorted()
    #expect(missing.isEmpty, "names the completion scripts would not know: \(missing)")
    #expect(CompletionTree.requestedShell(["--generate-completion-script", "zsh"]) == .zsh)
    #expect(CompletionTree.requestedShell(["--generate-completion-script=fish"]) == .fish)
    #expect(CompletionTree.requestedShell(["--generate-completion-script", "tcsh"]) == nil)
    #expect(CompletionTree.requestedShell(["list", "--generate-completion-script", "bash"]) == .bash)
    #expect(CompletionTree.requestedShell(["list", "--json"]) == nil)
    #expect(
        CompletionTree.requestedShell(["exec", "alice", "--", "tool", "--generate-completion-script", "bash"]) == nil)
}
