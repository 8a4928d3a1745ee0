import Foundation
import GRDB
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport
import VaultOAuth

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// The browser: follows the authorize redirect once (optionally rewriting it), as a user's browser would.
func fetchRedirect(_ url: URL) async throws -> String? {
    let response = try await CurlTransport(version: "browser").send(HTTPRequest(method: "GET", url: url))
    return response.header("Location")
}

/// Follows what tokenvault hands the browser: its single-use launch address (303 to the authorize URL), the
/// provider's redirect to the callback (rewritten by `rewrite`), and the callback.
func browserStandIn(rewrite: @escaping @Sendable (String) -> String = { $0 }) -> @Sendable (URL) -> Bool {
    { url in
        Task.detached {
            var next: URL? = url
            for hop in 0..<3 {
                guard let target = next else { return }
                let response = try? await CurlTransport(version: "browser").send(
                    HTTPRequest(method: "GET", url: target))
                guard let location = response?.header("Location") else { return }
                next = URL(string: hop == 0 && response?.status == 303 ? location : rewrite(location))
            }
        }
        return true
    }
}

/// A vault wired to an in-process provider-sandbox over real loopback HTTP.
final class SandboxHarness: @unchecked Sendable {
    let h = Harness()
    let sandbox: ProviderSandbox
    let base: URL
    let clientId = "C" + randomToken(20)
    let clientSecret = "secret-" + randomToken()
    let redirect: String
    static let scopes = ["spark:people_read", "spark:kms", "identity:tokens_write"]

