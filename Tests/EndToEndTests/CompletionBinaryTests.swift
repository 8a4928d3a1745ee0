import Foundation
import Testing
import TokenVaultLab

/// Issue 8 §16: shell completions complete account and integration names, read from the vault's plain metadata.
@Suite(.tags(.process), .serialized) struct CompletionBinaryTests {
    /// §16: account and integration names complete from plain metadata: no passphrase anywhere in reach.
    @Test func bashCompletesAccountAndIntegrationNames() throws {
        let (ws, _) = try PromptBinaryTests.workspace()
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let script = try ws.tokenvault(["--generate-completion-script", "bash"]).out
        let path = try ws.write("tokenvault.bash", script, mode: 0o644)
        func complete(_ words: [String]) throws -> [String] {
            let quoted = ([tokenvaultBinary] + words).map { "'\($0)'" }.joined(separator: " ")
            let result = try runProcess("/bin/bash", ["-c", """
                source '\(path)'
                COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count); COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
                _tokenvault '\(tokenvaultBinary)' "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                printf '%s\\n' "${COMPREPLY[@]}"
                """], environment: env)
            #expect(result.code == 0 && result.err.isEmpty, "\(result.err)")
            return result.out.split(separator: "\n").map(String.init)
        }
        #expect(try complete(["env", "al"]) == ["albert", "alice"])
        #expect(try complete(["revoke", "b"]) == ["bob"])
        #expect(try complete(["authorize", "carol", "--integration", "we"]) == ["webex1"])
        // (The old top-level `remove-integration` still works but is hidden, from help and completions alike.)
        #expect(try complete(["integration", "remove", ""]) == ["webex1"])
        #expect(try complete(["integration", "edit", "w"]) == ["webex1"])
        // zsh's script calls back into tokenvault the same way (driven at a terminal in the test below).
        #expect(try ws.tokenvault(["--generate-completion-script", "zsh"]).out.contains("---completion env -- positional@0"))

        // No vault: nothing printed, exit 0, nothing created.
        let none = try ws.tokenvault(["---completion", "env", "--", "positional@0", "2", "0", "tokenvault", "env", ""],
                                     environment: ["TOKENVAULT_VAULT": ws.dir + "/absent/vault.db", "TOKENVAULT_PASSPHRASE": nil])
        #expect(none.code == 0 && none.out.isEmpty && none.err.isEmpty, "\(none.out)\(none.err)")
        #expect(!FileManager.default.fileExists(atPath: ws.dir + "/absent"))
    }

    static let fish = ["/usr/bin/fish", "/usr/local/bin/fish"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let zsh = ["/usr/bin/zsh", "/bin/zsh"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// fish and zsh complete only in an interactive shell: type, press Tab, read the screen.
    @Test(.enabled(if: Tmux.available && fish != nil && zsh != nil, "tmux, fish and zsh are needed (make test installs them)"),
          arguments: ["fish", "zsh"])
    func fishAndZshCompleteAccountNamesAtTheTerminal(shell name: String) throws {
        let (ws, _) = try PromptBinaryTests.workspace()
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let script = try ws.write("tokenvault.\(name)", try ws.tokenvault(["--generate-completion-script", name]).out, mode: 0o644)
        let bin = productsDirectory.path
        let shell: Tmux
        if name == "fish" {
            shell = try Tmux(command: "\(Self.fish!) --no-config", environment: env)
            try shell.type("set -x PATH \(bin) $PATH; source \(script); echo READY-$status")
        } else {
            shell = try Tmux(command: "\(Self.zsh!) -f", environment: env)
            try shell.type("PATH=\(bin):$PATH; autoload -U compinit && compinit -u -D && source \(script); echo READY-$?")
        }
        // fish and zsh outlived tmux's kill-server (the Tmux deinit) here: leave the shell first, which ends the
        // session and the server, whether the test passed or failed.
        defer {
            try? shell.send("C-c")
            try? shell.type("exit")
            shell.kill()
        }
        try shell.waitFor("READY-0")
        try shell.type("tokenvault env al", enter: false)
        try shell.send("Tab")
        let screen = try shell.waitFor("albert  alice")
        #expect(!screen.contains("passphrase"), "\(screen)")
    }
}
