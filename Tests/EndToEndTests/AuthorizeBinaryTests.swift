import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// `tokenvault authorize` from the built binary: the loopback listener with a browser stand-in as `$BROWSER`,
    /// pasting the landing URL on stdin, the device grant, and the ways an authorization goes wrong.
    @Suite(
        .enabled(
            if: python3 != nil || MachineTools.isCI,
            "python3 plays the browser (under CI=true its absence fails each test)")) struct Authorize
    {
        @Test func throughTheLoopbackListenerWithABrowserStandIn() async throws {
            try await SandboxWorkspace.with { s in
                let browser = try s.ws.browserStandIn("follow")
                let result = try await s.run(
                    ["authorize", "alice", "--timeout", "30"], environment: ["BROWSER": browser])
                #expect(result.code == 0, "\(result.err)\nbrowser: \(s.ws.browserLog)")
                #expect(result.err.contains("Authorized 'alice' as \(s.user.email)"), "\(result.err)")
                #expect(result.err.contains("Waiting for the callback on \(s.redirect)"))
                #expect(result.err.contains("code_challenge_method=S256"))
                #expect(result.out.isEmpty)  // stdout is for scripts: nothing there
                #expect(s.ws.browserLog.contains("follow callback 200"), "\(s.ws.browserLog)")
                // The browser's argv carried the single-use launch address only, and no passphrase reached it.
                #expect(s.ws.browserLog.contains("follow argv clean"), "\(s.ws.browserLog)")
                #expect(s.ws.browserLog.contains("follow launch 303"), "\(s.ws.browserLog)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
                let row = try #require(try await s.listed()["alice"])
                #expect(row["email"] as? String == s.user.email)
                #expect(row["state"] as? String == "ok")
                let token = try #require(try await s.token("alice"))
                #expect(await s.sandbox.isAccessTokenValid(token))
                #expect(try await s.auditEvents("alice").map { $0["event"] as? String } == ["authorized"])
                let whoami = try await s.run(["whoami", "alice", "--json"])
                #expect(whoami.code == 0, "\(whoami.err)")
                #expect(jsonObject(whoami.out)["id"] as? String == s.user.id)
                s.expectNoSecrets(result.err + result.out, also: [token])
            }
        }

        @Test func byPastingTheLandingURLOnStdin() async throws {
            try await SandboxWorkspace.with { s in
                // A BROWSER is set but --no-browser must not start it (it would redeem nothing but issue a code).
                let browser = try s.ws.browserStandIn("follow")
                let child = try s.start(
                    ["authorize", "bob", "--no-browser", "--timeout", "30"], environment: ["BROWSER": browser])
                let line = try await offPool { try child.waitForStderrLine { $0.contains("/authorize?") } }
                let url = try #require(URL(string: line.trimmingCharacters(in: .whitespaces)))
                #expect(url.absoluteString.hasPrefix(s.base.absoluteString + "/authorize?"))
                // --no-browser: nobody listens on the redirect port.
                #expect(throws: (any Error).self) { try loopbackGET(URL(string: s.redirect)!, timeout: 2) }
                let (status, headers) = try await offPool { try loopbackGET(url) }
                #expect(status == 302)
                let landing = try #require(headers["location"])
                #expect(landing.hasPrefix(s.redirect + "?code="))
                _ = try await offPool { try child.waitForStderrLine { $0.contains("Paste the URL") } }
                child.writeStdin(landing + "\n")
                let result = try await offPool { try child.wait(timeout: 60) }
                #expect(result.code == 0, "\(result.err)")
                #expect(result.err.contains("Authorized 'bob' as \(s.user.email)"), "\(result.err)")
                let counters = await s.sandbox.counters
                #expect(counters.codesIssued == 1, "the browser was started despite --no-browser")
                #expect(counters.codesRedeemed == 1)
                let token = try #require(try await s.token("bob"))
                #expect(await s.sandbox.isAccessTokenValid(token))
                #expect(try await s.listed()["bob"]?["email"] as? String == s.user.email)
                s.expectNoSecrets(result.err + result.out, also: [token])
            }
        }

        @Test func deviceGrantApprovedByTheStandIn() async throws {
            // Real-time clock: tokenvault really waits between polls, and the sandbox must see the time pass.
            try await SandboxWorkspace.with(clockFollowsRealTime: true, configure: { $0.devicePollInterval = 1 }) { s in
                let browser = try s.ws.browserStandIn("open")
                let result = try await s.run(
                    ["authorize", "tv", "--device", "--timeout", "30"], environment: ["BROWSER": browser])
                #expect(result.code == 0, "\(result.err)\nbrowser: \(s.ws.browserLog)")
                #expect(result.err.contains("enter the code"))
                #expect(result.err.contains("Authorized 'tv' as \(s.user.email)"), "\(result.err)")
                #expect(await s.sandbox.requests(to: "GET /v1/device/verify") == 1)
                // The user code reached the browser through a private page, not its argv.
                #expect(s.ws.browserLog.contains("open argv clean"), "\(s.ws.browserLog)")
                #expect(s.ws.browserLog.contains("open page read"), "\(s.ws.browserLog)")
                #expect(await s.sandbox.requests(to: "POST /v1/device/token") >= 1)
                let token = try #require(try await s.token("tv"))
                #expect(await s.sandbox.isAccessTokenValid(token))
                #expect(try await s.auditEvents("tv").last?["trigger"] as? String == "authorize --device")
                s.expectNoSecrets(result.err + result.out, also: [token])
            }
        }

        /// A callback with another state (a stray tab, a forged link) is answered 400 and does not end the wait:
        /// the real callback that follows completes the flow (an older listener aborted on the first).
        @Test func aCallbackWithAnotherStateIsRefusedAndTheRealOneStillCompletes() async throws {
            try await SandboxWorkspace.with { s in
                let browser = try s.ws.browserStandIn("forge-state")
                let result = try await s.run(
                    ["authorize", "alice", "--timeout", "30"], environment: ["BROWSER": browser])
                #expect(result.code == 0, "\(result.err)\nbrowser: \(s.ws.browserLog)")
                #expect(s.ws.browserLog.contains("forge-state callback 400"), "\(s.ws.browserLog)")
                #expect(s.ws.browserLog.contains("forge-state real-callback 200"), "\(s.ws.browserLog)")
                #expect(
                    result.err.contains(
                        "tokenvault: warning: refused a callback that does not belong to this authorization"),
                    "\(result.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
                s.expectNoSecrets(result.err)
            }
        }

        @Test func consentDeniedIsAClearError() async throws {
            try await SandboxWorkspace.with(configure: { $0.faults.denyConsent = true }) { s in
                let browser = try s.ws.browserStandIn("follow")
                let result = try await s.run(
                    ["authorize", "alice", "--timeout", "10"], environment: ["BROWSER": browser])
                #expect(result.code == 6, "\(result.err)")
                #expect(result.err.contains("declined"), "\(result.err)")
                #expect(
                    result.err.contains(
                        "tokenvault: error: authorization was declined in the browser (The user denied the request)"),
                    "\(result.err)")
                #expect(await s.sandbox.counters.codesIssued == 0)
                #expect(try await s.listed().isEmpty)
                s.expectNoSecrets(result.err)
            }
        }

        @Test func anUnregisteredScopeIsInvalidScope() async throws {
            try await SandboxWorkspace.with { s in
                let browser = try s.ws.browserStandIn("follow")
                let result = try await s.run(
                    [
                        "authorize", "alice", "--scopes", "spark:people_read meeting:admin_schedule_write",
                        "--timeout", "10",
                    ], environment: ["BROWSER": browser])
                #expect(result.code == 6, "\(result.err)")
                #expect(
                    result.err.contains("tokenvault: error: the provider refused the requested scopes"), "\(result.err)"
                )
                #expect(result.err.contains("meeting:admin_schedule_write is not registered"), "\(result.err)")
                #expect(await s.sandbox.counters.codesIssued == 0)
                s.expectNoSecrets(result.err)
            }
        }

        @Test func aMadeUpCodeFailsAtTheExchangeAndStoresNothing() async throws {
            try await SandboxWorkspace.with { s in
                let browser = try s.ws.browserStandIn("fake-code")
                let result = try await s.run(
                    ["authorize", "alice", "--timeout", "10"], environment: ["BROWSER": browser])
                // The provider answers invalid_grant: a refused code, not a refresh token's problem; it
                // came from the browser, not from a paste, so it is the provider's answer (exit 6).
                #expect(result.code == 6, "\(result.err)\nbrowser: \(s.ws.browserLog)")
                #expect(
                    result.err.contains(
                        "tokenvault: error: the authorization code was refused by the provider (The authorization code is invalid)"
                    ), "\(result.err)")
                #expect(!result.err.contains("refresh token"), "\(result.err)")
                #expect(
                    result.err.contains("tokenvault: hint: run 'tokenvault authorize alice' again"), "\(result.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 0)
                #expect(await s.sandbox.requests(to: "POST /v1/access_token") == 1)
                #expect(try await s.listed()["alice"] == nil)
                s.expectNoSecrets(result.err, also: ["madeUpCode0000000000"])
            }
        }
    }
}
