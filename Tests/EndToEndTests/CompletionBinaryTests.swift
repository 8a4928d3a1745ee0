import Foundation
import Testing
import TokenVaultLab

/// Shell completions (bash, zsh, fish) complete account and integration names, read from the vault's plain metadata.
@Suite(.tags(.process), .serialized) struct CompletionBinaryTests {
    /// Account and integration names complete from plain metadata: no passphrase anywhere in reach.
    @Test func bashCompletesAccountAndIntegrationNames() throws {
        let (ws, _) = try PromptBinaryTests.workspace()
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let script = try ws.tokenvault(["--generate-completion-script", "bash"]).out
        let path = try ws.write("tokenvault.bash", script, mode: 0o644)
        func complete(_ words: [String]) throws -> [String] {
            let quoted = ([tokenvaultBinary] + words).map { "'\($0)'" }.joined(separator: " ")
            let result = try runProcess(
                "/bin/bash",
                [
                    "-c",
                    """
                    source '\(path)'
                    COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count); COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
                    _tokenvault '\(tokenvaultBinary)' "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                    printf '%s\\n' "${COMPREPLY[@]}"
                    """,
                ], environment: env)
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
        #expect(
            try ws.tokenvault(["--generate-completion-script", "zsh"]).out.contains("---completion env -- positional@0")
        )

        // No vault: nothing printed, exit 0, nothing created.
        let none = try ws.tokenvault(
            ["---completion", "env", "--", "positional@0", "2", "0", "tokenvault", "env", ""],
            environment: ["TOKENVAULT_VAULT": ws.dir + "/absent/vault.db", "TOKENVAULT_PASSPHRASE": nil])
        #expect(none.code == 0 && none.out.isEmpty && none.err.isEmpty, "\(none.out)\(none.err)")
        #expect(!FileManager.default.fileExists(atPath: ws.dir + "/absent"))
    }

    static let fish = ["/usr/bin/fish", "/usr/local/bin/fish"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let zsh = ["/usr/bin/zsh", "/bin/zsh"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// fish and zsh complete only in an interactive shell: type, press Tab, read the screen.
    @Test(
        .enabled(
            if: Tmux.available && fish != nil && zsh != nil, "tmux, fish and zsh are needed (make test installs them)"),
        arguments: ["fish", "zsh"])
    func fishAndZshCompleteAccountNamesAtTheTerminal(shell name: String) throws {
        let (ws, _) = try PromptBinaryTests.workspace()
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let script = try ws.write(
            "tokenvault.\(name)", try ws.tokenvault(["--generate-completion-script", name]).out, mode: 0o644)
        let bin = productsDirectory.path
        let shell = try Self.completingShell(name, environment: env, script: script, bin: bin)
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

    /// fish (no config) or zsh (compinit) at a terminal, with the binary on PATH and the completion script sourced;
    /// it prints READY-0 once the script loaded.
    static func completingShell(_ name: String, environment: [String: String], script: String, bin: String) throws
        -> Tmux
    {
        if name == "fish" {
            let shell = try Tmux(command: "\(fish!) --no-config", environment: environment)
            try shell.type("set -x PATH \(bin) $PATH; source \(script); echo READY-$status")
            return shell
        }
        let shell = try Tmux(command: "\(zsh!) -f", environment: environment)
        try shell.type("PATH=\(bin):$PATH; autoload -U compinit && compinit -u -D && source \(script); echo READY-$?")
        return shell
    }

    /// The workspace of the name tests plus a second key slot, `host-a`, for `keys remove <TAB>`.
    static func workspaceWithSlot() throws -> Workspace {
        let (ws, _) = try PromptBinaryTests.workspace()
        let file = try ws.write("host-a.passphrase", "host-a " + generatedToken().prefix(16) + "\n")
        let added = try runWithFD3(
            ws, ["keys", "add", "host-a", "--kdf", "interactive", "--new-passphrase-fd", "3"], fd3: file)
        // Thrown, not expected: this runs off the test's task (see the callers), where an expectation has no test.
        if added.code != 0 { throw TestFailure("keys add host-a: \(added.err)") }
        return ws
    }

    /// bash completes the other names a command answers to (the old `add`, `integrations`, `remove-integration`;
    /// the aliases `status`, `export-env`) like the command itself, and key slot names after `keys remove`.
    @Test func bashCompletesAliasesOldNamesAndKeySlots() async throws {
        // Off the cooperative pool: each completion runs bash and the binary, and a pool thread held that long
        // starves the in-process sandboxes of the other suites running meanwhile (2 cores, 2 pool threads).
        let ws = try await offPool { try Self.workspaceWithSlot() }
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let script = try await offPool { try ws.tokenvault(["--generate-completion-script", "bash"]).out }
        let path = try ws.write("tokenvault.bash", script, mode: 0o644)
        let lines: [[String]] = [
            ["status", "al"], ["export-env", "b"], ["remove-integration", "w"], ["integrations", "--j"],
            ["add", "--client-s"],
            ["keys", "remove", "ho"], ["keys", "remove", ""], ["list", "--key-slot", "host"], ["refresh-all", "al"],
            ["check", "--integration", "we"],
        ]
        let environment = env
        let results = try await offPool {
            try lines.map { words -> ProcessResult in
                let quoted = ([tokenvaultBinary] + words).map { "'\($0)'" }.joined(separator: " ")
                return try runProcess(
                    "/bin/bash",
                    [
                        "-c",
                        """
                        source '\(path)'
                        COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count); COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
                        _tokenvault '\(tokenvaultBinary)' "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                        printf '%s\\n' "${COMPREPLY[@]}"
                        """,
                    ], environment: environment)
            }
        }
        var completed: [String: [String]] = [:]
        for (words, result) in zip(lines, results) {
            #expect(result.code == 0 && result.err.isEmpty, "\(words): \(result.err)")
            completed[words.joined(separator: " ")] = result.out.split(separator: "\n").map(String.init)
        }
        #expect(completed["status al"] == ["albert", "alice"])
        #expect(completed["export-env b"] == ["bob"])
        #expect(completed["remove-integration w"] == ["webex1"])
        #expect(completed["integrations --j"] == ["--json"])
        #expect(completed["add --client-s"] == ["--client-secret-stdin"])
        #expect(completed["keys remove ho"] == ["host-a"])
        #expect(completed["keys remove "]?.contains("host-a") == true)
        #expect(completed["list --key-slot host"] == ["host-a"])
        // The account selection of list, check and refresh-all.
        #expect(completed["refresh-all al"] == ["albert", "alice"])
        #expect(completed["check --integration we"] == ["webex1"])
        // Every one of them is still a command the parser runs.
        #expect(
            try await offPool {
                try ws.tokenvault(["status", "alice", "--json"], environment: ["TOKENVAULT_PASSPHRASE": nil]).code
            } == 0)
    }

    /// zsh and fish: the same names at a terminal (Tab pressed, the screen read), each in a shell of its own: a
    /// completion pager left open swallows the keys that would clear the line for the next one.
    @Test(
        .enabled(
            if: Tmux.available && fish != nil && zsh != nil, "tmux, fish and zsh are needed (make test installs them)"),
        arguments: ["fish", "zsh"])
    func fishAndZshCompleteAliasesAndKeySlots(shell name: String) async throws {
        // Each shell is driven off the cooperative pool (see the bash test above).
        let ws = try await offPool { try Self.workspaceWithSlot() }
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let script = try ws.write(
            "tokenvault.\(name)", try await offPool { try ws.tokenvault(["--generate-completion-script", name]).out },
            mode: 0o644)
        let bin = productsDirectory.path
        let environment = env
        for (typed, shown) in [
            ("tokenvault status al", "albert  alice"), ("tokenvault keys remove ho", "keys remove host-a"),
            ("tokenvault remove-integration w", "remove-integration webex1"),
        ] {
            let screen = try await offPool { () throws -> String in
                let shell = try Self.completingShell(name, environment: environment, script: script, bin: bin)
                defer {
                    try? shell.send("C-c")
                    try? shell.type("exit")
                    shell.kill()
                }
                try shell.waitFor("READY-0")
                try shell.type(typed, enter: false)
                try shell.send("Tab")
                return try shell.waitFor(shown)
            }
            #expect(!screen.contains("passphrase"), "\(screen)")
        }
    }
}
