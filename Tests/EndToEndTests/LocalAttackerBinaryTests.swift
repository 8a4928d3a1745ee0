import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

/// A second local user to play the attacker: `setpriv` to an unused uid. The machine runs the tests as root;
/// elsewhere the tests that need it are skipped with the reason, except under CI=true, where a skip is a failure.
let otherUserRunner: String? = {
    guard getuid() == 0, MachineTools.find("curl") != nil else { return nil }
    return MachineTools.find("setpriv")
}()
/// curl, which plays the other user's program.
let curl = MachineTools.find("curl") ?? "/usr/bin/curl"
let attackerUID = 4343

/// Debian's chromium, headless: the real browser side of `authorize` (a page that sends the browser on only works
/// in a browser).
let chromium: String? = MachineTools.find("chromium") ?? MachineTools.find("chromium-browser")

extension OAuthBinaryTests {
    /// Another local user reads every process's command line and can connect to 127.0.0.1. They
    /// must learn nothing from the browser's argv and be unable to deliver a callback.
    @Suite struct LocalAttacker {
        /// Login CSRF (docs/security.md): another user approves the request as themselves and delivers the callback
        /// first. The listener must answer 403 to their connection and keep waiting for the user's own browser.
        @Test func aCallbackFromAnotherLocalUserIsRefused() async throws {
            guard let setpriv = requireTool(otherUserRunner, "setpriv and curl as root (to act as another user)") else {
                return
            }
            try await SandboxWorkspace.with { s in
                // A browser that does nothing: the test plays both the attacker and the user's browser.
                let child = try s.start(
                    ["authorize", "alice", "--timeout", "60"], environment: ["BROWSER": "/bin/true"])
                defer { child.signal(SIGKILL) }
                let line = try await offPool { try child.waitForStderrLine { $0.contains("/authorize?") } }
                let authorize = try #require(URL(string: line.trimmingCharacters(in: .whitespaces)))
                // The attacker approves with the same state and challenge (read from argv on the old code) …
                let (status, headers) = try await offPool { try loopbackGET(authorize) }
                #expect(status == 302)
                let forged = try #require(headers["location"])
                #expect(forged.hasPrefix(s.redirect + "?code="))
                // … and delivers the callback from their own uid.
                let attack = try await offPool {
                    try runProcess(
                        setpriv,
                        [
                            "--reuid=\(attackerUID)", "--regid=\(attackerUID)", "--clear-groups",
                            curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", forged,
                        ],
                        environment: ["PATH": "/usr/bin:/bin"])
                }
                #expect(attack.out == "403", "another user's callback was answered \(attack.out) \(attack.err)")
                _ = try await offPool {
                    try child.waitForStderrLine { $0.contains("another local user (uid \(attackerUID))") }
                }
                // The user's own browser still completes the flow with a code of its own.
                let (again, ownHeaders) = try await offPool { try loopbackGET(authorize) }
                #expect(again == 302)
                let own = try #require(ownHeaders["location"])
                let (callback, _) = try await offPool { try loopbackGET(URL(string: own)!) }
                #expect(callback == 200)
                let result = try await offPool { try child.wait(timeout: 60) }
                #expect(result.code == 0, "\(result.err)")
                #expect(
                    result.err.contains(
                        "refused a request to the callback address from another local user (uid \(attackerUID)); still waiting"
                    ))
                #expect(await s.sandbox.counters.codesRedeemed == 1)
                #expect(await s.sandbox.counters.codesIssued == 2)
            }
        }