    init(configure: (inout SandboxConfiguration) -> Void = { _ in }, scopes: [String] = SandboxHarness.scopes)
        async throws
    {
        redirect = "http://127.0.0.1:\(freePort())/callback"
        var configuration = SandboxConfiguration(clients: [
            .init(
                clientId: clientId, clientSecret: clientSecret, redirectURIs: [redirect], scopes: SandboxHarness.scopes)
        ])
        configure(&configuration)
        sandbox = ProviderSandbox(configuration: configuration)
        base = try await sandbox.start()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "add", "webex", "--client-id", clientId, "--redirect-uri", redirect, "--scopes",
                scopes.joined(separator: " "),
                "--api-base", base.absoluteString, "--client-secret-stdin",
            ], stdin: clientSecret)
    }

    func stop() async { await sandbox.stop() }

    /// Accounts holding pairs the sandbox issued, imported straight into the vault.
    func importAccounts(_ names: [String], scopes: [String]? = nil) async throws -> [String: (
        access: String, refresh: String
    )] {
        var pairs: [String: (String, String)] = [:]
        var lines: [String] = []
        for name in names {
            let pair = try await sandbox.issueTokenPair(
                clientId: clientId, userId: SandboxConfiguration.User.sample.id, scopes: scopes)
            pairs[name] = pair
            var object =
                try JSONSerialization.jsonObject(
                    with: Data(tokenJSON(access: pair.accessToken, refresh: pair.refreshToken).utf8)) as! [String: Any]
            object["account"] = name
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
        }
        try await h.expectOK(["import", "--batch", "--integration", "webex"], stdin: lines.joined(separator: "\n"))
        return pairs
    }

    func auditEvents(_ account: String) async throws -> [[String: Any]] {
        let result = await h.run(["audit", account, "--json"])
        return try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [[String: Any]] ?? []
    }

    func listState(_ account: String) async throws -> String? {
        let result = await h.run(["list", "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [[String: Any]] ?? []
        return rows.first { $0["account"] as? String == account }?["state"] as? String
    }
}

@Suite struct AuthorizeTests {
    @Test func authorizeThroughTheLoopbackListener() async throws {
        let s = try await SandboxHarness()
        s.h.browser = browserStandIn()
        let result = await s.h.run(["authorize", "alice"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.err.contains("Authorized 'alice' as \(SandboxConfiguration.User.sample.email)"))
        #expect(result.err.contains("code_challenge_method=S256"))
        #expect(await s.sandbox.counters.codesRedeemed == 1)
        let list = await s.h.run(["list", "--json"])
        #expect(list.out.contains(SandboxConfiguration.User.sample.email))
        let token = await s.h.run(["token", "alice"])
        #expect(await s.sandbox.isAccessTokenValid(token.out.trimmingCharacters(in: .newlines)))
        let events = try await s.auditEvents("alice")
        #expect(events.map { $0["event"] as? String } == ["authorized"])
        let whoami = await s.h.run(["whoami", "alice", "--json"])
        #expect(whoami.code == 0, "\(whoami.err)")
        #expect(whoami.out.contains(SandboxConfiguration.User.sample.id))
        // Re-authorizing replaces the pair, audited.
        let again = await s.h.run(["authorize", "alice"])
        #expect(again.code == 0, "\(again.err)")
        #expect(
            try await s.auditEvents("alice").compactMap { $0["outcome"] as? String }.last
                == "ok, replaced the previous pair")
        await s.stop()
    }

    @Test func authorizeByPastingTheURL() async throws {
        let s = try await SandboxHarness()
        s.h.paste = { console in
            // The URL tokenvault printed, opened by "the user"; the landing URL is pasted back.
            guard let line = console.split(separator: "\n").first(where: { $0.contains("/authorize?") }),
                let url = URL(string: line.trimmingCharacters(in: .whitespaces))
            else { return nil }
            let box = ResultBox()
            let done = DispatchSemaphore(value: 0)
            Task.detached {
                box.value = try? await fetchRedirect(url)
                done.signal()
            }
            done.wait()
            return box.value
        }
        let result = await s.h.run(["authorize", "bob", "--no-browser"])
        #expect(result.code == 0, "\(result.err)")
        #expect(await s.sandbox.counters.codesRedeemed == 1)
        // The pasted URL's code became bob's stored pair: its token works at the provider, and it is audited.
        let token = await s.h.run(["token", "bob"])
        #expect(token.code == 0, "\(token.err)")
        #expect(await s.sandbox.isAccessTokenValid(token.out.trimmingCharacters(in: .newlines)))
        #expect(try await s.auditEvents("bob").map { $0["event"] as? String } == ["authorized"])
        await s.stop()
    }

    @Test func aWrongStateIsRefusedAndTheWaitGoesOn() async throws {
        let s = try await SandboxHarness()
        // The "browser" first delivers the callback with a forged state, then the real one: the first is answered
        // 400 and must not end the wait (no timing: the real callback is sent only after the 400 came back).
        let forgedStatus = ResultBox()
        s.h.browser = { url in
            Task.detached {
                let browser = CurlTransport(version: "browser")
                guard let launch = try? await browser.send(HTTPRequest(method: "GET", url: url)),
                    let authorize = launch.header("Location").flatMap(URL.init(string:)),
                    let provider = try? await browser.send(HTTPRequest(method: "GET", url: authorize)),
                    let callback = provider.header("Location"),
                    let forged = URL(string: callback.replacingOccurrences(of: "state=", with: "state=forged"))
                else { return }
                let refused = try? await browser.send(HTTPRequest(method: "GET", url: forged))
                forgedStatus.value = refused.map { String($0.status) }
                _ = try? await browser.send(HTTPRequest(method: "GET", url: URL(string: callback)!))
            }
            return true
        }
        let result = await s.h.run(["authorize", "alice", "--timeout", "60"])
        #expect(result.code == 0, "\(result.err)")
        #expect(forgedStatus.value == "400")
        #expect(result.err.contains("refused a callback that does not belong to this authorization"), "\(result.err)")
        #expect(await s.sandbox.counters.codesRedeemed == 1)
        await s.stop()
    }

    @Test func consentDeniedAndInvalidScope() async throws {
        let s = try await SandboxHarness { $0.faults.denyConsent = true }
        s.h.browser = browserStandIn()
        let denied = await s.h.run(["authorize", "alice", "--timeout", "60"])
        #expect(denied.code == 6)
        #expect(denied.err.contains("declined"))
        await s.sandbox.updateConfiguration { $0.faults.denyConsent = false }
        let scope = await s.h.run([
            "authorize", "alice", "--scopes", "spark:people_read meeting:admin_schedule_write", "--timeout", "60",
        ])
        #expect(scope.code == 6)
        #expect(scope.err.contains("scopes"))
        await s.stop()
    }

    @Test func callbackTimeoutAndPortInUse() async throws {
        let s = try await SandboxHarness()
        s.h.browser = { _ in true }  // a browser that never comes back
        let timeout = await s.h.run(["authorize", "alice", "--timeout", "0.3"])
        #expect(timeout.code == 6)
        #expect(timeout.err.contains("no authorization callback arrived"))
        // Something else holds the redirect port.
        let port = UInt16(URL(string: s.redirect)!.port!)
        let blocker = LoopbackListener(host: "127.0.0.1", port: port)
        try blocker.bind()
        defer { blocker.close() }
        let busy = await s.h.run(["authorize", "alice", "--timeout", "5"])
        #expect(busy.code == 1)
        #expect(busy.err.contains("already in use"))
        await s.stop()
    }

    @Test func deviceGrant() async throws {
        let s = try await SandboxHarness()
        let sandbox = s.sandbox
        s.h.sleeps.onSleep = { seconds in await sandbox.advanceClock(by: seconds) }
        // The "phone": opens the verification URL, which approves.
        // The browser is given a private file:// page that sends it on; the complete URI (with the user code)
        // is never on its command line.
        let seen = ResultBox()
        s.h.browser = { url in
            seen.value = url.absoluteString
            guard let target = pageTarget(url) else { return false }
            Task.detached {
                _ = try? await CurlTransport(version: "phone").send(HTTPRequest(method: "GET", url: target))
            }
            return true
        }
        let result = await s.h.run(["authorize", "tv", "--device"])
        let opened = try #require(seen.value)
        #expect(opened.hasPrefix("file://"))
        #expect(!opened.contains("userCode"))
        // The page is gone once the flow ended.
        #expect(!FileManager.default.fileExists(atPath: URL(string: opened)!.path))
        #expect(result.code == 0, "\(result.err)")
        #expect(result.err.contains("enter the code"))
        #expect(await s.h.run(["token", "tv"]).code == 0)
        await s.stop()
    }
}

final class ResultBox: @unchecked Sendable { var value: String? }

/// Where a private browser page sends the browser (its meta refresh), read as a browser would.
func pageTarget(_ url: URL) -> URL? {
    guard url.isFileURL, let page = try? String(contentsOfFile: url.path, encoding: .utf8),
        let start = page.range(of: "content=\"0;url=")?.upperBound,
        let end = page[start...].firstIndex(of: "\"")
    else { return nil }
    let raw = String(page[start..<end]).replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(
        of: "&#39;", with: "'"
    )
    .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(
        of: "&amp;", with: "&")
    return URL(string: raw)
}

@Suite struct RefreshTests {
    @Test func refreshResetsLifetimesAndAuditsThem() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["alice"])
        s.h.now = s.h.now.addingTimeInterval(86_400 * 10)
        let result = await s.h.run(["refresh", "alice"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.err.contains("(same refresh token)"))
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["alice"]!.refresh) == 1)
        let events = try await s.auditEvents("alice")
        let refreshed = try #require(events.last)
        #expect(refreshed["event"] as? String == "refreshed")
        #expect(refreshed["trigger"] as? String == "refresh")
        #expect(refreshed["refresh_token_changed"] as? Bool == false)
        #expect(refreshed["access_expires_after"] as? String == Format.timestamp(s.h.now.addingTimeInterval(1_209_599)))
        #expect(
            refreshed["refresh_expires_after"] as? String == Format.timestamp(s.h.now.addingTimeInterval(7_776_000)))
        #expect(refreshed["access_expires_before"] as? String != refreshed["access_expires_after"] as? String)
        #expect(await s.h.run(["audit", "--verify"]).code == 0)
        await s.stop()
    }

    @Test func refreshAllWithRateLimitsAndOutagesEndsWithEveryAccountRefreshed() async throws {
        // Retry-After 31 s: above RetryPolicy's 30 s backoff cap, so a wait of exactly 31 s can only follow a 429.
        let s = try await SandboxHarness {
            $0.faults = .init(tooManyRequestsEvery: 7, retryAfterSeconds: 31, serviceUnavailableEvery: 11)
        }
        let names = (0..<60).map { "user\($0)" }
        let pairs = try await s.importAccounts(names)
        s.h.now = s.h.now.addingTimeInterval(3600)
        let result = await s.h.run(["refresh-all", "--json", "--concurrency", "8"])
        #expect(result.code == 0, "\(result.err)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(report["refreshed"] as? Int == 60)
        #expect(report["failed"] as? Int == 0)
        for (name, pair) in pairs { #expect(await s.sandbox.uses(ofRefreshToken: pair.refresh) == 1, "\(name)") }
        let counters = await s.sandbox.counters
        #expect(counters.tooManyRequestsAnswered > 0)
        #expect(counters.serviceUnavailableAnswered > 0)
        // Every 429 was followed by exactly one wait of its Retry-After, and no other wait was that long (503
        // backoff is capped at 30 s).
        #expect(s.h.sleeps.recorded.filter { $0 == 31 }.count == counters.tooManyRequestsAnswered)
        #expect(s.h.sleeps.recorded.filter { $0 > 30 }.count == counters.tooManyRequestsAnswered)
        #expect(result.err.contains("refresh-all: 60 refreshed"))
        await s.stop()
    }

    @Test func invalidGrantMarksNeedsReauthAndTheRunGoesOn() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["a", "b", "c"])
        try await s.sandbox.revokeRefreshToken(pairs["b"]!.refresh)
        s.h.now = s.h.now.addingTimeInterval(3600)
        let result = await s.h.run(["refresh-all"])
        #expect(result.code == 5, "\(result.err)")
        #expect(result.err.contains("b: needs re-authorization"))
        #expect(try await s.listState("b") == "needs-reauth")
        #expect(try await s.listState("a") == "ok")
        #expect(try await s.auditEvents("b").last?["event"] as? String == "refresh-failed")
        // Not retried: one attempt, and a later run does not send it again.
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["b"]!.refresh) == 1)
        s.h.now = s.h.now.addingTimeInterval(3600)
        let again = await s.h.run(["refresh-all", "--skip-recent", "0"])
        #expect(again.code == 5)
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["b"]!.refresh) == 1)
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["a"]!.refresh) == 2)
        let env = await s.h.run(["env", "b", "--min-valid", "30d"])
        #expect(env.code == 0)  // the access token itself is still valid: handed out with a warning
        #expect(env.err.contains("authorize b"))
        await s.stop()
    }

    @Test func rotationStoresTheNewRefreshTokenAtOnce() async throws {
        let s = try await SandboxHarness { $0.rotation = .on }
        let pairs = try await s.importAccounts(["alice"])
        s.h.now = s.h.now.addingTimeInterval(3600)
        let first = await s.h.run(["refresh", "alice"])
        #expect(first.code == 0, "\(first.err)")
        #expect(first.err.contains("(new refresh token)"))
        #expect(await s.sandbox.isRefreshTokenValid(pairs["alice"]!.refresh) == false)
        let second = await s.h.run(["refresh", "alice"])
        #expect(second.code == 0, "\(second.err)")
        #expect(await s.sandbox.counters.rotatedRefreshTokenReuses == 0)
        #expect(try await s.auditEvents("alice").last?["refresh_token_changed"] as? Bool == true)
        await s.stop()
    }

    @Test func twoConcurrentRunsSendEachRefreshTokenOnce() async throws {
        let s = try await SandboxHarness { $0.latency = 0.01 }
        let pairs = try await s.importAccounts((0..<40).map { "u\($0)" })
        s.h.now = s.h.now.addingTimeInterval(3600)
        async let one = s.h.run(["refresh-all", "--concurrency", "4"])
        async let two = s.h.run(["refresh-all", "--concurrency", "4"])
        let (a, b) = await (one, two)
        #expect(a.code == 0, "\(a.err)")
        #expect(b.code == 0, "\(b.err)")
        for (name, pair) in pairs { #expect(await s.sandbox.uses(ofRefreshToken: pair.refresh) == 1, "\(name)") }
        #expect(await s.h.run(["audit", "--verify"]).code == 0)
        await s.stop()
    }

    @Test func badProviderAnswersLeaveThePairUnchanged() async throws {
        let s = try await SandboxHarness { $0.faults.htmlGarbage = true }
        let pairs = try await s.importAccounts(["alice"])
        let before = await s.h.run(["token", "alice"]).out
        s.h.now = s.h.now.addingTimeInterval(3600)
        let result = await s.h.run(["refresh", "alice"])
        #expect(result.code == 6)
        #expect(result.err.contains("HTML"))
        #expect(await s.h.run(["token", "alice"]).out == before)
        #expect(before == pairs["alice"]!.access + "\n")
        #expect(try await s.auditEvents("alice").last?["event"] as? String == "refresh-failed")
        await s.stop()
    }

    @Test func unreachableProviderIsExit6() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "add", "w", "--client-id", "C", "--redirect-uri", "http://127.0.0.1:9/cb", "--scopes", "spark:all",
                "--api-base", "http://127.0.0.1:\(freePort())/v1", "--client-secret-stdin",
            ], stdin: "s")
        try await h.expectOK(
            ["import", "a", "--integration", "w"], stdin: tokenJSON(access: "acc", refresh: "ref", expiresIn: 60))
        let result = await h.run(["env", "a"])
        #expect(result.code == 0)  // still valid for 60 s: handed out with a warning
        #expect(result.err.contains("could not refresh"))
        h.now = h.now.addingTimeInterval(120)
        let expired = await h.run(["env", "a"])
        #expect(expired.code == 6)
        #expect(expired.out.isEmpty)
        #expect(expired.err.contains("cannot connect"))
    }
}

