import ArgumentParser
import Foundation
import Testing

@testable import TokenVaultCLI

/// Every `tokenvault` command line in README.md and docs/*.md parses with the real argument parser, and every
/// relative link in them leads somewhere. The rule for which lines are examples is written in docs/testing.md
/// ("The documentation's examples are tested"); `DocExamples` below implements exactly that rule.
@Suite struct DocExamplesTests {
    /// The repository's root, from this file's place in it (Tests/TokenVaultCLITests/DocExamplesTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// README.md and every Markdown file in docs/, as paths relative to the root.
    static func documents() throws -> [String] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        return ["README.md"] + docs
    }

    static func read(_ relative: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relative), encoding: .utf8)
    }

    /// Parses a command line as `tokenvault` does before running it; nil when it parses, else the parser's message.
    static func parseError(_ arguments: [String]) -> String? {
        do {
            _ = try TokenVault.parseAsRoot(GlobalOptions.hoisted(arguments))
            return nil
        } catch {
            // --help, --version and completion requests end the parse successfully.
            if TokenVault.exitCode(for: error) == .success { return nil }
            return TokenVault.fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }

    /// A word holding a shell expansion (`"$head"`, `$(cat head)`) stands for a value only the shell knows: the line
    /// parses when it parses with the word as written, or with one of a few stand-ins (a number, a name, 64 hex
    /// digits) in every such word. Nil when it parses, else the message for the line as written.
    static func parseErrorWithExpansions(_ arguments: [String]) -> String? {
        guard let error = parseError(arguments) else { return nil }
        guard arguments.contains(where: { $0.contains("$") }) else { return error }
        for standIn in ["1", "name", String(repeating: "0", count: 64)] {
            if parseError(arguments.map { $0.contains("$") ? standIn : $0 }) == nil { return nil }
        }
        return error
    }

    @Test func everyExampleParses() throws {
        var checked = 0
        var refused = 0
        for document in try Self.documents() {
            for example in DocExamples.examples(in: try Self.read(document)) {
                let error = Self.parseErrorWithExpansions(example.arguments)
                let shown = "\(document):\(example.line): tokenvault \(example.arguments.joined(separator: " "))"
                if example.refused {
                    refused += 1
                    #expect(error != nil, "\(shown) is marked '# refused:' but parses")
                } else {
                    #expect(error == nil, "\(shown): \(error ?? "")")
                }
                checked += 1
            }
        }
        // About a hundred today; a rule that silently found nothing would pass every file.
        #expect(checked >= 80, "only \(checked) examples found")
        #expect(refused <= 5, "\(refused) examples marked as refused: keep them rare")
    }

    /// The examples in the commands' own help (their indented discussion lines, which the man pages show too).
    @Test func everyExampleInTheHelpParses() {
        func tree(_ command: any ParsableCommand.Type) -> [any ParsableCommand.Type] {
            [command] + command.configuration.subcommands.flatMap(tree)
        }
        var checked = 0
        for command in tree(TokenVault.self) {
            for line in command.configuration.discussion.split(separator: "\n") where line.hasPrefix("  ") {
                for words in DocExamples.simpleCommands(String(line)) {
                    guard let arguments = DocExamples.tokenvaultArguments(words) else { continue }
                    let error = Self.parseErrorWithExpansions(arguments)
                    #expect(
                        error == nil,
                        "\(command._commandName) --help: \(line.trimmingCharacters(in: .whitespaces)): \(error ?? "")")
                    checked += 1
                }
            }
        }
        #expect(checked >= 40, "only \(checked) examples in the help")
    }

    /// generate-manual turns the help into man pages: it drops every character that is not ASCII, and roff fills a
    /// text line into the indented (example) line before it unless a blank line separates them.
    @Test func theHelpReadsWellAsAManPage() {
        var commands: [(name: String, type: any ParsableCommand.Type)] = [("tokenvault", TokenVault.self)]
        var index = 0
        while index < commands.count {
            let (name, type) = commands[index]
            for sub in type.configuration.subcommands { commands.append((name + " " + sub._commandName, sub)) }
            index += 1
        }
        for (name, type) in commands {
            let help = TokenVault.helpMessage(for: type, columns: 200)
            var notASCII: [String] = []
            for line in help.split(separator: "\n") where line.unicodeScalars.contains(where: { !$0.isASCII }) {
                notASCII.append(String(line))
            }
            #expect(notASCII.isEmpty, "\(name) --help: \(notASCII)")
            let lines = type.configuration.discussion.split(separator: "\n", omittingEmptySubsequences: false).map(
                String.init)
            var filled: [String] = []
            for at in lines.indices.dropLast() where lines[at].hasPrefix(" ") {
                let next = lines[at + 1]
                if !next.isEmpty && !next.hasPrefix(" ") { filled.append(next) }
            }
            #expect(filled.isEmpty, "\(name): these follow an indented line without a blank line: \(filled)")
        }
    }

    @Test func everyRelativeLinkLeadsToAFileAndAnchor() throws {
        for document in try Self.documents() {
            let directory = (document as NSString).deletingLastPathComponent
            for link in DocExamples.links(in: try Self.read(document)) {
                let (path, anchor) = DocExamples.split(link.target)
                let target =
                    path.isEmpty
                    ? document
                    : ((directory.isEmpty ? path : directory + "/" + path) as NSString).standardizingPath
                var isDirectory: ObjCBool = false
                let exists = FileManager.default.fileExists(
                    atPath: Self.root.appendingPathComponent(target).path,
                    isDirectory: &isDirectory)
                #expect(exists, "\(document):\(link.line): \(link.target) leads to \(target), which does not exist")
                guard exists, let anchor, !isDirectory.boolValue, target.hasSuffix(".md") else { continue }
                let anchors = DocExamples.anchors(in: try Self.read(target))
                #expect(
                    anchors.contains(anchor),
                    "\(document):\(link.line): \(link.target): no heading or id '\(anchor)' in \(target)")
            }
        }
    }

    @Test func readmeStaysShortAndKeepsItsTestCommand() throws {
        let readme = try Self.read("README.md")
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false).count
        #expect(lines <= 320, "README.md has \(lines) lines")
        // .ci/run runs `make test` as "the README's test command".
        #expect(readme.contains("## Tests\n\n```sh\nmake test\n```"))
    }

    /// The rule itself, on lines written to catch each part of it.
    @Test func theRuleFindsWhatItSays() {
        func found(_ markdown: String) -> [[String]] { DocExamples.examples(in: markdown).map(\.arguments) }
        #expect(found("tokenvault list\n") == [], "prose is not an example")
        #expect(found("```sh\ntokenvault list   # every account\n```\n") == [["list"]])
        #expect(found("```\n$ tokenvault env alice\nexport X='y'\ntokenvault: error: no\n```\n") == [["env", "alice"]])
        #expect(found("```sh\neval \"$(tokenvault env alice)\"\n```\n") == [["env", "alice"]])
        #expect(found("```sh\nout=$(tokenvault env alice) && eval \"$out\"\n```\n") == [["env", "alice"]])
        #expect(
            found("```sh\nprintf '%s\\n' \"$S\" | tokenvault add b --client-secret-stdin; tokenvault list\n```\n")
                == [["add", "b", "--client-secret-stdin"], ["list"]])
        #expect(
            found("```sh\ntokenvault import a < token.json 2>&1 > out\ntokenvault x 3< f\n```\n")
                == [["import", "a"], ["x"]])
        #expect(
            found("```sh\ntokenvault add w \\\n    --scopes \"a b\" --env-var 'X'\n```\n") == [
                ["add", "w", "--scopes", "a b", "--env-var", "X"]
            ])
        #expect(
            found("```sh\nTOKENVAULT_VAULT=/v sudo .build/debug/tokenvault token <account>\n```\n") == [
                ["token", "account"]
            ])
        #expect(found("```\n17 3 * * *  A=b $HOME/bin/tokenvault refresh-all\n```\n") == [["refresh-all"]])
        #expect(
            found(
                "```ini\nDescription=tokenvault agent\nDescription=Refresh tokenvault pairs\nExecStart=%h/bin/tokenvault agent run --foreground\n```\n"
            )
                == [["agent", "run", "--foreground"]])
        #expect(
            found("```sh\ntokenvault audit --expect-head \"$(cat head)\"\necho '$(tokenvault x)'\n```\n")
                == [["audit", "--expect-head", "$(…)"]])
        #expect(
            DocExamples.examples(in: "```sh\ntokenvault add w --secret s   # refused: never on argv\n```\n").map(
                \.refused) == [true])
        #expect(DocExamples.examples(in: "```sh\n\ntokenvault list\n```\n").map(\.line) == [3])
        // And the parser side: a wrong option, a misplaced one, a missing argument, a bad value.
        for wrong in [
            ["list", "--nope"], ["init", "--kdf", "cheap"], ["env"], ["keys", "add"],
            ["token", "alice", "--format", "sh"],
            ["authorize", "bob", "--timeout", "5 minutes"], ["lst"],
        ] {
            #expect(DocExamplesTests.parseError(wrong) != nil, "\(wrong) parses")
        }
        for right in [
            ["--vault", "service=tokenvault", "list"], ["list", "--vault", "x"], ["--help"], ["keys", "add", "bob"],
            ["exec", "alice", "--", "sh", "-c", "echo $X", "--vault"],
        ] {
            #expect(DocExamplesTests.parseError(right) == nil, "\(right): \(DocExamplesTests.parseError(right) ?? "")")
        }
        // A shell expansion stands for a value only the shell knows; it does not excuse an unknown option.
        #expect(DocExamplesTests.parseErrorWithExpansions(["audit", "--verify", "--expect-head", "$(…)"]) == nil)
        #expect(DocExamplesTests.parseErrorWithExpansions(["audit", "--verify", "--expect-head", "abc"]) != nil)
        #expect(DocExamplesTests.parseErrorWithExpansions(["list", "--nope", "$X"]) != nil)
        #expect(
            DocExamples.anchors(
                in:
                    "# Monitoring: check, --notify and Prometheus\n## Any OAuth 2.0 / OpenID Connect provider\n## When the vault's store fails\n<a id=\"x-y\"></a>\n"
            )
                == [
                    "monitoring-check---notify-and-prometheus", "any-oauth-20--openid-connect-provider",
                    "when-the-vaults-store-fails", "x-y",
                ])
    }
}

