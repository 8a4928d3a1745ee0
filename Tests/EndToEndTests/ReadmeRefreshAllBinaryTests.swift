import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

/// Pairs for `import --batch` whose access tokens last `expiresIn` seconds (the sandbox issued them).
func importLines(_ s: SandboxWorkspace, _ accounts: [(name: String, expiresIn: Int)]) async throws -> (
    lines: String, pairs: [String: (access: String, refresh: String)]
) {
    var lines: [String] = []
    var pairs: [String: (access: String, refresh: String)] = [:]
    for (name, expiresIn) in accounts {
        let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: s.user.id)
        pairs[name] = (pair.accessToken, pair.refreshToken)
        var object = jsonObject(tokenJSON(access: pair.accessToken, refresh: pair.refreshToken, expiresIn: expiresIn))
        object["account"] = name
        lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
    }
    return (lines.joined(separator: "\n") + "\n", pairs)
}

/// A JSON object from the binary's stdout, or a test failure (never an empty object that negative checks pass on).
func requireJSON(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let object = try #require(
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
        "not a JSON object: \(text)", sourceLocation: sourceLocation)
    return object
}

/// ISO 8601 timestamps as tokenvault prints them.
func timestamp(_ value: Any?) -> Date? {
    guard let text = value as? String else { return nil }
    let formatter = ISO8601DateFormatter()
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.date(from: text)
}

extension OAuthBinaryTests {
    /// README, "refresh-all": the promises no other test checked.
    @Suite struct ReadmeRefreshAll {
        /// Exit 5 for re-authorization, 6 for provider failures, 7 for integrity; 5 wins over 6 and 7 over both.
        /// A Retry-After over 300 s fails the account at once (one request, no wait) with Webex's tracking id.
        @Test func exitCodesAndWhichWins() async throws {
            try await SandboxWorkspace.with(configure: {
                $0.faults.tooManyRequestsEvery = 2
                $0.faults.retryAfterSeconds = 301
            }) { s in
                let pairs = try await s.importAccounts(["a", "b", "c"])
                try await s.sandbox.revokeRefreshToken(pairs["a"]!.refresh)
                // One at a time in name order (one import: same updated_at): a is request 1 (invalid_grant),
                // b request 2 (429, Retry-After 301), c request 3 (refreshed).
                let arguments = ["refresh-all", "--json", "--skip-recent", "0", "--concurrency", "1"]
                let started = Date()
                let mixed = try await s.run(arguments)
                #expect(Date().timeIntervalSince(started) < 30, "waited for a Retry-After over 300 s")
                #expect(mixed.code == 5, "needs-reauth and failed: 5 wins\n\(mixed.err)")
                let report = try requireJSON(mixed.out)
                let rows = Dictionary(
                    uniqueKeysWithValues: (report["accounts"] as? [[String: Any]] ?? []).map {
                        ($0["account"] as? String ?? "", $0)
                    })
                #expect(rows["a"]?["status"] as? String == "needs-reauth")
                #expect(rows["b"]?["status"] as? String == "failed")
                #expect(rows["c"]?["status"] as? String == "refreshed")
                #expect((rows["b"]?["tracking_id"] as? String)?.hasPrefix("SANDBOX_") == true, "\(rows["b"] ?? [:])")
                #expect(rows["b"]?["error"] is String)
                #expect(mixed.err.contains("tokenvault: b: refresh failed: "), "\(mixed.err)")
                #expect(
                    await s.sandbox.requests(to: "POST /v1/access_token") == 3,
                    "a Retry-After over 300 s is not retried")
                #expect(await s.sandbox.counters.tooManyRequestsAnswered == 1)

                // c's name edited in the file: its sealed values no longer open. 7 wins over 5 and 6.
                try sqlite(s.ws.vault, "UPDATE account SET name = 'c2' WHERE name = 'c'")
                let tampered = try await s.run(arguments)
                #expect(tampered.code == 7, "\(tampered.err)")
                let rows2 = (try requireJSON(tampered.out)["accounts"] as? [[String: Any]] ?? [])
                #expect(
                    rows2.map { $0["status"] as? String ?? "" }.sorted() == ["failed", "failed", "needs-reauth"],
                    "\(rows2)")
                #expect(
                    await s.sandbox.uses(ofRefreshToken: pairs["a"]!.refresh) == 1, "needs-reauth is not sent again")

