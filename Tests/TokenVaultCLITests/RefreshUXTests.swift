import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport
import VaultOAuth

@testable import TokenVaultCLI
@testable import TokenVaultCore

// What refreshing looks like to a user: lapse warnings, an account without a refresh token, refresh-all's progress
// line, and an offline `token`/`env` with a still valid access token.

@Suite struct LapseWarningTests {
    /// Ten `token` calls at once on a provider with short lifetimes; the sandbox's clock follows the harness's.
    func tenConcurrentUses(keepsExpiry: Bool) async throws -> (SandboxHarness, [RunResult]) {
        let s = try await SandboxHarness {
            $0.rotation = .on
            $0.accessTokenLifetime = 600
            $0.refreshTokenLifetime = 1200
            $0.keepsRefreshTokenExpiry = keepsExpiry
        }
        await s.sandbox.setNow(s.h.now)
        _ = try await s.importAccount("alice", accessLifetime: 600, refreshLifetime: 1200)
        // The access token has lapsed (so the full retry policy applies, with no 2 s budget to trip on a loaded
        // machine); the refreshed token's 600 s are more than --min-valid 400 s, so one refresh serves all ten.
        s.h.now += 700
        await s.sandbox.advanceClock(by: 700)
        let results = await withTaskGroup(of: RunResult.self) { group in
            for _ in 0..<10 { group.addTask { await s.h.run(["token", "alice", "--min-valid", "400"]) } }
            var all: [RunResult] = []
            for await result in group { all.append(result) }
            return all
        }
        for result in results { #expect(result.code == 0, "\(result.err)") }
        #expect(await s.sandbox.counters.successfulRefreshes == 1)
        return (s, results)
    }

    @Test func aRotatingProviderThatRenewsTheLifetimeGetsNoWarning() async throws {
        let (s, results) = try await tenConcurrentUses(keepsExpiry: false)
        let warned = results.filter { $0.err.contains("even after refreshing") }
        #expect(warned.isEmpty, "\(warned.map(\.err))")
        let refreshed = try await s.auditEvents("alice").filter { $0["event"] as? String == "refreshed" }
        #expect(refreshed.count == 1)
        #expect(refreshed.first?["refresh_token_changed"] as? Bool == true, "\(refreshed)")
        await s.stop()
    }

    @Test func aProviderThatKeepsTheExpiryIsWarnedAboutOnceByTheProcessThatRefreshed() async throws {
        let (s, results) = try await tenConcurrentUses(keepsExpiry: true)
        let warned = results.filter {
            $0.err.contains("even after refreshing (the provider did not reset its lifetime)")
        }
        #expect(warned.count == 1, "\(results.map(\.err))")
        await s.stop()
    }

    @Test func theWarningComparesTheExpiryBeforeAndAfter() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var outcome = RefreshOutcome(account: "alice", integration: "webex", status: .refreshed)
        outcome.refreshExpiresBefore = now.addingTimeInterval(900)
        outcome.refreshExpiresAfter = now.addingTimeInterval(899)
        #expect(outcome.lapseWarning(now: now) != nil)
        outcome.refreshExpiresAfter = now.addingTimeInterval(1200)  // renewed, if short
        #expect(outcome.lapseWarning(now: now) == nil)
        outcome.refreshExpiresAfter = now.addingTimeInterval(899)
        outcome.status = .alreadyFresh  // another process refreshed it and warned
        #expect(outcome.lapseWarning(now: now) == nil)
    }
}

@Suite struct NoRefreshStateTests {
    @Test func anAccountWithoutARefreshTokenIsNoRefreshAndRefreshAllSkipsItUntilItLapses() async throws {
        let s = try await SandboxHarness()
        _ = try await s.importAccounts(["alice"])
        _ = try await s.importAccount("bob", accessLifetime: 1_209_599, refreshLifetime: nil, withRefreshToken: false)
        #expect(try await s.listState("bob") == "no-refresh")
        #expect(try await s.listState("alice") == "ok")
        let table = await s.h.run(["list"])
        #expect(
            table.out.split(separator: "\n").first { $0.hasPrefix("bob") }?.hasSuffix("no-refresh") == true,
            "\(table.out)")

        let run = await s.h.run(["refresh-all", "--skip-recent", "0", "--json"])
        #expect(run.code == 0, "\(run.err)")
        let lines = run.err.split(separator: "\n").filter { $0.contains("'bob'") || $0.contains("bob:") }
        #expect(lines.count == 1 && lines[0].contains("no refresh token"), "\(run.err)")
        let report = try JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [String: Any] ?? [:]
        #expect(report["refreshed"] as? Int == 1)
        #expect(report["needs_reauth"] as? Int == 0)
        #expect(report["skipped"] as? Int == 1)
        let bob = (report["accounts"] as? [[String: Any]])?.first { $0["account"] as? String == "bob" }
        #expect(bob?["status"] as? String == "no-refresh")