/// The `tokenvault` command lines of a Markdown text, by the rule in docs/testing.md.
enum DocExamples {
    struct Example: Equatable {
        /// 1-based line of the Markdown text where the command line starts.
        var line: Int
        /// The arguments after `tokenvault`.
        var arguments: [String]
        /// Marked `# refused: …`: it must fail to parse.
        var refused: Bool
    }

    /// The lines of each fenced code block, with their 1-based line numbers; an `ini` block (a systemd unit) gives
    /// only its `Exec…=` lines.
    static func codeBlocks(in markdown: String) -> [[(line: Int, text: String)]] {
        var blocks: [[(line: Int, text: String)]] = []
        var current: [(line: Int, text: String)]? = nil
        var unit = false
        for (index, line) in markdown.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop(while: { $0 == " " })
            if trimmed.hasPrefix("```") {
                if let block = current {
                    blocks.append(block)
                    current = nil
                } else {
                    current = []
                    unit = trimmed.dropFirst(3).trimmingCharacters(in: .whitespaces) == "ini"
                }
            } else if current != nil, !unit || line.hasPrefix("Exec") {
                current!.append((index + 1, String(line)))
            }
        }
        return blocks
    }

    static func examples(in markdown: String) -> [Example] {
        var found: [Example] = []
        for block in codeBlocks(in: markdown) {
            // With `$ ` prompts, only the prompt lines are commands; the rest is output.
            let prompted = block.contains { $0.text.hasPrefix("$ ") }
            var logical: [(line: Int, text: String)] = []
            var pending: (line: Int, text: String)? = nil
            for (line, text) in block {
                var text = text
                if prompted {
                    guard pending != nil || text.hasPrefix("$ ") else { continue }
                    if pending == nil { text.removeFirst(2) }
                }
                if var open = pending {
                    open.text += " " + text
                    pending = open
                } else {
                    pending = (line, text)
                }
                if pending!.text.hasSuffix("\\") {
                    pending!.text.removeLast()
                } else {
                    logical.append(pending!)
                    pending = nil
                }
            }
            if let pending { logical.append(pending) }
            for (line, text) in logical {
                let (code, comment) = splitComment(text)
                let refused = comment?.trimmingCharacters(in: .whitespaces).hasPrefix("refused:") ?? false
                for command in simpleCommands(code) {
                    if let arguments = tokenvaultArguments(command) {
                        found.append(Example(line: line, arguments: arguments, refused: refused))
                    }
                }
            }
        }
        return found
    }

    /// The line without its comment (a `#` starting a word outside quotes), and the comment's text after `#`.
    static func splitComment(_ line: String) -> (String, String?) {
        let chars = Array(line)
        var quote: Character? = nil
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { i += 1 }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "\\" {
                i += 1
            } else if c == "#" && (i == 0 || chars[i - 1] == " " || chars[i - 1] == "\t") {
                return (String(chars[..<i]), String(chars[(i + 1)...]))
            }
            i += 1
        }
        return (line, nil)
    }

    /// The simple commands of a shell line: each command substitution's own, then the line's, split at `|`, `||`,
    /// `&&`, `;`, `&`, `(` and `)`; quotes removed, redirections dropped, a substitution standing as one word `$(…)`.
    static func simpleCommands(_ line: String) -> [[String]] {
        let chars = Array(line)
        var commands: [[String]] = []
        var inner: [[String]] = []
        var words: [String] = []
        var word = ""
        var inWord = false
        var dropNextWord = false
        var i = 0

        func endWord() {
            if inWord {
                if dropNextWord { dropNextWord = false } else { words.append(word) }
            }
            word = ""
            inWord = false
        }
        func endCommand() {
            endWord()
            if !words.isEmpty { commands.append(words) }
            words = []
        }
        /// At `$(`: the substitution's text up to its matching `)`, as its own commands; returns the index after it.
        func substitution(at start: Int) -> Int {
            var depth = 1
            var j = start + 2
            var quote: Character? = nil
            while j < chars.count {
                let c = chars[j]
                if let q = quote {
                    if c == q { quote = nil }
                } else if c == "'" || c == "\"" {
                    quote = c
                } else if c == "(" {
                    depth += 1
                } else if c == ")" {
                    depth -= 1
                    if depth == 0 { break }
                }
                j += 1
            }
            inner += simpleCommands(String(chars[(start + 2)..<min(j, chars.count)]))
            word += "$(…)"
            inWord = true
            return j + 1
        }
        /// At `<`: a placeholder `<name>` becomes the word `name`; returns the index after it, or nil.
        func placeholder(at start: Int) -> Int? {
            var j = start + 1
            while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "-" || chars[j] == "_" {
                j += 1
            }
            guard j > start + 1, j < chars.count, chars[j] == ">" else { return nil }
            word += String(chars[(start + 1)..<j])
            inWord = true
            return j + 1
        }

        while i < chars.count {
            let c = chars[i]
            switch c {
            case " ", "\t":
                endWord()
                i += 1
            case "'":
                inWord = true
                i += 1
                while i < chars.count, chars[i] != "'" {
                    word.append(chars[i])
                    i += 1
                }
                i += 1
            case "\"":
                inWord = true
                i += 1
                while i < chars.count, chars[i] != "\"" {
                    if chars[i] == "\\", i + 1 < chars.count, "\"\\$`".contains(chars[i + 1]) {
                        word.append(chars[i + 1])
                        i += 2
                    } else if chars[i] == "$", i + 1 < chars.count, chars[i + 1] == "(" {
                        i = substitution(at: i)
                    } else {
                        word.append(chars[i])
                        i += 1
                    }
                }
                i += 1
            case "\\":
                if i + 1 < chars.count {
                    word.append(chars[i + 1])
                    inWord = true
                }
                i += 2
            case "$" where i + 1 < chars.count && chars[i + 1] == "(":
                i = substitution(at: i)
            case "<", ">":
                if c == "<", let next = placeholder(at: i) {
                    i = next
                    continue
                }
                // A redirection: a descriptor number written right before it goes with it, and so does its target.
                if inWord, !word.isEmpty, word.allSatisfy(\.isNumber) {
                    word = ""
                    inWord = false
                } else {
                    endWord()
                }
                i += 1
                while i < chars.count, chars[i] == "<" || chars[i] == ">" { i += 1 }
                if i < chars.count, chars[i] == "&" {
                    i += 1
                    while i < chars.count, chars[i].isNumber || chars[i] == "-" { i += 1 }
                } else {
                    dropNextWord = true
                }
            case "&" where i + 1 < chars.count && chars[i + 1] == ">":
                endWord()
                i += 2
                dropNextWord = true
            case "|", "&", ";", "(", ")":
                endCommand()
                i += 1
            default:
                word.append(c)
                inWord = true
                i += 1
            }
        }
        endCommand()
        return inner + commands
    }

    /// The arguments of a simple command that runs tokenvault, or nil.
    static func tokenvaultArguments(_ words: [String]) -> [String]? {
        func isTokenvault(_ word: String) -> Bool { word == "tokenvault" || word.hasSuffix("/tokenvault") }
        func isAssignment(_ word: String) -> Bool {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else { return false }
            return word[..<equals].allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && !word.first!.isNumber
        }
        var rest = words[...]
        // A crontab line: five schedule fields first.
        if rest.count > 5, rest.prefix(5).allSatisfy({ $0.allSatisfy { "0123456789*/,-".contains($0) } }) {
            rest = rest.dropFirst(5)
        }
        while let first = rest.first {
            if isAssignment(first) {
                let key = first.prefix { $0 != "=" }
                let value = String(first.drop { $0 != "=" }.dropFirst())
                // systemd: ExecStart=/usr/bin/tokenvault …
                if key.hasPrefix("Exec"), isTokenvault(value) { return Array(rest.dropFirst()) }
                rest = rest.dropFirst()
            } else if ["sudo", "env", "time", "eval"].contains(first) {
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard let first = rest.first, isTokenvault(first) else { return nil }
        return Array(rest.dropFirst())
    }

    struct Link {
        var line: Int
        var target: String
    }

    /// The targets of Markdown links and images outside code blocks and code spans that are not web addresses.
    static func links(in markdown: String) -> [Link] {
        var found: [Link] = []
        var inFence = false
        let pattern = try! NSRegularExpression(pattern: #"\]\(([^)\s]+)\)"#)
        for (index, line) in markdown.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.drop(while: { $0 == " " }).hasPrefix("```") {
                inFence.toggle()
                continue
            }
            if inFence { continue }
            // Code spans out (`[x](y)` inside backticks is text, not a link).
            let text = String(line).split(separator: "`", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 0 }.map(\.element).joined(separator: " ")
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let target = String(text[Range(match.range(at: 1), in: text)!])
                if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("mailto:") {
                    continue
                }
                found.append(Link(line: index + 1, target: target))
            }
        }
        return found
    }

    static func split(_ target: String) -> (path: String, anchor: String?) {
        guard let hash = target.firstIndex(of: "#") else { return (target, nil) }
        return (String(target[..<hash]), String(target[target.index(after: hash)...]))
    }

    /// The anchors a Markdown file offers: GitHub's slugs of its headings (lowercased, punctuation but `-` and `_`
    /// removed, spaces made `-`, repeats numbered) and its `<a id="…">` elements.
    static func anchors(in markdown: String) -> [String] {
        var found: [String] = []
        var seen: [String: Int] = [:]
        var inFence = false
        let idPattern = try! NSRegularExpression(pattern: #"<a id="([^"]+)">"#)
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.drop(while: { $0 == " " }).hasPrefix("```") {
                inFence.toggle()
                continue
            }
            if inFence { continue }
            let text = String(line)
            for match in idPattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                found.append(String(text[Range(match.range(at: 1), in: text)!]))
            }
            guard text.hasPrefix("#") else { continue }
            var heading = String(text.drop { $0 == "#" }).trimmingCharacters(in: .whitespaces)
            // A link in a heading counts by its text.
            heading = heading.replacingOccurrences(
                of: #"\[([^\]]*)\]\([^)]*\)"#, with: "$1", options: .regularExpression)
            var slug = ""
            for c in heading.lowercased() {
                if c.isLetter || c.isNumber || c == "-" || c == "_" {
                    slug.append(c)
                } else if c == " " {
                    slug.append("-")
                }
            }
            if let count = seen[slug] {
                seen[slug] = count + 1
                found.append("\(slug)-\(count)")
            } else {
                seen[slug] = 1
                found.append(slug)
            }
        }
        return found
    }
}
