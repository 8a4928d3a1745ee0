import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

/// Argument errors in the shape of every other error (`tokenvault: error: …` and a hint), instead of the
/// parser's `Error: …` followed by the whole usage.
enum UsageError {
    static func describe(_ error: any Error, arguments: [String]) -> (message: String, hint: String) {
        let message = TokenVault.message(for: error)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .joined(separator: "; ")
        let command = subcommand(in: arguments)
        if command == nil, let word = arguments.first, !word.hasPrefix("-") {
            let hint = nearestCommand(to: word).map {
                "did you mean 'tokenvault \($0)'? 'tokenvault --help' lists the commands"
            }
            return ("unknown command \(Format.quoted(word))", hint ?? "'tokenvault --help' lists the commands")
        }
        let help = command.map { "tokenvault \($0._commandName) --help" } ?? "tokenvault --help"
        let hint =
            command == nil && !arguments.isEmpty && !arguments[0].hasPrefix("-")
            ? "'\(help)' lists the commands"
            : "'\(help)' shows the usage"
        return (lowercasedFirstWord(message), hint)
    }

    /// The subcommand the arguments name, if any (the first word that is one, by its name or an alias).
    static func subcommand(in arguments: [String]) -> ParsableCommand.Type? {
        guard let first = arguments.first else { return nil }
        return TokenVault.configuration.subcommands.first {
            $0._commandName == first || $0.configuration.aliases.contains(first)
        }
    }

    /// The command (or alias) nearest to a mistyped word: at most two edits away (one for words of up to four
    /// letters), or a word it begins with; nil when none is that near.
    static func nearestCommand(to word: String) -> String? {
        let names = TokenVault.configuration.subcommands.flatMap { [$0._commandName] + $0.configuration.aliases }
            .filter { !$0.hasPrefix("-") && $0 != "help" }
        let typed = word.lowercased()
        if let prefixed = names.filter({ $0.hasPrefix(typed) && typed.count >= 3 }).min(by: { $0.count < $1.count }) {
            return prefixed
        }
        var best: (name: String, distance: Int)?
        for name in names.sorted() {
            let distance = editDistance(typed, name)
            if best == nil || distance < best!.distance { best = (name, distance) }
        }
        guard let best, best.distance <= (typed.count <= 4 ? 1 : 2) else { return nil }
        return best.name
    }

    /// Levenshtein distance, with an adjacent swap counted as one edit ("lsit").
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }

    /// "Missing expected argument" → "missing expected argument", as the rest of tokenvault's errors read;
    /// a word in capitals (an acronym, a name) is left alone.
    static func lowercasedFirstWord(_ text: String) -> String {
        guard let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true else {
            return text
        }
        return first.lowercased() + text.dropFirst()
    }
}
