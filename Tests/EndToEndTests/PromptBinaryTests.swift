import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

extension OAuthBinaryTests {
    /// Paste mode with the built binary: a bad paste is named and asked for again, and without a browser paste mode
    /// starts at once. The landing URL is pasted on stdin (no terminal), as a user would.
    @Suite struct Paste {
        /// Starts `authorize … --no-browser` (or what `arguments` say) and answers each paste prompt in turn.
        func authorize(
            _ s: SandboxWorkspace, _ arguments: [String], environment: [String: String?] = [:],
            answers: [@Sendable (URL) throws -> String]
        ) async throws -> BackgroundProcess.Result {
            let child = try s.start(arguments, environment: environment)
            defer { child.signal(SIGKILL) }
            let line = try await offPool { try child.waitForStderrLine { $0.contains("/authorize?") } }
            let url = try #require(URL(string: line.trimmingCharacters(in: .whitespaces)))
            let prompts = [
                "Paste the URL the browser landed on", "Paste it again (2 more attempts)",
                "Paste it again (1 more attempt)",
            ]
            for (prompt, answer) in zip(prompts, answers) {
                _ = try await offPool { try child.waitForStderrLine { $0.contains(prompt) } }
                // Off the cooperative pool: an answer may fetch from the in-process sandbox, which serves on it.
                let text = try await offPool { try answer(url) }
                child.writeStdin(text + "\n")
            }
            return try await offPool { try child.wait(timeout: 60) }
        }

        /// The browser's landing URL after approving: the provider's redirect with a fresh code.
        static func landing(_ url: URL) throws -> String {
            let (status, headers) = try loopbackGET(url)
            guard status == 302, let location = headers["location"] else {
                throw TestFailure("no redirect from \(url)")
            }
            return location
        }

        static func state(_ url: URL) -> String {
            URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?.first { $0.name == "state" }?.value
                ?? ""
        }

        @Test func eachBadPasteIsNamedAndAskedAgain() async throws {
            try await SandboxWorkspace.with { s in
                let result = try await authorize(
                    s, ["authorize", "alice", "--no-browser"],
                    answers: [
                        { _ in s.redirect + "?foo=bar" },
                        { url in try Self.landing(url).replacingOccurrences(of: "state=", with: "state=other") },
                        { url in try Self.landing(url) },
                    ])
                #expect(result.code == 0, "\(result.err)")
                #expect(result.err.contains("tokenvault: that URL has no code= in it"), "\(result.err)")
                #expect(
                    result.err.contains("tokenvault: that URL carries another state than this authorization"),
                    "\(result.err)")
                #expect(result.err.contains("Authorized 'alice' as \(s.user.email)"), "\(result.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
                s.expectNoSecrets(result.err + result.out)
            }
        }

        @Test func aRefusedCodeIsNamedAndAskedAgain() async throws {
            try await SandboxWorkspace.with { s in
                let result = try await authorize(
                    s, ["authorize", "alice", "--no-browser"],
                    answers: [
                        { _ in "MadeUpCode0123456789" },
                        { url in try Self.landing(url) },
                    ])
                #expect(result.code == 0, "\(result.err)")
                #expect(
                    result.err.contains(
                        "tokenvault: the authorization code was refused by the provider (The authorization code is invalid)"
                    ), "\(result.err)")
                #expect(!result.err.contains("refresh token or code"), "\(result.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
            }
        }

        @Test func anErrorFromTheProviderInThePasteIsNamedAndAskedAgain() async throws {
            try await SandboxWorkspace.with { s in
                let result = try await authorize(
                    s, ["authorize", "alice", "--no-browser"],
                    answers: [
                        { url in
                            s.redirect + "?error=access_denied&error_description=The+user+declined&state="
                                + Self.state(url)
                        },
                        { url in try Self.landing(url) },
                    ])
                #expect(result.code == 0, "\(result.err)")
                #expect(
                    result.err.contains(
                        "tokenvault: the URL carries an error from the provider instead of a code: access_denied (The user declined)"
                    ), "\(result.err)")
            }
        }

        /// No browser could be started (no $BROWSER program, no xdg-open on PATH): paste mode at once, not a
        /// wait of --timeout seconds for a callback that cannot come.
        @Test func noBrowserFallsBackToPasteAtOnce() async throws {
            try await SandboxWorkspace.with { s in
                let result = try await authorize(
                    s, ["authorize", "alice", "--timeout", "300"],
                    environment: ["BROWSER": s.ws.dir + "/no-such-browser", "PATH": s.ws.dir + "/empty-path"],
                    answers: [{ url in try Self.landing(url) }])
                #expect(result.code == 0, "\(result.err)")
                #expect(result.err.contains("tokenvault: no browser could be started"), "\(result.err)")
                #expect(!result.err.contains("Waiting for the callback"), "\(result.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
            }
        }

        /// The provider refuses the revocation (a token without identity:tokens_write, scopes unknown to the
        /// vault): the pair is still removed and the run says so, but exits 6.
        @Test func aRefusedRevocationExits6AfterRemovingThePair() async throws {
            try await SandboxWorkspace.with { s in
                let pair = try await s.sandbox.issueTokenPair(
                    clientId: s.clientId, userId: s.user.id, scopes: ["spark:people_read"])
                try await s.expectOK(
                    ["import", "alice", "--integration", "webex"],
                    stdin: tokenJSON(access: pair.accessToken, refresh: pair.refreshToken))
                let result = try await s.run(["revoke", "alice"])
                #expect(result.code == 6, "\(result.err)")
                #expect(result.err.contains("Removed the token pair of 'alice' from the vault."), "\(result.err)")
                #expect(
                    result.err.contains(
                        "tokenvault: error: the tokens of 'alice' were removed from the vault but not revoked at the provider (the provider refused the request (HTTP 403"
                    ), "\(result.err)")
                #expect(result.err.contains("tokenvault: hint: to revoke at Webex"), "\(result.err)")
                #expect(await s.sandbox.requests(to: "DELETE /v1/authorizations") == 1)
                #expect(try await s.run(["token", "alice"]).code == 4)
                #expect(
                    try await s.auditEvents("alice").last?["outcome"] as? String
                        == "removed locally; revoking at the provider failed")
                s.expectNoSecrets(result.err, also: [pair.accessToken, pair.refreshToken])
            }
        }
    }
}