@Suite struct AutoRefreshAndExecTests {
    @Test func envRefreshesATokenAboutToLapse() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["alice"])
        let quiet = await s.h.run(["env", "alice"])
        #expect(quiet.out == "export WEBEX_ACCESS_TOKEN='\(pairs["alice"]!.access)'\n")
        s.h.now = s.h.now.addingTimeInterval(1_209_599 - 300)  // 5 minutes left: under the 10-minute default
        let result = await s.h.run(["env", "alice"])
        #expect(result.code == 0, "\(result.err)")
        #expect(!result.out.contains(pairs["alice"]!.access))
        #expect(result.out.hasPrefix("export WEBEX_ACCESS_TOKEN='"))
        #expect(try await s.auditEvents("alice").last?["trigger"] as? String == "env")
        await s.stop()
    }

    @Test func execPassesTheVariableAndTheExitStatus() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["alice"])
        let seen = ResultBox()
        s.h.execute = { program, arguments, environment in
            seen.value =
                "\(program)|\(arguments.joined(separator: " "))|\(environment["WEBEX_ACCESS_TOKEN"] ?? "")|\(environment["TOKENVAULT_PASSPHRASE"] ?? "unset")"
            return 3
        }
        let result = await s.h.run(["exec", "alice", "--", "python3", "report.py", "--since", "yesterday"])
        #expect(result.code == 3)
        #expect(seen.value == "python3|report.py --since yesterday|\(pairs["alice"]!.access)|unset")
        let missing = await s.h.run(["exec", "alice"])
        #expect(missing.code == 2)
        await s.stop()
    }
}

