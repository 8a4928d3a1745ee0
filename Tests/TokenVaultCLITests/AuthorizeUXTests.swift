import Foundation
import ProviderSandbox
import Testing
import TokenVaultTestSupport
import VaultOAuth

@testable import TokenVaultCLI
@testable import TokenVaultCore

// `whoami` on a token the provider rejects, a 429 during the code exchange retried within the code's lifetime, and
// the default integration when there is only one.

@Suite struct WhoamiRejectionTests {
    @Test func a401RefreshesOnceAndAsksAgain() async throws {
        let s = try await SandboxHarness()
        // An access token the provider does not know, with a good refresh token; its expiry looks fine.
        let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: SandboxConfiguration.User.sample.id)
        try await s.h.expectOK(
            ["import", "alice", "--integration", "webex"],
            stdin: tokenJSON(access: "AT_" + randomToken(), refresh: pair.refreshToken))
        let result = await s.h.run(["whoami", "alice", "--json"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.out.contains(SandboxConfiguration.User.sample.id))
        #expect(await s.sandbox.uses(ofRefreshToken: pair.refreshToken) == 1)
        let events = try await s.auditEvents("alice")
        #expect(
            events.last?["event"] as? String == "refreshed" && events.last?["trigger"] as? String == "whoami",
            "\(events)")
        #expect(try await s.listState("alice") == "ok")
        await s.stop()
    }

    @Test func a401AfterTheRefreshMarksTheAccountAndSaysWhatToDo() async throws {
        let s = try await SandboxHarness()
        _ = try await s.importAccounts(["alice"])
        // The provider refuses every access token it is shown on people/me (revoked behind our back).
        let sandbox = s.sandbox
        let console = CapturingConsole()
        let code = await s.h.run(["whoami", "alice"], console: console) { request in
            if request.url.path.hasSuffix("/people/me"),
                let bearer = request.header("Authorization")?.split(separator: " ").last
            {
                try? await sandbox.expireAccessToken(String(bearer))
            }
        }
        #expect(code == 5, "\(console.errors)")
        #expect(
            console.errors.contains("tokenvault: error: account 'alice' needs re-authorization"), "\(console.errors)")
        #expect(console.errors.contains("tokenvault: hint: run 'tokenvault authorize alice'"))
        #expect(await s.sandbox.counters.successfulRefreshes == 1)
        #expect(try await s.listState("alice") == "needs-reauth")
        let events = try await s.auditEvents("alice")
        #expect(events.map { $0["event"] as? String }.suffix(2) == ["refreshed", "access-token-rejected"], "\(events)")
        await s.stop()
    }

    @Test func a401WithNoRefreshTokenMarksTheAccountAtOnce() async throws {
        let s = try await SandboxHarness()
        try await s.h.expectOK(
            ["import", "bob", "--integration", "webex"], stdin: tokenJSON(access: "AT_" + randomToken(), refresh: nil))
        let result = await s.h.run(["whoami", "bob"])
        #expect(result.code == 5, "\(result.err)")
        #expect(result.err.contains("tokenvault: hint: run 'tokenvault authorize bob'"), "\(result.err)")
        #expect(try await s.listState("bob") == "needs-reauth")
        #expect(try await s.auditEvents("bob").last?["event"] as? String == "access-token-rejected")
        await s.stop()
    }
}

@Suite struct CodeExchangeRetryTests {
    @Test func a429OnTheCodeExchangeIsRetriedAfterRetryAfter() async throws {
        let s = try await SandboxHarness {
            $0.faults.tooManyRequestsEvery = 2
            $0.faults.retryAfterSeconds = 3
        }
        // One token request first, so that the exchange is the second (throttled) one and its retry the third.
        _ = try await CurlTransport(version: "test").send(
            HTTPRequest(
                method: "POST", url: s.base.appendingPathComponent("access_token"), body: Data("grant_type=none".utf8)))
        s.h.browser = browserStandIn()
        let result = await s.h.run(["authorize", "alice"])
        #expect(result.code == 0, "\(result.err)")
        #expect(await s.sandbox.counters.tooManyRequestsAnswered == 1)
        #expect(await s.sandbox.counters.codesRedeemed == 1)
        #expect(s.h.sleeps.recorded.contains { $0 >= 3 }, "\(s.h.sleeps.recorded)")
        await s.stop()
    }

