import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

extension OAuthBinaryTests {
    /// What a new user ran into, following the README on a fresh machine: the built binary as they drive it.
    @Suite struct NewUser {
        /// `tokenvault --vault X init` (the README's administrator set-up) and `--verbose list` failed with
        /// "unknown option '--vault'": the options every command takes work before the command too.
        @Test func optionsEveryCommandTakesWorkBeforeTheCommand() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["alice"])
                let vault = s.ws.vault
                let unset: [String: String?] = ["TOKENVAULT_VAULT": nil, "XDG_DATA_HOME": s.ws.dir + "/elsewhere"]
                let other = s.ws.dir + "/second.db"
                for arguments in [
                    ["--vault", other, "init", "--kdf", "interactive"], ["--vault=" + other, "keys", "list"],
                    ["--vault", vault, "--verbose", "list"], ["--verbose", "--vault", vault, "status"],
                    ["--vault", vault, "keys", "list"], ["--vault", vault, "token", "alice"],
                ] {
                    let result = try await s.run(arguments, environment: unset)
                    #expect(result.code == 0, "\(arguments): \(result.err)")
                }
                #expect(FileManager.default.fileExists(atPath: other))
                #expect(
                    try await s.run(["--vault", vault, "token", "alice"], environment: unset).out == pairs["alice"]!
                        .access + "\n")
                // Nothing after the command's name moves: exec's command gets its arguments as given.
                let exec = try await s.run(
                    ["--vault", vault, "exec", "alice", "--", "/bin/sh", "-c", "echo \"$1 $2\"", "sh", "--vault", "x"],
                    environment: unset)
                #expect(exec.code == 0 && exec.out == "--vault x\n", "\(exec.out)\(exec.err)")
                // An option the command does not take is still refused, naming it.
                let unknown = try await s.run(["--vault", vault, "--nope", "list"], environment: unset)
                #expect(unknown.code == 2, "\(unknown.err)")
                let help = try await s.run(["--help"])
                #expect(
                    help.out.contains("Options every command takes, before the command or after it:")
                        && help.out.contains("--vault <location>"))
            }
        }

        /// `tokenvault lst`, `tokenvault enc alice`: the nearest command is suggested.
        @Test func aMistypedCommandGetsTheNearestOne() async throws {
            let ws = Workspace()
            for (typed, meant) in [
                (["lst"], "list"), (["enc", "alice"], "env"), (["refesh-all"], "refresh-all"),
                (["autorize", "bob"], "authorize"), (["keyz", "list"], "keys"),
            ] {
                let result = try ws.tokenvault(typed)
                #expect(result.code == 2, "\(typed): \(result.err)")
                #expect(result.err.contains("tokenvault: error: unknown command '\(typed[0])'"), "\(result.err)")
                #expect(result.err.contains("did you mean 'tokenvault \(meant)'?"), "\(typed): \(result.err)")
            }
            let far = try ws.tokenvault(["xyzzy"])
            #expect(far.code == 2 && !far.err.contains("did you mean"), "\(far.err)")
        }

        /// `authorize --timeout 5m` was refused: a duration, as everywhere else.
        @Test func authorizeTakesItsTimeoutAsADuration() async throws {
            try await SandboxWorkspace.with { s in
                let browser = try s.ws.browserStandIn("follow")
                let result = try await s.run(
                    ["authorize", "alice", "--timeout", "1m"], environment: ["BROWSER": browser])
                #expect(result.code == 0, "\(result.err)")
                #expect(result.err.contains("(up to 60 s)"), "\(result.err)")
                let bad = try await s.run(["authorize", "bob", "--timeout", "5 minutes"])
                #expect(bad.code == 2, "\(bad.err)")
            }
        }

        /// A headless host: `BROWSER=false`, an xdg-open that exits 3 ("no method available"), or an ssh session
        /// without a display. It printed "Opening the browser…" and waited the whole timeout; now it goes to paste
        /// mode at once (end of input then stops it), saying why.
        @Test func aBrowserThatFailsOrNoDisplayMeansPasteModeAtOnce() async throws {
            try await SandboxWorkspace.with { s in
                let bin = s.ws.dir + "/bin"
                try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
                _ = try s.ws.write(
                    "bin/xdg-open", "#!/bin/sh\necho 'xdg-open: no method available for opening' >&2\nexit 3\n",
                    mode: 0o755)
                let path = bin + ":/usr/local/bin:/usr/bin:/bin"
                for (title, environment, why) in [
                    ("BROWSER=false", ["BROWSER": "false"] as [String: String?], "every entry of $BROWSER failed"),
                    ("xdg-open exits 3", ["DISPLAY": ":99", "PATH": path], "and so did xdg-open"),
                    ("ssh, no display", ["PATH": path], "no display for xdg-open"),
                ] {
                    let started = Date()
                    let result = try await s.run(
                        ["authorize", "bob", "--timeout", "60"], environment: environment, timeout: 50)
                    let took = Date().timeIntervalSince(started)
                    #expect(took < 20, "\(title): took \(Int(took)) s")
                    #expect(result.code == 2, "\(title): \(result.code) \(result.err)")
                    #expect(
                        result.err.contains("no browser could be started") && result.err.contains(why),
                        "\(title): \(result.err)")
                    #expect(!result.err.contains("Waiting for the callback"), "\(title): \(result.err)")
                }
                // With a ':' list, the next entry is tried: the stand-in after `false` completes the authorization.
                let browser = try s.ws.browserStandIn("follow")
                let listed = try await s.run(
                    ["authorize", "alice", "--timeout", "30"], environment: ["BROWSER": "false:" + browser])
                #expect(listed.code == 0, "\(listed.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
            }
        }
        /// "wrong passphrase / hint: try again" whatever happened: a slot left named by TOKENVAULT_KEY_SLOT, a file
        /// (which cannot try again), a symlinked file, an empty one. Each now names the slot tried and the source,
        /// with the hint that fits.
        @Test func aRefusedPassphraseSaysWhichSlotAndSourceAndWhatToDo() async throws {
            try await SandboxWorkspace.with { s in
                _ = try await s.importAccounts(["alice"])
                #expect(try await KeySlots.addBob(s).code == 0)
                func refused(
                    _ environment: [String: String?], _ message: String, _ hint: String,
                    sourceLocation: SourceLocation = #_sourceLocation
                ) async throws {
                    let result = try await s.run(["token", "alice"], environment: environment)
                    #expect(result.code == 3, "\(result.err)", sourceLocation: sourceLocation)
                    #expect(
                        result.err.contains("tokenvault: error: " + message), "\(result.err)",
                        sourceLocation: sourceLocation)
                    #expect(
                        result.err.contains("tokenvault: hint: " + hint), "\(result.err)",
                        sourceLocation: sourceLocation)
                    #expect(
                        !result.err.contains("try again; the vault was not changed"), sourceLocation: sourceLocation)
                }
                try await refused(
                    ["TOKENVAULT_KEY_SLOT": "bob"],
                    "wrong passphrase: the passphrase in TOKENVAULT_PASSPHRASE does not open key slot 'bob' (named by TOKENVAULT_KEY_SLOT)",
                    "if it is another slot's passphrase, unset TOKENVAULT_KEY_SLOT")
                let wrong = try s.ws.write("wrong-passphrase", "not the passphrase\n", mode: 0o600)
                try await refused(
                    ["TOKENVAULT_PASSPHRASE": nil, "TOKENVAULT_PASSPHRASE_FILE": wrong],
                    "wrong passphrase: the passphrase in TOKENVAULT_PASSPHRASE_FILE (\(wrong)) does not open any of the vault's 2 key slots",
                    "put the vault's passphrase in \(wrong)")
                let right = try s.ws.write("passphrase", Workspace.passphrase + "\n", mode: 0o600)
                let link = s.ws.dir + "/passphrase-link"
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: right)
                try await refused(
                    ["TOKENVAULT_PASSPHRASE": nil, "TOKENVAULT_PASSPHRASE_FILE": link],
                    "TOKENVAULT_PASSPHRASE_FILE \(link) is a symbolic link",
                    "point TOKENVAULT_PASSPHRASE_FILE at the file the link leads to")
                let empty = try s.ws.write("empty-passphrase", "", mode: 0o600)
                try await refused(
                    ["TOKENVAULT_PASSPHRASE": nil, "TOKENVAULT_PASSPHRASE_FILE": empty],
                    "the passphrase in TOKENVAULT_PASSPHRASE_FILE (\(empty)) is empty",
                    "put the vault's passphrase in \(empty)")
                // The file itself works.
                #expect(
                    try await s.run(
                        ["token", "alice"],
                        environment: ["TOKENVAULT_PASSPHRASE": nil, "TOKENVAULT_PASSPHRASE_FILE": right]
                    ).code == 0)
            }
        }
        /// Help and hints that said the wrong thing: `--vault` "the vault file" (a PostgreSQL location too), the
        /// crontab example with a bare `tokenvault` (cron's PATH has no /usr/local/bin), `copy` onto an existing
        /// vault hinting at `--vault` (copy takes `--to`).
        @Test func helpAndHintsSayWhatTheCommandTakes() async throws {
            try await SandboxWorkspace.with { s in
                let listHelp = try await s.run(["list", "--help"])
                #expect(
                    listHelp.out.contains("--vault <location>") && listHelp.out.contains("a PostgreSQL location"),
                    "\(listHelp.out)")
                let refreshHelp = try await s.run(["refresh-all", "--help"])
                #expect(refreshHelp.out.contains("/usr/local/bin/tokenvault refresh-all"), "\(refreshHelp.out)")
                #expect(!refreshHelp.out.contains("passphrase tokenvault refresh-all"), "\(refreshHelp.out)")
                let other = s.ws.dir + "/other.db"
                try await s.expectOK(["copy", "--to", other])
                let again = try await s.run(["copy", "--to", other])
                #expect(again.code == 2, "\(again.err)")
                #expect(
                    again.err.contains("give another destination with --to") && !again.err.contains("--vault"),
                    "\(again.err)")
            }
        }
        /// Output polish: a generic provider's `whoami` printed `org: -` and `type: -`, its refresh "refresh token
        /// valid -"; an access token imported alone was "a token pair"; `agent status --json` gave epoch numbers.
        @Test func outputSaysOnlyWhatIsKnown() async throws {
            try await SandboxWorkspace.withProvider(.oidc) { s in
                _ = try await s.importAccounts(["alice"])
                let whoami = try await s.run(["whoami", "alice"])
                #expect(whoami.code == 0, "\(whoami.err)")
                #expect(whoami.out.contains("  id: ") && !whoami.out.contains(": -"), "\(whoami.out)")
                let refreshed = try await s.run(["refresh", "alice"])
                #expect(refreshed.code == 0, "\(refreshed.err)")
                #expect(
                    !refreshed.err.contains("valid -")
                        && refreshed.err.contains("refresh token without a stated lifetime"), "\(refreshed.err)")
                let alone = try await s.run(
                    ["import", "bob", "--integration", s.shape.integration],
                    stdin: tokenJSON(access: generatedToken(), refresh: nil))
                #expect(
                    alone.code == 0 && alone.err.contains("Imported an access token (no refresh token) for 'bob'"),
                    "\(alone.err)")
            }
        }
        /// A needs-reauth error said "run `tokenvault authorize` for this account" and then the hint "run
        /// 'tokenvault authorize alice'": one message, one quoting style now.
        @Test func aNeedsReauthErrorSaysWhatToRunOnce() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["alice"])
                try await s.sandbox.revokeRefreshToken(pairs["alice"]!.refresh)
                let result = try await s.run(["refresh", "alice"])
                #expect(result.code == 5, "\(result.err)")
                #expect(
                    result.err.contains("tokenvault: error: account 'alice' needs re-authorization: "), "\(result.err)")
                #expect(
                    result.err.components(separatedBy: "tokenvault authorize").count == 2, "said once: \(result.err)")
                #expect(
                    result.err.contains("tokenvault: hint: run 'tokenvault authorize alice'")
                        && !result.err.contains("`"), "\(result.err)")
            }
        }
    }
}
