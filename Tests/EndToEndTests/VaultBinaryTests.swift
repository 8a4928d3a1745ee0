import Foundation
import Testing
import TokenVaultLab
import TokenVaultTestSupport

/// The real binary, driven as a user drives it.
@Suite(.tags(.process), .serialized) struct VaultBinaryTests {
    @Test(.enabled(if: Tmux.available || MachineTools.isCI, "tmux is needed (make test installs it)"))
    func passphrasePromptUnderTmuxAsksTwiceWithoutEchoAndKeepsStdoutClean() throws {
        let ws = Workspace()
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let secret = "tmux-" + generatedToken().prefix(12)
        let shell = try Tmux(command: "/bin/bash --norc --noprofile", environment: env)
        defer { shell.kill() }
        try shell.type("PS1='$ '; cd \(ws.dir)")
        try shell.type("\(tokenvaultBinary) init --kdf interactive; echo INIT_EXIT=$?")
        try shell.waitFor("New vault passphrase:")
        try shell.type(secret)
        try shell.waitFor("Repeat it:")
        try shell.type(secret)
        var (code, screen) = try shell.waitForExit("INIT_EXIT")
        #expect(code == 0, "\(screen)")
        #expect(!screen.contains(secret), "the passphrase was echoed")

        // Import a pair and read it back through `env` with stdout captured: the prompt must go to the terminal.
        let token = generatedToken()
        let json = try ws.write("token.json", tokenJSON(access: token, refresh: generatedToken()))
        try shell.type(
            "\(tokenvaultBinary) add w --client-id C --redirect-uri http://localhost:8765/cb --scopes spark:all --client-secret-stdin < /dev/null; echo ADD_EXIT=$?"
        )
        try shell.waitFor("Vault passphrase:", occurrence: 1)
        try shell.type(secret)
        (code, screen) = try shell.waitForExit("ADD_EXIT")
        #expect(code == 2, "\(screen)")
        #expect(screen.contains("the client secret is empty"), "\(screen)")  // /dev/null gives an empty secret
        try shell.type(
            "printf 'cs-%s' \(generatedToken()) | \(tokenvaultBinary) add w --client-id C --redirect-uri http://localhost:8765/cb --scopes spark:all --client-secret-stdin; echo ADD2_EXIT=$?"
        )
        try shell.waitFor("Vault passphrase:", occurrence: 2)
        try shell.type(secret)
        (code, screen) = try shell.waitForExit("ADD2_EXIT")
        #expect(code == 0, "\(screen)")
        try shell.type("\(tokenvaultBinary) import alice --integration w < \(json); echo IMPORT_EXIT=$?")
        try shell.waitFor("Vault passphrase:", occurrence: 3)
        try shell.type(secret)
        (code, screen) = try shell.waitForExit("IMPORT_EXIT")
        #expect(code == 0, "\(screen)")
        try shell.type("\(tokenvaultBinary) env alice > \(ws.dir)/env.out; echo ENV_EXIT=$?")
        try shell.waitFor("Vault passphrase:", occurrence: 4)
        try shell.type(secret)
        (code, screen) = try shell.waitForExit("ENV_EXIT")
        #expect(code == 0, "\(screen)")
        #expect(!screen.contains(token), "the token was shown on the terminal")
        let captured = try String(contentsOfFile: ws.dir + "/env.out", encoding: .utf8)
        #expect(captured == "export WEBEX_ACCESS_TOKEN='\(token)'\n")
    }

    @Test(.enabled(if: Tmux.available || MachineTools.isCI, "tmux is needed (make test installs it)"))
    func ctrlCAtThePromptRestoresTheTerminal() throws {
        let ws = Workspace()
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let shell = try Tmux(command: "/bin/bash --norc --noprofile", environment: env)
        defer { shell.kill() }
        try shell.type("PS1='$ '")
        try shell.type("\(tokenvaultBinary) init --kdf interactive; echo INIT_EXIT=$?")
        try shell.waitFor("New vault passphrase:")
        try shell.send("C-c")
        let (code, screen) = try shell.waitForExit("INIT_EXIT")
        #expect(code == 130, "\(screen)")
        // The marker is built by the shell so the typed line itself does not contain it.
        try shell.type("M=MODE; stty -a | tr ' ' '\\n' | grep -x -e echo -e -echo | sed \"s/^/${M}:/\"")
        let after = try shell.waitFor("MODE:")
        #expect(after.contains("MODE:echo") && !after.contains("MODE:-echo"), "echo was not restored:\n\(after)")
        #expect(!FileManager.default.fileExists(atPath: ws.vault), "an interrupted init left a vault behind")
    }

    /// A token `x * y` once globbed in the unquoted `eval $(tokenvault env …)` that users type, and a
    /// crafted file name in the current directory ran a command. Tokens are now RFC 6750 b64token text, refused
    /// otherwise at import; every storable value survives the quoted and the unquoted form in every shell, in a
    /// directory full of hostile file names.
    @Test func envOutputEvalsToTheExactValueInEveryShell() throws {
        let ws = Workspace()
        try ws.expectOK(["init", "--kdf", "interactive"])
        try ws.expectOK(
            [
                "add", "w", "--client-id", "C", "--redirect-uri", "https://example.com/cb", "--scopes", "spark:all",
                "--client-secret-stdin",
            ], stdin: "cs")
        // The attack value is refused and nothing is stored.
        let globbing = try ws.tokenvault(
            ["import", "glob", "--integration", "w"], stdin: tokenJSON(access: "x * y", refresh: "r"))
        #expect(globbing.code == 6, "\(globbing.err)")
        #expect(!globbing.err.contains("x * y"))
        #expect(try ws.tokenvault(["token", "glob"]).code == 4)
        // Every character a token may hold, in one value.
        let every = "AZaz09-._~+/" + "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9" + "_abc.def~ghi+jkl/mno-pq==="
        try ws.expectOK(["import", "odd", "--integration", "w"], stdin: tokenJSON(access: every, refresh: "r"))
        // A directory whose file names would run commands if anything were globbed or split and re-evaluated.
        let hostile = ws.dir + "/hostile"
        try FileManager.default.createDirectory(atPath: hostile, withIntermediateDirectories: true)
        for name in ["; touch pwned", "$(touch pwned)", "`touch pwned`", "x", "y", "-", "AZaz09-._~+"] {
            _ = FileManager.default.createFile(atPath: hostile + "/" + name, contents: Data())
        }
        let script = try ws.write(
            "check.sh",
            """
            cd '\(hostile)'
            eval $(\(tokenvaultBinary) env odd)
            printf '%s' "$WEBEX_ACCESS_TOKEN" > "$1.unquoted"
            unset WEBEX_ACCESS_TOKEN
            eval "$(\(tokenvaultBinary) env odd)"
            printf '%s' "$WEBEX_ACCESS_TOKEN" > "$1.quoted"
            """, mode: 0o644)
        let shells = ["/bin/bash", "/bin/dash", "/usr/bin/zsh", "/bin/zsh"].filter {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        #expect(shells.contains("/bin/bash") && shells.contains("/bin/dash"))
        for shell in Set(shells.map { URL(fileURLWithPath: $0).lastPathComponent }) {
            let path = shells.first { $0.hasSuffix("/" + shell) }!
            let out = ws.dir + "/" + shell
            let result = try runProcess(path, [script, out], environment: ws.environment)
            #expect(result.code == 0, "\(shell): \(result.err)")
            for variant in ["unquoted", "quoted"] {
                let value = try String(contentsOfFile: "\(out).\(variant)", encoding: .utf8)
                #expect(value == every, "\(shell) \(variant) eval gave \(value)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: hostile + "/pwned"))
    }

    /// The migrations are embedded in the binary, not read from a resource bundle. Copying the binary alone is not
    /// enough to show it: `Bundle.module` falls back to the absolute build path. So the copy runs in a mount
    /// namespace of its own with a tmpfs mounted over the build's products directory, where no bundle can be found.
    @Test func releaseStyleBinaryCopiedAloneWorks() throws {
        guard let unshare = requireTool(MachineTools.find("unshare"), "unshare (util-linux)") else { return }
        let ws = Workspace()
        let lonely = ws.dir + "/bin"
        try FileManager.default.createDirectory(atPath: lonely, withIntermediateDirectories: true)
        // Written through a close-on-exec descriptor: a child another test forks meanwhile must not inherit it open
        // for writing, or exec'ing the copy fails with ETXTBSY (exit 126), as FileManager's copy let happen.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: tokenvaultBinary))
        let fd = open(lonely + "/tokenvault", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        #expect(fd >= 0)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #expect(written == bytes.count)
        let build = productsDirectory.resolvingSymlinksInPath().path
        let namespace = geteuid() == 0 ? ["--mount"] : ["--user", "--map-root-user", "--mount"]
        let hide = "mount -t tmpfs tokenvault-hidden \"$0\" && "
        // The products directory (the bundles included) is empty in there.
        let probe = try runProcess(
            unshare, namespace + ["/bin/sh", "-c", hide + "ls -A \"$0\"", build], environment: ws.environment)
        guard probe.code == 0 else {
            cannotRun("a mount namespace is not available here: \(probe.err)")
            return
        }
        #expect(probe.out.isEmpty, "the build directory is still visible: \(probe.out)")
        func alone(_ arguments: [String], stdin: String = "") throws -> ProcessResult {
            try runProcess(
                unshare,
                namespace + ["/bin/sh", "-c", hide + "exec \"$@\"", build, lonely + "/tokenvault"] + arguments,
                environment: ws.environment, stdin: stdin)
        }
        let vault = ws.dir + "/alone.db"
        let result = try alone(["init", "--kdf", "interactive", "--vault", vault])
        #expect(result.code == 0, "\(result.err)")
        let add = try alone(
            [
                "add", "w", "--client-id", "C", "--redirect-uri", "https://example.com/cb", "--scopes", "spark:all",
                "--client-secret-stdin", "--vault", vault,
            ], stdin: "cs-" + generatedToken())
        #expect(add.code == 0, "\(add.err)")
        let list = try alone(["list", "--vault", vault])
        #expect(list.code == 0, "\(list.err)")
    }

    @Test func exitCodesAndErrorShapeFromTheBinary() throws {
        let ws = Workspace()
        let missing = try ws.tokenvault(["list"])
        #expect(missing.code == 4)
        #expect(missing.err.hasPrefix("tokenvault: error: no vault at "))
        #expect(missing.err.contains("\ntokenvault: hint: create one with 'tokenvault init'"))
        try ws.expectOK(["init", "--kdf", "interactive"])
        let wrong = try ws.tokenvault(["audit", "--verify"], environment: ["TOKENVAULT_PASSPHRASE": "nope"])
        #expect(wrong.code == 3)
        let none = try ws.tokenvault(["audit", "--verify"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(none.code == 3)
        #expect(none.err.contains("--passphrase-fd"))
        let usage = try ws.tokenvault(["env"])
        #expect(usage.code == 2)
        let garbage = try ws.write("garbage.db", String(repeating: "not a database ", count: 100))
        let notVault = try ws.tokenvault(["list", "--vault", garbage])
        #expect(notVault.code == 4)
        #expect(notVault.err.contains("is not a tokenvault vault"))
        #expect(!notVault.err.contains("Fatal error"))
        let version = try ws.tokenvault(["--version"])
        #expect(version.code == 0 && !version.out.isEmpty)
        let passFile = try ws.write("pass", Workspace.passphrase + "\n", mode: 0o640)
        let loose = try ws.tokenvault(
            ["audit", "--verify"], environment: ["TOKENVAULT_PASSPHRASE": nil, "TOKENVAULT_PASSPHRASE_FILE": passFile])
        #expect(loose.code == 3)
        chmod(passFile, 0o400)
        let strict = try ws.tokenvault(
            ["audit", "--verify"], environment: ["TOKENVAULT_PASSPHRASE": nil, "TOKENVAULT_PASSPHRASE_FILE": passFile])
        #expect(strict.code == 0, "\(strict.err)")
    }
}

/// File modes whatever the umask, in a child process: umask is per process, so only a child can set it to 000
/// without changing the files that tests running in parallel create.
@Suite(.tags(.process)) struct UmaskBinaryTests {
    @Test func initUnderUmask000MakesPrivateDirectoriesAndFile() throws {
        let ws = Workspace()
        let result = try runProcess(
            "/bin/sh", ["-c", "umask 000; exec \"$0\" \"$@\"", tokenvaultBinary, "init", "--kdf", "interactive"],
            environment: ws.environment)
        #expect(result.code == 0, "\(result.err)")
        // The shell really ran it under 000: a file it makes itself is 0666.
        let probe = try runProcess(
            "/bin/sh", ["-c", "umask 000; : > \"$0\"", ws.dir + "/probe"], environment: ws.environment)
        #expect(probe.code == 0)
        #expect(fileMode(ws.dir + "/probe") == 0o666)
        #expect(fileMode(ws.dir + "/data") == 0o700)
        #expect(fileMode(ws.dir + "/data/tokenvault") == 0o700)
        #expect(fileMode(ws.vault) == 0o600)
    }

    private func fileMode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
    }
}