        /// The single-use launch address on the browser's argv, fetched first by another user, gets 403: they
        /// learn neither the state nor the challenge (the Location is never sent to them).
        @Test func theLaunchAddressIsRefusedToAnotherUser() async throws {
            guard let setpriv = requireTool(otherUserRunner, "setpriv and curl as root (to act as another user)") else {
                return
            }
            try await SandboxWorkspace.with { s in
                let seen = s.ws.dir + "/argv"
                _ = try s.ws.write("argv-browser.sh", "#!/bin/sh\nprintf '%s\\n' \"$@\" > '\(seen)'\n", mode: 0o755)
                let child = try s.start(
                    ["authorize", "alice", "--timeout", "60"], environment: ["BROWSER": s.ws.dir + "/argv-browser.sh"])
                defer { child.signal(SIGKILL) }
                _ = try await offPool { try child.waitForStderrLine { $0.contains("Waiting for the callback") } }
                let launch = try await offPool { () -> String in
                    for _ in 0..<200 {
                        if let text = try? String(contentsOfFile: seen, encoding: .utf8), !text.isEmpty { return text }
                        usleep(20_000)
                    }
                    throw TestFailure("the browser stand-in never ran")
                }.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(!launch.contains("state="), "the browser's argv carries the state: \(launch)")
                #expect(!launch.contains("code_challenge"), "the browser's argv carries the PKCE challenge: \(launch)")
                let attack = try await offPool {
                    try runProcess(
                        setpriv,
                        [
                            "--reuid=\(attackerUID)", "--regid=\(attackerUID)", "--clear-groups",
                            curl, "-s", "-D", "-", "-o", "/dev/null", "--max-time", "10", launch,
                        ],
                        environment: ["PATH": "/usr/bin:/bin"])
                }
                #expect(attack.out.hasPrefix("HTTP/1.1 403"), "\(attack.out)")
                #expect(!attack.out.lowercased().contains("location:"))
                // The user's browser then follows it once.
                let (status, headers) = try await offPool { try loopbackGET(URL(string: launch)!) }
                #expect(status == 303)
                #expect(headers["location"]?.contains("state=") == true)
                child.signal(SIGKILL)
            }
        }