        // Once its access token has lapsed, it needs a browser like any other, and the nightly run says so.
        s.h.now += 15 * 86_400
        #expect(try await s.listState("bob") == "needs-reauth")
        let later = await s.h.run(["refresh-all", "--skip-recent", "0"])
        #expect(later.code == 5, "\(later.err)")
        #expect(later.err.contains("tokenvault: bob: needs re-authorization"), "\(later.err)")
        await s.stop()
    }
}

@Suite struct ProgressLineTests {
    @Test func theLineCountsLikeTheSummaryAndShowsAWaitInsteadOfARate() {
        let counts = RefreshProgress.Counts(refreshed: 3, fresh: 0, needsReauth: 3, failed: 0)
        #expect(
            RefreshProgress.line(counts, total: 10, rate: 140, waiting: nil)
                == "refresh-all: 6/10 done: 3 refreshed, 0 fresh, 3 need re-authorization, 0 failed, 140.0/s")
        #expect(
            RefreshProgress.line(counts, total: 10, rate: 140, waiting: RetryWait(seconds: 2, retryAfter: true))
                == "refresh-all: 6/10 done: 3 refreshed, 0 fresh, 3 need re-authorization, 0 failed, waiting 2s (Retry-After)"
        )
        #expect(
            RefreshProgress.line(counts, total: 10, rate: 140, waiting: RetryWait(seconds: 0.3, retryAfter: false))
                .hasSuffix("waiting 1s (backoff)"))
    }

    @Test func refreshAllOnATerminalDrawsTheSameCountsAsTheSummaryAndTheRetryAfterWait() async throws {
        let s = try await SandboxHarness {
            $0.faults.tooManyRequestsEvery = 2
            $0.faults.retryAfterSeconds = 2
        }
        _ = try await s.importAccounts(["alice", "bob", "carol"])
        // An account the provider refuses: needs re-authorization, which is not a failure.
        try await s.h.expectOK(
            ["import", "dave", "--integration", "webex"],
            stdin: tokenJSON(access: "AT_" + randomToken(), refresh: "RT_" + randomToken()))
        let console = CapturingConsole(stderrIsTerminal: true)
        let code = await s.h.run(["refresh-all", "--skip-recent", "0", "--concurrency", "1"], console: console)
        let err = console.errors
        #expect(code == 5, "\(err)")
        #expect(err.contains("waiting 2s (Retry-After)"), "\(err)")
        let frames = err.components(separatedBy: "\r\u{1B}[K").dropFirst()
        let last = frames.last?.split(separator: "\n").first.map(String.init) ?? ""
        #expect(
            last.hasPrefix("refresh-all: 4/4 done: 3 refreshed, 0 fresh, 1 need re-authorization, 0 failed, "), "\(err)"
        )
        #expect(err.contains("refresh-all: 3 refreshed, 0 already fresh, 1 need re-authorization, 0 failed"), "\(err)")
        await s.stop()
    }
}

