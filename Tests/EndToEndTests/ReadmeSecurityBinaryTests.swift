import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

/// `sh -c` running the binary with `args`, descriptor 3 opened on `fd3` (for `--passphrase-fd 3`).
func runWithFD3(_ ws: Workspace, _ arguments: [String], fd3: String, environment extra: [String: String?] = [:]) throws
    -> ProcessResult
{
    var env = ws.environment
    for (k, v) in extra { env[k] = v }
    return try runProcess(
        "/bin/sh", ["-c", "f=$1; shift; exec \"$0\" \"$@\" 3< \"$f\"", tokenvaultBinary, fd3] + arguments,
        environment: env)
}

/// Every request the sandbox has answered.
func sandboxRequests(_ s: SandboxWorkspace) async -> Int {
    await s.sandbox.counters.requestsByEndpoint.values.reduce(0, +)
}

/// `Max core file size` from /proc/PID/limits: soft and hard, as printed.
func coreLimit(_ pid: pid_t) -> String? {
    guard let limits = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8) else { return nil }
    guard let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max core file size") }) else {
        return nil
    }
    return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2).joined(separator: " ")
}

/// Waits until /proc/PID/cmdline starts with `prefix` (the exec'd program runs); false after `timeout`.
func waitForCmdline(_ pid: pid_t, prefix: String, timeout: TimeInterval = 20) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let cmdline = fileBytes("/proc/\(pid)/cmdline")
        if String(decoding: cmdline, as: UTF8.self).hasPrefix(prefix) { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return false
}

/// Raises the soft and hard core limit (root may) before running the rest: the test runner's own limit may be
/// 0 already, and then a child at 0 would prove nothing.
let withCoreDumpsAllowed = ["/bin/sh", "-c", "ulimit -c unlimited && exec \"$@\"", "sh"]

extension OAuthBinaryTests {
    /// README, "The passphrase" and "Security model": promises no other test checked.
    @Suite struct ReadmeSecurity {
        /// `--passphrase-fd` > `TOKENVAULT_PASSPHRASE_FILE` > `TOKENVAULT_PASSPHRASE`; a trailing `\r` is dropped.
        @Test func passphraseSourcePrecedence() async throws {
            try await SandboxWorkspace.with { s in
                let ws = s.ws
                let right = try ws.write("right", Workspace.passphrase + "\n")
                let wrong = try ws.write("wrong", "not the passphrase\n")
                let crlf = try ws.write("crlf", Workspace.passphrase + "\r\n")
                let verify = ["audit", "--verify", "--passphrase-fd", "3"]
                let cases: [(fd: String, file: String?, env: String?, code: Int32)] = [
                    (right, wrong, "nope", 0),  // the descriptor wins over both
                    (wrong, right, Workspace.passphrase, 3),  // ... even when it is wrong
                ]
                for c in cases {
                    let result = try await offPool {
                        try runWithFD3(
                            ws, verify, fd3: c.fd,
                            environment: ["TOKENVAULT_PASSPHRASE_FILE": c.file, "TOKENVAULT_PASSPHRASE": c.env])
                    }
                    #expect(result.code == c.code, "fd \(c.fd == right ? "right" : "wrong"): \(result.err)")
                }
                let fileWins = try await s.run(
                    ["audit", "--verify"],
                    environment: ["TOKENVAULT_PASSPHRASE_FILE": right, "TOKENVAULT_PASSPHRASE": "nope"])
                #expect(fileWins.code == 0, "\(fileWins.err)")
                let fileWrong = try await s.run(
                    ["audit", "--verify"], environment: ["TOKENVAULT_PASSPHRASE_FILE": wrong])
                #expect(fileWrong.code == 3, "the file comes before the environment: \(fileWrong.err)")
                let carriageReturn = try await s.run(
                    ["audit", "--verify"],
                    environment: ["TOKENVAULT_PASSPHRASE_FILE": crlf, "TOKENVAULT_PASSPHRASE": nil])
                #expect(carriageReturn.code == 0, "a trailing \\r is dropped: \(carriageReturn.err)")
            }
        }

        /// The environment comes before the terminal: no prompt when TOKENVAULT_PASSPHRASE is set.
        @Test(.enabled(if: Tmux.available || MachineSupport.isCI, "tmux is needed (make test installs it)"))
        func theEnvironmentComesBeforeTheTerminal() throws {
            let ws = Workspace()
            try ws.expectOK(["init", "--kdf", "interactive"])
            var env = ws.environment
            env["TERM"] = "xterm"
            let tmux = try Tmux(command: "/bin/sh", environment: env)
            defer { tmux.kill() }
            try tmux.type("\(tokenvaultBinary) audit --verify; echo EXIT=$?")
            let (code, screen) = try tmux.waitForExit("EXIT")
            #expect(code == 0, "\(screen)")
            #expect(!screen.contains("passphrase:"), "prompted despite TOKENVAULT_PASSPHRASE: \(screen)")
        }