        /// No program tokenvault starts gets the passphrase: not the browser (environment), not the
        /// command `exec` becomes (environment, or the `--passphrase-fd` descriptor left open).
        @Test func noChildGetsThePassphrase() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                let passFile = try s.ws.write("pass", Workspace.passphrase + "\n", mode: 0o600)
                // Every source at once: fd 5, the file variable and the plain variable.
                let probe =
                    "for f in /proc/$$/fd/*; do echo \"fd ${f##*/}\"; done; env | grep -c '^TOKENVAULT_PASSPHRASE' || true"
                let shell = "exec \"$0\" exec --passphrase-fd 5 alice -- /bin/sh -c \"$1\" 5<\"$2\""
                var environment = s.ws.environment
                environment["TOKENVAULT_PASSPHRASE_FILE"] = passFile
                let env = environment
                let result = try await offPool {
                    try runProcess("/bin/sh", ["-c", shell, tokenvaultBinary, probe, passFile], environment: env)
                }
                #expect(result.code == 0, "\(result.err)")
                func descriptors(_ out: String) -> [String] {
                    out.split(separator: "\n").filter { $0.hasPrefix("fd ") }.map { String($0.dropFirst(3)) }.sorted()
                }
                // The same probe started directly: what the shell itself holds while it lists (the glob's directory).
                let baseline = try await offPool {
                    try runProcess("/bin/sh", ["-c", probe], environment: ["PATH": "/usr/bin:/bin"])
                }
                #expect(descriptors(baseline.out).contains("0"))
                #expect(
                    descriptors(result.out) == descriptors(baseline.out),
                    "descriptors the command inherited: \(descriptors(result.out))")
                #expect(!descriptors(result.out).contains("5"), "the --passphrase-fd descriptor is open in the command")
                #expect(result.out.hasSuffix("0\n"), "TOKENVAULT_PASSPHRASE* reached the command: \(result.out)")
                // The browser: its argv and environment, recorded by the stand-in.
                let browser = try s.ws.browserStandIn("follow")
                let authorize = try await s.run(
                    ["authorize", "bob", "--timeout", "30"],
                    environment: ["BROWSER": browser, "TOKENVAULT_PASSPHRASE_FILE": nil])
                #expect(authorize.code == 0, "\(authorize.err)\n\(s.ws.browserLog)")
                #expect(s.ws.browserLog.contains("follow argv clean"), "\(s.ws.browserLog)")
                #expect(
                    s.ws.browserLog.contains("follow fds [3]"), "the browser inherited descriptors: \(s.ws.browserLog)")
            }
        }

        /// Re-authorizing an account as another person warns and is audited as such (a login CSRF that got
        /// through, or a mistake, looks exactly like this).
        @Test func reauthorizingAsAnotherPersonWarnsAndIsAudited() async throws {
            try await SandboxWorkspace.with { s in
                let browser = try s.ws.browserStandIn("follow")
                #expect(
                    try await s.run(["authorize", "alice", "--timeout", "30"], environment: ["BROWSER": browser]).code
                        == 0)
                // Someone else approves next time.
                let other = SandboxConfiguration.User(
                    id: "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9vdGhlcg", email: "mallory@example.com",
                    displayName: "Mallory", orgId: s.user.orgId)
                await s.sandbox.updateConfiguration {
                    $0.users.append(other)
                    $0.currentUserId = other.id
                }
                let again = try await s.run(
                    ["authorize", "alice", "--timeout", "30"], environment: ["BROWSER": browser])
                #expect(again.code == 0, "\(again.err)")
                #expect(
                    again.err.contains(
                        "tokenvault: warning: 'alice' belonged to \(s.user.email) and now belongs to mallory@example.com, another person"
                    ), "\(again.err)")
                let last = try #require(try await s.auditEvents("alice").last)
                #expect(last["outcome"] as? String == "ok, replaced the previous pair: another person")
                #expect((last["detail"] as? String)?.contains(other.id) == true)
                // The same person again: no warning.
                let same = try await s.run(
                    ["authorize", "alice", "--timeout", "30"], environment: ["BROWSER": browser])
                #expect(same.code == 0)
                #expect(!same.err.contains("another person"))
            }
        }
    }

    /// The browser side proven with a real browser: headless Chromium follows the launch address and the
    /// provider's redirect, and opens the private `file://` page of the device grant.
    @Suite struct RealBrowser {
        func chromiumCommand(_ s: SandboxWorkspace) throws -> String {
            let profile = s.ws.dir + "/chromium-profile"
            try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
            return
                "\(chromium!) --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=\(profile) --virtual-time-budget=15000 --dump-dom %s"
        }

        /// tokenvault leaves the browser it started running (as a person's browser stays open); the headless one
        /// is waited for here (and killed after 30 s), or it would still be writing its profile while the
        /// workspace is removed and leave the directory behind.
        func endChromium(_ s: SandboxWorkspace) async {
            let profile = s.ws.dir + "/chromium-profile"
            guard let pkill = MachineTools.find("pkill"), let pgrep = MachineTools.find("pgrep") else { return }
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline,
                (try? runProcess(pgrep, ["-f", "--", "--user-data-dir=" + profile], environment: [:]))?.code == 0
            {
                try? await Task.sleep(for: .milliseconds(200))
            }
            _ = try? runProcess(pkill, ["-KILL", "-f", "--", "--user-data-dir=" + profile], environment: [:])
        }

        @Test func chromiumCompletesTheLoopbackFlow() async throws {
            guard requireTool(chromium, "Debian's chromium") != nil else { return }
            try await SandboxWorkspace.with { s in
                let result = try await s.run(
                    ["authorize", "alice", "--timeout", "60"], environment: ["BROWSER": try chromiumCommand(s)])
                #expect(result.code == 0, "\(result.err)")
                #expect(result.err.contains("Authorized 'alice' as \(s.user.email)"), "\(result.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
                await endChromium(s)
            }
        }

        @Test func chromiumOpensTheDeviceGrantPage() async throws {
            guard requireTool(chromium, "Debian's chromium") != nil else { return }
            try await SandboxWorkspace.with(clockFollowsRealTime: true, configure: { $0.devicePollInterval = 1 }) { s in
                let result = try await s.run(
                    ["authorize", "tv", "--device", "--timeout", "60"], environment: ["BROWSER": try chromiumCommand(s)]
                )
                #expect(result.code == 0, "\(result.err)")
                #expect(await s.sandbox.requests(to: "GET /v1/device/verify") == 1)
                // The private page is gone afterwards.
                let leftovers =
                    (try? FileManager.default.contentsOfDirectory(
                        atPath: s.ws.dir + "/data/tokenvault/tokenvault-browser")) ?? []
                #expect(leftovers.isEmpty, "\(leftovers)")
                await endChromium(s)
            }
        }
    }
}