@Suite struct OfflineWithAValidTokenTests {
    /// A vault whose integration points at `apiBase`, with an account whose access token is valid for 14 days.
    func vault(apiBase: String) async throws -> (Harness, String) {
        let h = Harness()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "add", "webex1", "--client-id", "Cabc", "--redirect-uri", "http://localhost:8765/callback",
                "--scopes", "spark:people_read", "--client-secret-stdin", "--api-base", apiBase,
            ],
            stdin: "client-secret-" + randomToken())
        let access = "AT_" + randomToken()
        try await h.expectOK(
            ["import", "alice", "--integration", "webex1"],
            stdin: tokenJSON(access: access, refresh: "RT_" + randomToken()))
        return (h, access)
    }

    func expectStoredTokenHandedOut(
        _ result: RunResult, _ access: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(result.code == 0, "\(result.err)", sourceLocation: sourceLocation)
        #expect(result.out.contains(access), sourceLocation: sourceLocation)
        #expect(
            result.err.contains("tokenvault: warning: could not refresh 'alice'"), "\(result.err)",
            sourceLocation: sourceLocation)
        #expect(result.err.contains("using the current token"), sourceLocation: sourceLocation)
    }

    @Test func aProviderThatIsDownIsGivenUpOnAtOnce() async throws {
        let (h, access) = try await vault(apiBase: "http://127.0.0.1:\(freePort())/v1")
        // --min-valid above the token's 14 days: due, but still valid.
        let token = await h.run(["token", "alice", "--min-valid", "15d"])
        expectStoredTokenHandedOut(token, access)
        #expect(h.sleeps.recorded.count <= 1, "\(h.sleeps.recorded)")
        let env = await h.run(["env", "alice", "--min-valid", "15d"])
        expectStoredTokenHandedOut(env, access)
    }

    @Test(.timeLimit(.minutes(3))) func aProviderThatStallsIsGivenAboutTwoSeconds() async throws {
        let stalled = StalledListener()
        let (h, access) = try await vault(apiBase: "http://127.0.0.1:\(stalled.port)/v1")
        h.refreshOnUseBudget = 2
        let started = ContinuousClock.now
        let token = await h.run(["token", "alice", "--min-valid", "15d"])
        let elapsed = ContinuousClock.now - started
        expectStoredTokenHandedOut(token, access)
        #expect(token.err.contains("did not answer in time"), "\(token.err)")
        // About 2 s; loosely, for a loaded machine (the old code waited out 8 attempts of 60 s here).
        #expect(elapsed < .seconds(100), "\(elapsed)")
        withExtendedLifetime(stalled) {}
    }

    @Test func aProviderAnswering503Or429IsTriedAtMostTwice() async throws {
        let s = try await SandboxHarness { $0.faults.serviceUnavailableEvery = 1 }
        let pairs = try await s.importAccounts(["alice"])
        let token = await s.h.run(["token", "alice", "--min-valid", "15d"])
        #expect(token.code == 0, "\(token.err)")
        #expect(token.out == pairs["alice"]!.access + "\n")
        #expect(token.err.contains("could not refresh 'alice'"), "\(token.err)")
        #expect(await s.sandbox.requests(to: "POST /v1/access_token") <= 2)

        // A Retry-After beyond the budget is not waited for.
        await s.sandbox.updateConfiguration {
            $0.faults.serviceUnavailableEvery = nil
            $0.faults.tooManyRequestsEvery = 1
            $0.faults.retryAfterSeconds = 30
        }
        let before = await s.sandbox.requests(to: "POST /v1/access_token")
        let throttled = await s.h.run(["whoami", "alice", "--min-valid", "15d"])
        #expect(throttled.code == 0, "\(throttled.err)")
        #expect(throttled.err.contains("could not refresh 'alice'"), "\(throttled.err)")
        #expect(await s.sandbox.requests(to: "POST /v1/access_token") - before == 1)
        #expect(!s.h.sleeps.recorded.contains { $0 >= 30 }, "\(s.h.sleeps.recorded)")

        // An expired token is worth the whole policy (eight attempts) before failing.
        await s.sandbox.updateConfiguration {
            $0.faults.tooManyRequestsEvery = nil
            $0.faults.serviceUnavailableEvery = 1
        }
        s.h.now += 15 * 86_400
        let start = await s.sandbox.requests(to: "POST /v1/access_token")
        let expired = await s.h.run(["token", "alice"])
        #expect(expired.code == 6, "\(expired.err)")
        #expect(await s.sandbox.requests(to: "POST /v1/access_token") - start == 8)
        await s.stop()
    }
}

/// The 2 s limit must not cost a pair: a request cut off after a strictly rotating provider processed it loses
/// the new refresh token and kills the old one. An integration seen rotating is given the transport's timeout.
@Suite struct RotatingProviderKeepsItsAnswerTests {
    @Test func aSlowAnswerFromARotatingProviderIsStoredNotDropped() async throws {
        let s = try await SandboxHarness { $0.rotation = .on }
        s.h.refreshOnUseBudget = 2
        let pairs = try await s.importAccounts(["alice", "bob"])
        // One refresh teaches the vault that this integration rotates.
        try await s.h.expectOK(["refresh", "bob"])
        #expect(try await s.auditEvents("bob").last?["refresh_token_changed"] as? Bool == true)
        // Now the provider answers after 3 s: past the limit, but the answer is kept.
        await s.sandbox.updateConfiguration { $0.latency = 3 }
        let token = await s.h.run(["token", "alice", "--min-valid", "15d"])
        #expect(token.code == 0, "\(token.err)")
        #expect(!token.err.contains("could not refresh"), "\(token.err)")
        #expect(token.out != pairs["alice"]!.access + "\n")
        #expect(await s.sandbox.isAccessTokenValid(token.out.trimmingCharacters(in: .newlines)))
        // And the stored refresh token is the new one: the next refresh works.
        await s.sandbox.updateConfiguration { $0.latency = 0 }
        try await s.h.expectOK(["refresh", "alice"])
        await s.stop()
    }

    @Test func aSlowAnswerFromANonRotatingProviderIsGivenUpOn() async throws {
        let s = try await SandboxHarness { $0.rotation = .off }
        s.h.refreshOnUseBudget = 2
        let pairs = try await s.importAccounts(["alice", "bob"])
        try await s.h.expectOK(["refresh", "bob"])
        await s.sandbox.updateConfiguration { $0.latency = 3 }
        let token = await s.h.run(["token", "alice", "--min-valid", "15d"])
        #expect(token.code == 0, "\(token.err)")
        #expect(token.err.contains("could not refresh 'alice'"), "\(token.err)")
        #expect(token.out == pairs["alice"]!.access + "\n")
        await s.stop()
    }
}