                // Only provider failures: 6.
                try sqlite(s.ws.vault, "UPDATE account SET name = 'c' WHERE name = 'c2'")
                #expect(try await s.run(["revoke", "a", "--local"]).code == 0)
                await s.sandbox.updateConfiguration { $0.faults.tooManyRequestsEvery = 1 }
                let failed = try await s.run(arguments)
                #expect(failed.code == 6, "\(failed.err)")
                let summary = try requireJSON(failed.out)
                #expect(summary["failed"] as? Int == 2 && summary["refreshed"] as? Int == 0, "\(summary)")
                s.expectNoSecrets(
                    mixed.out + mixed.err + tampered.err + failed.err, also: [pairs["b"]!.refresh, pairs["c"]!.refresh])
            }
        }

        /// `--due-within` picks accounts from their expiry; without `--skip-recent` a pair changed in the last
        /// 10 minutes is left alone (nothing sent).
        @Test func dueWithinAndTheDefaultSkipRecent() async throws {
            try await SandboxWorkspace.with { s in
                let (lines, pairs) = try await importLines(s, [("soon", 3600), ("later", 1_209_599)])
                try await s.expectOK(["import", "--batch", "--integration", "webex"], stdin: lines)
                // Just imported: the default --skip-recent 10m leaves both alone.
                let recent = try await s.run(["refresh-all", "--json"])
                #expect(recent.code == 0, "\(recent.err)")
                let first = try requireJSON(recent.out)
                #expect(first["fresh"] as? Int == 2 && first["refreshed"] as? Int == 0, "\(first)")
                #expect(await s.sandbox.counters.refreshGrants == 0)
                // Pairs changed 11 minutes ago are refreshed by default.
                try sqlite(s.ws.vault, "UPDATE account SET updated_at = updated_at - 660")
                let due = try await s.run(["refresh-all", "--json", "--due-within", "2h"])
                #expect(due.code == 0, "\(due.err)")
                let report = try requireJSON(due.out)
                #expect(report["total"] as? Int == 1, "\(report)")
                let names = (report["accounts"] as? [[String: Any]] ?? []).compactMap { $0["account"] as? String }
                #expect(names == ["soon"])
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["soon"]!.refresh) == 1)
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["later"]!.refresh) == 0)
            }
        }

        /// `--concurrency` accepts 1 to 256 and never runs more refreshes at once than it says.
        @Test func concurrencyBounds() async throws {
            try await SandboxWorkspace.with(configure: { $0.latency = 0.15 }) { s in
                for bad in ["0", "257"] {
                    let result = try await s.run(["refresh-all", "--concurrency", bad])
                    #expect(result.code == 2, "--concurrency \(bad): \(result.err)")
                    #expect(result.err.contains("--concurrency must be between 1 and 256"), "\(result.err)")
                }
                #expect(try await s.run(["refresh-all", "--concurrency", "256"]).code == 0)
                try await s.importAccounts((0..<6).map { "n\($0)" })
                let two = try await s.run(["refresh-all", "--json", "--skip-recent", "0", "--concurrency", "2"])
                #expect(two.code == 0, "\(two.err)")
                #expect(try requireJSON(two.out)["refreshed"] as? Int == 6)
                let peak = await s.sandbox.counters.peakConcurrentRequests
                #expect(peak >= 1 && peak <= 2, "peak \(peak) requests at once with --concurrency 2")
            }
        }

        /// A refresh token that lapses within 14 days even after a refresh (its expiry not moved later) is warned
        /// about, naming the account; the JSON report carries old and new expiries; without a terminal there is no
        /// progress line.
        @Test func lapseWarningAndTheJSONExpiries() async throws {
            try await SandboxWorkspace.with(configure: { $0.refreshTokenLifetime = 10 * 86_400 }) { s in
                let pairs = try await s.importAccounts(["short"])
                let before = Date()
                let result = try await s.run(["refresh-all", "--json", "--skip-recent", "0"])
                #expect(result.code == 0, "\(result.err)")
                let warning = result.err.split(separator: "\n").first { $0.hasPrefix("tokenvault: warning: ") }
                #expect(warning?.contains("short") == true, "\(result.err)")
                #expect(
                    !result.err.contains("done:"), "a progress line without a terminal: \(result.err.debugDescription)")
                #expect(!result.err.contains("\r"))
                let row = try #require((try requireJSON(result.out)["accounts"] as? [[String: Any]])?.first)
                #expect(row["status"] as? String == "refreshed")
                #expect(row["refresh_token_changed"] as? Bool == false)
                let accessAfter = try #require(timestamp(row["access_expires_at"]), "\(row)")
                let refreshAfter = try #require(timestamp(row["refresh_expires_at"]), "\(row)")
                let accessBefore = try #require(timestamp(row["access_expires_before"]), "\(row)")
                let refreshBefore = try #require(timestamp(row["refresh_expires_before"]), "\(row)")
                #expect(abs(accessAfter.timeIntervalSince(before) - 1_209_599) < 120)
                #expect(abs(refreshAfter.timeIntervalSince(before) - 10 * 86_400) < 120)
                #expect(abs(refreshBefore.timeIntervalSince(before) - 7_776_000) < 120, "the imported 90 days")
                #expect(abs(accessBefore.timeIntervalSince(before) - 1_209_599) < 120)
                // The same lifetimes with the default 90 days: no warning.
                await s.sandbox.updateConfiguration { $0.refreshTokenLifetime = 7_776_000 }
                let quiet = try await s.run(["refresh-all", "--skip-recent", "0"])
                #expect(quiet.code == 0 && !quiet.err.contains("warning"), "\(quiet.err)")
                s.expectNoSecrets(result.out + result.err, also: [pairs["short"]!.refresh])
            }
        }

        /// On a terminal, a live progress line: done/total, failures, rate.
        @Test(.enabled(if: Tmux.available || MachineSupport.isCI, "tmux is needed (make test installs it)"))
        func progressLineOnATerminal() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["p1", "p2", "p3"])
                // An access token alone: skipped, and counted the same way by the progress line and the summary
                // (the line said 3/3 done while the summary said "of 4").
                try await s.expectOK(
                    ["import", "p4", "--integration", "webex"], stdin: tokenJSON(access: generatedToken(), refresh: nil)
                )
                var env = s.ws.environment
                env["TERM"] = "xterm"
                let tmux = try Tmux(command: "/bin/sh", environment: env)
                defer { tmux.kill() }
                try tmux.type("\(tokenvaultBinary) refresh-all --skip-recent 0; echo EXIT=$?")
                let (code, screen) = try await offPool { try tmux.waitForExit("EXIT") }
                #expect(code == 0, "\(screen)")
                #expect(
                    screen.contains(
                        "refresh-all: 4/4 done: 3 refreshed, 0 fresh, 0 need re-authorization, 0 failed, 1 skipped (no refresh token)"
                    ), "\(screen)")
                #expect(screen.contains("refresh-all: 3 refreshed, 0 already fresh"), "\(screen)")
                #expect(screen.contains("1 skipped (no refresh token), of 4 in"), "\(screen)")
            }
        }
    }
}