        /// A passphrase file that is a symbolic link, or belongs to another user, is refused (exit 3).
        @Test func symlinkedOrForeignPassphraseFilesAreRefused() async throws {
            let ws = Workspace()
            try ws.expectOK(["init", "--kdf", "interactive"])
            let real = try ws.write("real", Workspace.passphrase + "\n")
            let link = ws.dir + "/link"
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real)
            let noEnv: [String: String?] = ["TOKENVAULT_PASSPHRASE": nil]
            #expect(
                try ws.tokenvault(
                    ["audit", "--verify"], environment: noEnv.merging(["TOKENVAULT_PASSPHRASE_FILE": real]) { $1 }
                ).code == 0)
            let linked = try ws.tokenvault(
                ["audit", "--verify"], environment: noEnv.merging(["TOKENVAULT_PASSPHRASE_FILE": link]) { $1 })
            #expect(linked.code == 3, "\(linked.err)")
            #expect(linked.err.contains("symbolic link"), "\(linked.err)")
            guard geteuid() == 0 else { return }  // chown to another uid needs root
            chown(real, uid_t(MachineSupport.otherUID), gid_t(MachineSupport.otherUID))
            let foreign = try ws.tokenvault(
                ["audit", "--verify"], environment: noEnv.merging(["TOKENVAULT_PASSPHRASE_FILE": real]) { $1 })
            #expect(foreign.code == 3, "\(foreign.err)")
            #expect(!foreign.err.contains(Workspace.passphrase))
        }

        /// The client id, redirect URI and provider are bound to the sealed client secret: an edit is exit 7
        /// before anything is sent.
        @Test func routingFieldsAreBoundToTheSealedSecret() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                for (column, value) in [
                    ("client_id", "Cattacker"), ("redirect_uri", "http://127.0.0.1:1/elsewhere"),
                    ("provider", "webex2"),
                ] {
                    let original = try sqlite(s.ws.vault, "SELECT \(column) FROM integration WHERE name = 'webex'")
                    try sqlite(s.ws.vault, "UPDATE integration SET \(column) = '\(value)' WHERE name = 'webex'")
                    let sent = await sandboxRequests(s)
                    for command in [["refresh", "alice"], ["whoami", "alice"]] {
                        let result = try await s.run(command)
                        #expect(result.code == 7, "\(column) edited, \(command): \(result.err)")
                    }
                    #expect(await sandboxRequests(s) == sent, "\(column) edited: a request was sent")
                    try sqlite(s.ws.vault, "UPDATE integration SET \(column) = '\(original)' WHERE name = 'webex'")
                }
                #expect(try await s.run(["refresh", "alice"]).code == 0, "restored, it works again")
            }
        }

        /// `RLIMIT_CORE` 0 in the binary and in the program `exec` becomes; `PR_SET_DUMPABLE` 0 in the binary
        /// (another process of the same user cannot read its memory or environment).
        @Test func noCoreDumpsAndNotDumpable() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                // A control: the wrapper does raise the limit.
                let control = try BackgroundProcess(
                    withCoreDumpsAllowed[0], Array(withCoreDumpsAllowed.dropFirst()) + ["sleep", "30"],
                    environment: s.ws.environment)
                defer {
                    control.signal(SIGKILL)
                    _ = try? control.wait(timeout: 5)
                }
                #expect(try await waitForCmdline(control.pid, prefix: "sleep\0"))
                try #require(
                    coreLimit(control.pid) == "unlimited unlimited",
                    "the wrapper did not raise the core limit: \(coreLimit(control.pid) ?? "?")")

                // The exec'd program inherits 0.
                let child = try BackgroundProcess(
                    withCoreDumpsAllowed[0],
                    Array(withCoreDumpsAllowed.dropFirst()) + [tokenvaultBinary, "exec", "alice", "--", "sleep", "30"],
                    environment: s.ws.environment)
                defer {
                    child.signal(SIGKILL)
                    _ = try? child.wait(timeout: 5)
                }
                #expect(
                    try await waitForCmdline(child.pid, prefix: "sleep\0"), "exec did not start sleep: \(child.err)")
                #expect(coreLimit(child.pid) == "0 0", "the exec'd program: \(coreLimit(child.pid) ?? "?")")

                // tokenvault itself, waiting for a paste.
                let waiting = try BackgroundProcess(
                    withCoreDumpsAllowed[0],
                    Array(withCoreDumpsAllowed.dropFirst()) + [
                        tokenvaultBinary, "authorize", "bob", "--no-browser", "--timeout", "60",
                    ],
                    environment: s.ws.environment)
                defer {
                    waiting.signal(SIGKILL)
                    _ = try? waiting.wait(timeout: 5)
                }
                _ = try await offPool { try waiting.waitForStderrLine { $0.contains("Paste the URL") } }
                #expect(coreLimit(waiting.pid) == "0 0", "tokenvault: \(coreLimit(waiting.pid) ?? "?")")
                // Not dumpable: the kernel hands its /proc files to root (a dumpable process's stay its owner's).
                // Run as another uid so that the difference shows.
                if MachineSupport.secondUser, let setpriv = MachineSupport.setpriv {
                    let otherDir = "/tmp/tokenvault-e2e-other-\(UUID().uuidString)"
                    defer { try? FileManager.default.removeItem(atPath: otherDir) }
                    let asOther = try BackgroundProcess(
                        setpriv,
                        [
                            "--reuid=\(MachineSupport.otherUID)", "--regid=\(MachineSupport.otherUID)",
                            "--clear-groups",
                            tokenvaultBinary, "init", "--kdf", "interactive", "--vault", otherDir + "/vault.db",
                            "--passphrase-fd", "0",
                        ],
                        environment: s.ws.environment)
                    defer {
                        asOther.signal(SIGKILL)
                        _ = try? asOther.wait(timeout: 5)
                    }
                    // Blocked reading the passphrase from its stdin (a pipe left open): wait for that state.
                    let deadline = Date().addingTimeInterval(20)
                    var state = ""
                    while Date() < deadline {
                        let tasks =
                            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(asOther.pid)/task")) ?? []
                        state = tasks.map {
                            String(decoding: fileBytes("/proc/\(asOther.pid)/task/\($0)/wchan"), as: UTF8.self)
                        }.joined(separator: " ")
                        if state.contains("pipe_read") || state.contains("pipe_wait") { break }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    #expect(state.contains("pipe"), "not waiting on its stdin: \(state) \(asOther.err)")
                    var info = stat()
                    #expect(stat("/proc/\(asOther.pid)/environ", &info) == 0)
                    #expect(
                        info.st_uid == 0,
                        "/proc/PID/environ of a uid-\(MachineSupport.otherUID) tokenvault belongs to uid \(info.st_uid): it is dumpable"
                    )
                }
            }
        }

        /// revoke: an expired access token is not sent to the provider; after a remote revoke, and after the
        /// provider refused (the fallback), the pair's sealed bytes are gone from the file and its WAL.
        @Test func revokeWithAnExpiredTokenAndSealedBytesAfterRemoteAndFallback() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["remote", "expired"])
                // A token without identity:tokens_write, imported without a scope field (scopes unknown): tried, refused.
                let refused = try await s.sandbox.issueTokenPair(
                    clientId: s.clientId, userId: s.user.id, scopes: ["spark:kms"])
                try await s.expectOK(
                    ["import", "refused", "--integration", "webex"],
                    stdin: tokenJSON(access: refused.accessToken, refresh: refused.refreshToken))
                try sqlite(
                    s.ws.vault,
                    "UPDATE account SET access_expires_at = \(Date().timeIntervalSince1970 - 60) WHERE name = 'expired'"
                )

                let expired = try await s.run(["revoke", "expired"])
                #expect(expired.code == 0, "\(expired.err)")
                #expect(
                    await s.sandbox.requests(to: "DELETE /v1/authorizations") == 0, "an expired access token was sent")
                #expect(try await s.auditEvents("expired").last?["event"] as? String == "revoked")

                // The refused one first: the remote revoke ends every grant of the same person and integration.
                for name in ["refused", "remote"] {
                    let blobs = try sealedBlobs(s.ws.vault, account: name)
                    let before = await s.sandbox.requests(to: "DELETE /v1/authorizations")
                    let result = try await s.run(["revoke", name])
                    // A refused revocation still removes the pair, but exits 6: the tokens stay valid there.
                    #expect(result.code == (name == "refused" ? 6 : 0), "\(name): \(result.err)")
                    #expect(
                        await s.sandbox.requests(to: "DELETE /v1/authorizations") == before + 1,
                        "\(name): not asked at the provider")
                    #expect(
                        sealedBytesGone(s.ws.vault, blobs),
                        "\(name): sealed bytes are still in the vault file or its WAL")
                    #expect(try await s.auditEvents(name).last?["event"] as? String == "revoked")
                    #expect(try await s.run(["token", name]).code == 4)
                    if name == "refused" {
                        #expect(
                            await s.sandbox.isRefreshTokenValid(refused.refreshToken),
                            "the provider refused: the grant stays")
                        #expect(result.err.contains("tokenvault: hint:"), "\(result.err)")
                    }
                }
                #expect(try await s.run(["audit", "--verify"]).code == 0)
            }
        }
    }
}
