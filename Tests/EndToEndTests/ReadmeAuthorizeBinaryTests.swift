import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// README, "Authorize accounts" and "whoami": promises no other test checked. The paste error cases (wrong
    /// state, bad URL) are left to the change that makes paste ask again.
    @Suite(.enabled(if: python3 != nil || MachineSupport.isCI, "python3 plays the browser")) struct ReadmeAuthorize {
        /// `$BROWSER` is a `:`-separated list tried in order; `%s` stands for the URL (nothing appended then).
        @Test func browserListAndPercentS() async throws {
            try await SandboxWorkspace.with { s in
                let standIn = try s.ws.browserStandIn("follow")
                let argvLog = s.ws.dir + "/argv.log"
                // Records its arguments, then hands the URL (its first argument) to the stand-in.
                let wrapper = try s.ws.write(
                    "wrapper.sh",
                    """
                    #!/bin/sh
                    printf '%s\\n' "$@" > '\(argvLog)'
                    exec \(standIn) "$1"
                    """, mode: 0o755)
                let browser = "\(s.ws.dir)/no-such-browser --new-window:\(wrapper) %s --new-tab"
                // PATH without xdg-open: it reads $BROWSER itself and would hide a list tokenvault failed to split.
                let result = try await s.run(
                    ["authorize", "alice", "--timeout", "15"], environment: ["BROWSER": browser, "PATH": s.ws.dir])
                #expect(result.code == 0, "\(result.err)\nbrowser: \(s.ws.browserLog)")
                let argv = ((try? String(contentsOfFile: argvLog, encoding: .utf8)) ?? "").split(separator: "\n").map(
                    String.init)
                #expect(argv.count == 2, "\(argv)")
                #expect(argv.first?.hasPrefix("http://127.0.0.1:") == true, "%s was not replaced by the URL: \(argv)")
                #expect(argv.last == "--new-tab", "\(argv)")
                #expect(try await s.listed()["alice"]?["email"] as? String == s.user.email)
            }
        }

        /// A scope requested but left out of the grant (Webex leaves `meeting:admin_*` out of tokens of users who
        /// are not admins) is warned about, with the reason Webex has for it.
        @Test func aWithheldScopeIsWarnedAbout() async throws {
            try await SandboxWorkspace.with(configure: { c in
                c.clients[0].scopes.append("meeting:admin_schedule_read")
                c.withheldScopes = ["meeting:admin_*"]
                c.reportScopes = true
            }) { s in
                let browser = try s.ws.browserStandIn("follow")
                let result = try await s.run(
                    [
                        "authorize", "alice", "--timeout", "30",
                        "--scopes", "spark:people_read meeting:admin_schedule_read",
                    ],
                    environment: ["BROWSER": browser])
                #expect(result.code == 0, "\(result.err)")
                #expect(
                    result.err.contains("tokenvault: warning: the provider did not grant meeting:admin_schedule_read."),
                    "\(result.err)")
                #expect(
                    result.err.contains(
                        "Webex leaves meeting:admin_* scopes out of tokens of users who are not admins"),
                    "\(result.err)")
                // Everything granted: no warning.
                let full = try await s.run(
                    ["authorize", "bob", "--timeout", "30", "--scopes", "spark:people_read"],
                    environment: ["BROWSER": browser])
                #expect(full.code == 0, "\(full.err)")
                #expect(!full.err.contains("did not grant"), "\(full.err)")
            }
        }

        /// With several integrations `--integration` is needed and chooses; paste mode takes the bare code.
        @Test func integrationChoiceAndABareCodePasted() async throws {
            try await SandboxWorkspace.with { s in
                try await s.expectOK(
                    [
                        "add", "other", "--client-id", s.clientId, "--redirect-uri", s.redirect,
                        "--scopes", SandboxWorkspace.scopes.joined(separator: " "), "--api-base", s.base.absoluteString,
                        "--client-secret-stdin",
                    ], stdin: s.clientSecret)
                let ambiguous = try await s.run(["authorize", "alice", "--no-browser", "--timeout", "5"])
                #expect(ambiguous.code == 2, "\(ambiguous.err)")
                #expect(
                    ambiguous.err.contains("--integration other|webex")
                        || ambiguous.err.contains("--integration webex|other"), "\(ambiguous.err)")
                #expect(await sandboxRequests(s) == 0)

                let child = try s.start([
                    "authorize", "alice", "--integration", "other", "--no-browser", "--timeout", "30",
                ])
                let line = try await offPool { try child.waitForStderrLine { $0.contains("/authorize?") } }
                let url = try #require(URL(string: line.trimmingCharacters(in: .whitespaces)))
                let (status, headers) = try await offPool { try loopbackGET(url) }
                #expect(status == 302)
                let landing = try #require(headers["location"].flatMap { URLComponents(string: $0) })
                let code = try #require(landing.queryItems?.first { $0.name == "code" }?.value)
                _ = try await offPool { try child.waitForStderrLine { $0.contains("Paste the URL") } }
                child.writeStdin(code + "\n")
                let result = try await offPool { try child.wait(timeout: 60) }
                #expect(result.code == 0, "\(result.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
                let row = try #require(try await s.listed()["alice"])
                #expect(row["integration"] as? String == "other", "\(row)")
                s.expectNoSecrets(result.err + result.out, also: [code])
            }
        }

        /// whoami asks the provider and updates the stored identity.
        @Test func whoamiUpdatesTheStoredIdentity() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                #expect(try await s.listed()["alice"]?["email"] as? String == nil)
                let first = try await s.run(["whoami", "alice"])
                #expect(first.code == 0, "\(first.err)")
                #expect(try await s.listed()["alice"]?["email"] as? String == s.user.email)
                await s.sandbox.updateConfiguration {
                    $0.users[0].email = "pat.renamed@example.com"
                    $0.users[0].displayName = "Pat Renamed"
                }
                let second = try await s.run(["whoami", "alice", "--json"])
                #expect(second.code == 0, "\(second.err)")
                let row = try #require(try await s.listed()["alice"])
                #expect(row["email"] as? String == "pat.renamed@example.com", "\(row)")
                #expect(try await s.auditEvents("alice").count == 1, "whoami is not audited")
            }
        }
    }
}