    @Test func aRefusedCodeIsNotRetried() async throws {
        let s = try await SandboxHarness()
        // Pasted once; the paste prompt then meets end of input (a refused paste is asked again, not retried).
        let pasted = ResultBox()
        s.h.paste = { _ in
            if pasted.value != nil { return nil }
            pasted.value = "done"
            return "made-up-code"
        }
        let result = await s.h.run(["authorize", "alice", "--no-browser"])
        #expect(result.code != 0)
        #expect(await s.sandbox.requests(to: "POST /v1/access_token") == 1)
        #expect(s.h.sleeps.recorded.isEmpty)
        await s.stop()
    }

    @Test func theRetriesStayWithinTheCodesLifetime() async throws {
        let sleeps = SleepRecorder()
        let attempts = Counter()
        await #expect(throws: OAuthError.self) {
            try await CodeExchange.run(sleep: { await sleeps.sleep($0) }) {
                attempts.increment()
                throw OAuthError.rateLimited(retryAfter: 25, trackingId: nil)
            }
        }
        // 25 + 25 = 50 s; a third wait would pass the 60 s budget.
        #expect(attempts.value == 3)
        #expect(sleeps.recorded == [25, 25])
        await #expect(throws: OAuthError.self) {
            try await CodeExchange.run(sleep: { await sleeps.sleep($0) }) {
                attempts.increment()
                throw OAuthError.oauth(code: "invalid_grant", description: nil, status: 400, trackingId: nil)
            }
        }
        #expect(attempts.value == 4)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

@Suite struct DefaultIntegrationTests {
    @Test func importAndAuthorizeUseTheOnlyIntegration() async throws {
        let s = try await SandboxHarness()
        let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: SandboxConfiguration.User.sample.id)
        let imported = await s.h.run(
            ["import", "alice"], stdin: tokenJSON(access: pair.accessToken, refresh: pair.refreshToken))
        #expect(imported.code == 0, "\(imported.err)")
        let batch = await s.h.run(
            ["import", "--batch"], stdin: #"{"account": "bob", "access_token": "AT_x", "expires_in": 3600}"#)
        #expect(batch.code == 0, "\(batch.err)")
        s.h.browser = browserStandIn()
        let authorized = await s.h.run(["authorize", "carol"])
        #expect(authorized.code == 0, "\(authorized.err)")
        await s.stop()
    }

    @Test func withNoneOrSeveralTheErrorNamesThem() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        let none = await h.run(["import", "alice"], stdin: tokenJSON(access: "AT_x", refresh: nil))
        #expect(none.code == 2)
        #expect(none.err.contains("tokenvault: error: no integration is registered"), "\(none.err)")
        #expect(
            none.err.contains("tokenvault: hint: register one with 'tokenvault integration add NAME"), "\(none.err)")
        for name in ["zeta", "alpha"] {
            try await h.expectOK(
                [
                    "add", name, "--client-id", "C" + name, "--redirect-uri", "http://localhost:8765/callback",
                    "--scopes", "spark:people_read", "--client-secret-stdin",
                ], stdin: "secret")
        }
        for arguments in [["import", "alice"], ["authorize", "alice"]] {
            let several = await h.run(arguments, stdin: tokenJSON(access: "AT_x", refresh: nil))
            #expect(several.code == 2, "\(arguments)")
            #expect(
                several.err.contains(
                    "tokenvault: error: several integrations are registered (alpha, zeta); say which one"),
                "\(several.err)")
            #expect(several.err.contains("tokenvault: hint: pass --integration alpha|zeta"), "\(several.err)")
        }
    }
}