@Suite struct RemoteRevokeTests {
    @Test func revokeAtWebexWhenTheTokenMayDoIt() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["alice"])
        let result = await s.h.run(["revoke", "alice"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.err.contains("at the provider"))
        #expect(await s.sandbox.requests(to: "DELETE /v1/authorizations") == 1)
        #expect(await s.sandbox.isRefreshTokenValid(pairs["alice"]!.refresh) == false)
        #expect(try await s.auditEvents("alice").last?["outcome"] as? String == "revoked at webex and removed locally")
        await s.stop()
    }

    @Test func revokeWithoutTheScopeIsLocalWithAHint() async throws {
        let s = try await SandboxHarness(scopes: ["spark:people_read"])
        let pairs = try await s.importAccounts(["alice"], scopes: ["spark:people_read"])
        let result = await s.h.run(["revoke", "alice"])
        // The vault does not know the granted scopes, so the provider is asked and refuses (403): the pair is still
        // removed, but the run exits 6 (the tokens stay valid at the provider, which a script must learn from the
        // status).
        #expect(result.code == 6, "\(result.err)")
        #expect(result.err.contains("not revoked at the provider"))
        #expect(result.err.contains("tokenvault: hint: to revoke at Webex"))
        #expect(await s.sandbox.isRefreshTokenValid(pairs["alice"]!.refresh) == true)
        #expect(await s.h.run(["token", "alice"]).code == 4)
        let local = try await s.importAccounts(["bob"])
        _ = local
        let localOnly = await s.h.run(["revoke", "bob", "--local"])
        #expect(localOnly.code == 0)
        #expect(await s.sandbox.requests(to: "DELETE /v1/authorizations") == 1)
        await s.stop()
    }

    @Test func verboseTracesRedactSecrets() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["alice"])
        s.h.now = s.h.now.addingTimeInterval(3600)
        let result = await s.h.run(["refresh", "alice", "--verbose"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.err.contains("tokenvault: http: → POST http://127.0.0.1"))
        #expect(!result.err.contains(pairs["alice"]!.refresh))
        #expect(!result.err.contains(pairs["alice"]!.access))
        #expect(!result.err.contains(s.clientSecret))
        await s.stop()
    }
}