/// With the built binary: argument errors (`tokenvault: error:`, exit 2), exit 4 for an unknown account, 126/127
/// from `exec` as the shells do, a wrong passphrase at a terminal asked again, and `env` idioms that fail loudly.
@Suite(.tags(.process), .serialized) struct PromptBinaryTests {
    /// A vault holding `alice`, `albert` and `bob` under integration `webex1` (no provider needed).
    static func workspace() throws -> (Workspace, token: String) {
        let ws = Workspace()
        try ws.expectOK(["init", "--kdf", "interactive"])
        try ws.expectOK(
            [
                "add", "webex1", "--client-id", "C", "--redirect-uri", "https://example.com/cb", "--scopes",
                "spark:all",
                "--api-base", "http://127.0.0.1:9/v1", "--client-secret-stdin",
            ], stdin: "cs")
        let token = generatedToken()
        for name in ["alice", "albert", "bob"] {
            try ws.expectOK(
                ["import", name, "--integration", "webex1"], stdin: tokenJSON(access: token, refresh: generatedToken()))
        }
        return (ws, token)
    }

    @Test(.enabled(if: Tmux.available, "tmux is needed (make test installs it)"))
    func aWrongPassphraseTypedAtTheTerminalIsAskedAgain() throws {
        let (ws, token) = try Self.workspace()
        var env = ws.environment
        env["TOKENVAULT_PASSPHRASE"] = nil
        let typo = "typo-" + generatedToken().prefix(10)
        let shell = try Tmux(command: "/bin/bash --norc --noprofile", environment: env)
        defer { shell.kill() }
        try shell.type("PS1='$ '; cd \(ws.dir)")
        try shell.type("\(tokenvaultBinary) token alice > token.out; echo TOKEN_EXIT=$?")
        try shell.waitFor("Vault passphrase:")
        try shell.type(typo)
        try shell.waitFor("tokenvault: wrong passphrase; try again (2 more attempts)")
        try shell.waitFor("Vault passphrase:", occurrence: 2)
        try shell.type(Workspace.passphrase)
        var (code, screen) = try shell.waitForExit("TOKEN_EXIT")
        #expect(code == 0, "\(screen)")
        #expect(!screen.contains(typo) && !screen.contains(Workspace.passphrase) && !screen.contains(token))
        #expect(try String(contentsOfFile: ws.dir + "/token.out", encoding: .utf8) == token + "\n")

        // Three wrong answers end the run with exit 3; a fourth prompt never comes.
        // Scrollback cleared first: the prompts counted below must be this run's, not the last one's.
        try shell.clearAll(waitingFor: "Vault passphrase:")
        try shell.type("\(tokenvaultBinary) token alice; echo AGAIN_EXIT=$?")
        for n in 1...3 {
            try shell.waitFor("Vault passphrase:", occurrence: n)
            try shell.type(typo + String(n))
        }
        (code, screen) = try shell.waitForExit("AGAIN_EXIT")
        #expect(code == 3, "\(screen)")
        #expect(screen.components(separatedBy: "Vault passphrase:").count - 1 == 3, "\(screen)")
        #expect(screen.contains("tokenvault: error: wrong passphrase"), "\(screen)")
    }

    @Test func argumentErrorsHaveTheErrorShapeAndExit2() throws {
        let ws = Workspace()
        let format = try ws.tokenvault(["env", "alice", "--format", "yaml"])
        #expect(format.code == 2)
        #expect(
            format.err.hasPrefix("tokenvault: error: the value 'yaml' is invalid for '--format <format>'"),
            "\(format.err)")
        #expect(format.err.contains("\ntokenvault: hint: 'tokenvault env --help' shows the usage\n"), "\(format.err)")
        #expect(!format.err.contains("Error:") && !format.err.contains("Usage:"), "\(format.err)")
        let unknown = try ws.tokenvault(["frobnicate"])
        #expect(unknown.code == 2)
        #expect(
            unknown.err
                == "tokenvault: error: unknown command 'frobnicate'\ntokenvault: hint: 'tokenvault --help' lists the commands\n",
            "\(unknown.err)")
        let missing = try ws.tokenvault(["token"])
        #expect(missing.code == 2)
        #expect(missing.err.hasPrefix("tokenvault: error: missing expected argument '<account>'"), "\(missing.err)")
    }

    @Test func auditOfAnUnknownAccountExits4() throws {
        let (ws, _) = try Self.workspace()
        let nobody = try ws.tokenvault(["audit", "nobody"])
        #expect(nobody.code == 4, "\(nobody.err)")
        #expect(nobody.err.contains("tokenvault: error: no account named 'nobody'"), "\(nobody.err)")
        #expect(nobody.out.isEmpty)
        // A revoked account keeps its history.
        try ws.expectOK(["revoke", "bob", "--local"])
        let revoked = try ws.tokenvault(["audit", "bob", "--json"])
        #expect(revoked.code == 0, "\(revoked.err)")
        #expect(jsonObjects(revoked.out).last?["event"] as? String == "revoked")
    }

    @Test func execFollowsTheShellsForACommandNotFoundOrNotExecutable() throws {
        let (ws, _) = try Self.workspace()
        let missing = try ws.tokenvault(["exec", "alice", "--", ws.dir + "/nonexistent"])
        #expect(missing.code == 127, "\(missing.err)")
        #expect(missing.err.contains("tokenvault: error: cannot find the command"), "\(missing.err)")
        let notOnPath = try ws.tokenvault(["exec", "alice", "--", "no-such-command-\(generatedToken().prefix(6))"])
        #expect(notOnPath.code == 127, "\(notOnPath.err)")
        let plain = try ws.write("plain.sh", "#!/bin/sh\necho hi\n", mode: 0o644)
        let notExecutable = try ws.tokenvault(["exec", "alice", "--", plain])
        #expect(notExecutable.code == 126, "\(notExecutable.err)")
        #expect(notExecutable.err.contains("not executable"), "\(notExecutable.err)")
        let directory = try ws.tokenvault(["exec", "alice", "--", ws.dir])
        #expect(directory.code == 126, "\(directory.err)")
    }

    /// `eval "$(tokenvault env …)"` loses the status. The documented idioms keep it: at a prompt
    /// `out=$(tokenvault env alice) && eval "$out"` (status 3, nothing evaluated); in a `set -e` script the
    /// assignment on a line of its own (a failure inside an `&&` list does not stop a `set -e` script).
    @Test func theDocumentedEnvIdiomsFailLoudly() throws {
        let (ws, token) = try Self.workspace()
        let wrong = ws.environment.merging(["TOKENVAULT_PASSPHRASE": "wrong"]) { $1 }
        let prompt = try runProcess(
            "/bin/bash",
            [
                "-c",
                """
                eval "$(\(tokenvaultBinary) env alice)"; echo "eval: status $?, variable ${WEBEX_ACCESS_TOKEN:-empty}"
                out=$(\(tokenvaultBinary) env alice) && eval "$out"; echo "idiom: status $?"
                """,
            ], environment: wrong)
        #expect(prompt.out == "eval: status 0, variable empty\nidiom: status 3\n", "\(prompt.out)")
        let script = try runProcess(
            "/bin/bash",
            [
                "-c",
                """
                set -e
                out=$(\(tokenvaultBinary) env alice)
                eval "$out"
                echo "not reached"
                """,
            ], environment: wrong)
        #expect(script.code == 3, "\(script.err)")
        #expect(script.out.isEmpty)
        let good = try runProcess(
            "/bin/bash",
            ["-c", "set -e; out=$(\(tokenvaultBinary) env alice); eval \"$out\"; printf %s \"$WEBEX_ACCESS_TOKEN\""],
            environment: ws.environment)
        #expect(good.code == 0 && good.out == token, "\(good.err)")
    }
}
