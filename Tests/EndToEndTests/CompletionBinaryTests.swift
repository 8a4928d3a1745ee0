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

    /// The workspace of the name tests plus a second key slot, `host-a`, for `keys remove <TAB>`.
    static func workspaceWithSlot() throws -> Workspace {
        let (ws, _) = try PromptBinaryTests.workspace()
        let file = try ws.write("host-a.passphrase", "host-a " + generatedToken().prefix(16) + "\n")
        let added = try runWithFD3(ws, ["keys", "add", "host-a", "--kdf", "interactive", "--new-passphrase-fd", "3"], fd3: file)
        #expect(added.code == 0, "\(added.err)")
        return ws
    }

    /// bash completes the other names a command answers to (the old `add`, `integrations`, `remove-integration`;
    /// the aliases `status`, `export-env`) like the command itself, and key slot names after `keys remove`.
    @Test func bashCompletesAliasesOldNamesAndKeySlots() throws {
        let ws = try Self.workspaceWithSlot()
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
        #expect(try complete(["status", "al"]) == ["albert", "alice"])
        #expect(try complete(["export-env", "b"]) == ["bob"])
        #expect(try complete(["remove-integration", "w"]) == ["webex1"])
        #expect(try complete(["integrations", "--j"]) == ["--json"])
        #expect(try complete(["add", "--client-s"]) == ["--client-secret-stdin"])
        #expect(try complete(["keys", "remove", "ho"]) == ["host-a"])
        #expect(try complete(["keys", "remove", ""]).contains("host-a"))
        #expect(try complete(["list", "--key-slot", "host"]) == ["host-a"])
        // The account selection of list, check and refresh-all.
        #expect(try complete(["refresh-all", "al"]) == ["albert", "alice"])
        #expect(try complete(["check", "--integration", "we"]) == ["webex1"])
        // Every one of them is still a command the parser runs.
        #expect(try ws.tokenvault(["status", "alice", "--json"], environment: ["TOKENVAULT_PASSPHRASE": nil]).code == 0)
    }

    /// zsh and fish: the same names at a terminal (Tab pressed, the screen read), each in a shell of its own: a
    /// completion pager left open swallows the keys that would clear the line for the next one.
    @Test(.enabled(if: Tmux.available && fish != nil && zsh != nil, "tmux, fish and zsh are needed (make test installs them)"),
          arguments: ["fish", "zsh"])
    func fishAndZshCompleteAliasesAndKeySlots(shell name: String) throws {
        let ws = try Self.workspaceWithSlot()
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let script = try ws.write("tokenvault.\(name)", try ws.tokenvault(["--generate-completion-script", name]).out, mode: 0o644)
        let bin = productsDirectory.path
        for (typed, shown) in [("tokenvault status al", "albert  alice"), ("tokenvault keys remove ho", "keys remove host-a"),
                               ("tokenvault remove-integration w", "remove-integration webex1")] {
            let shell: Tmux
            if name == "fish" {
                shell = try Tmux(command: "\(Self.fish!) --no-config", environment: env)
                try shell.type("set -x PATH \(bin) $PATH; source \(script); echo READY-$status")
            } else {
                shell = try Tmux(command: "\(Self.zsh!) -f", environment: env)
                try shell.type("PATH=\(bin):$PATH; autoload -U compinit && compinit -u -D && source \(script); echo READY-$?")
            }
            defer {
                try? shell.send("C-c")
                try? shell.type("exit")
                shell.kill()
            }
            try shell.waitFor("READY-0")
            try shell.type(typed, enter: false)
            try shell.send("Tab")
            let screen = try shell.waitFor(shown)
            #expect(!screen.contains("passphrase"), "\(screen)")
        }
    }
}

