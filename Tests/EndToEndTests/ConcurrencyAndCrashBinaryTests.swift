import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// Several tokenvault processes at once, and processes killed at random moments.
    @Suite struct ConcurrencyAndCrashes {
        @Test func twoConcurrentRefreshAllRunsSendEachRefreshTokenOnce() async throws {
            try await SandboxWorkspace.with(configure: { $0.latency = 0.005 }) { s in
                let pairs = try await s.importAccounts((0..<200).map { "u\($0)" })
                // Both runs use the default --skip-recent (10 minutes). The imported pairs are made an hour old by
                // editing updated_at (plain metadata, README: at worst an early refresh), so no sleep is needed and
                // the rule cannot misfire: a pair the other run refreshed is either changed since this run read it
                // (re-read under its lock) or refreshed well within 10 minutes, however late this run starts.
                try sqlite(
                    s.ws.vault, "UPDATE account SET updated_at = updated_at - 3600; SELECT count(*) FROM account")
                let arguments = ["refresh-all", "--json", "--concurrency", "8"]
                let (a, b) = try await s.runTogether(arguments, arguments)
                #expect(a.code == 0, "\(a.err)")
                #expect(b.code == 0, "\(b.err)")
                let twice = await s.refreshTokensNotUsedOnce(pairs)
                #expect(twice.isEmpty, "refresh tokens not sent exactly once: \(twice.prefix(10))")
                #expect(await s.sandbox.counters.successfulRefreshes == 200)
                let ra = jsonObject(a.out)
                let rb = jsonObject(b.out)
                #expect((ra["refreshed"] as? Int ?? -1) + (rb["refreshed"] as? Int ?? -1) == 200)
                #expect((ra["fresh"] as? Int ?? -1) + (rb["fresh"] as? Int ?? -1) == 200)
                for text in [a.err, b.err] {
                    #expect(!text.localizedCaseInsensitiveContains("database is locked"), "\(text)")
                    #expect(!text.contains("SQLITE_BUSY"), "\(text)")
                    #expect(!text.localizedCaseInsensitiveContains("busy"), "\(text)")
                }
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.err)")
                print(
                    "two refresh-all runs over 200 accounts: \(ra["refreshed"] ?? "?") + \(rb["refreshed"] ?? "?") refreshed, peak \(await s.sandbox.counters.peakConcurrentRequests) requests at once"
                )
            }
        }

        /// refresh-all does not queue behind an account another process holds: it refreshes the others first and
        /// comes back to the held one at the end (so runs on several hosts split the work). With one refresh at a
        /// time and the held account first in its order, a run that waited on it would refresh nothing meanwhile.
        @Test(.enabled(if: python3 != nil || MachineTools.isCI, "python3 holds the lock"))
        func refreshAllLeavesAnAccountAnotherProcessHoldsForLast() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["a-held", "b", "c"])
                let id = try sqlite(s.ws.vault, "SELECT id FROM account WHERE name = 'a-held'")
                let holder = try s.ws.write(
                    "hold.py",
                    """
                    import fcntl, os, sys
                    d = sys.argv[1]
                    os.makedirs(d, mode=0o700, exist_ok=True)
                    fd = os.open(os.path.join(d, sys.argv[2] + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    print("held", flush=True)
                    sys.stdin.read()
                    """, mode: 0o755)
                let hold = try BackgroundProcess(
                    python3!, [holder, s.ws.vault + ".locks", id], environment: ["PATH": "/usr/bin:/bin"])
                var deadline = Date().addingTimeInterval(15)
                while !hold.out.contains("held"), !hold.isFinished, Date() < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                try #require(hold.out.contains("held"), "the holder did not take the lock: \(hold.err)")
                let run = try s.start(["refresh-all", "--json", "--concurrency", "1", "--skip-recent", "0"])
                // b and c are refreshed while a-held's lock is still held.
                deadline = Date().addingTimeInterval(30)
                var others = 0
                while Date() < deadline {
                    others =
                        await s.sandbox.uses(ofRefreshToken: pairs["b"]!.refresh)
                        + s.sandbox.uses(ofRefreshToken: pairs["c"]!.refresh)
                    if others == 2 || run.isFinished { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(others == 2, "refresh-all refreshed nothing while one account's lock was held")
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["a-held"]!.refresh) == 0)
                hold.closeStdin()
                hold.signal(SIGTERM)
                _ = try await offPool { try hold.wait(timeout: 10) }
                let result = try await offPool { try run.wait(timeout: 60) }
                #expect(result.code == 0, "\(result.err)")
                #expect(jsonObject(result.out)["refreshed"] as? Int == 3, "\(result.out)")
                #expect(await s.refreshTokensNotUsedOnce(pairs).isEmpty)
            }
        }

        /// SIGKILL of refresh-all at random moments, 26 kills with a rotating provider (30 s grace) and 26 with
        /// Webex's default (no rotation); then one clean run must succeed and every account's token must work.
        @Test(
            .enabled(if: python3 != nil || MachineTools.isCI, "python3's sqlite3 runs the integrity check"),
            arguments: [SandboxConfiguration.Rotation.grace(seconds: 30), .off])
        func refreshAllKilledAtRandomMomentsLosesNoPair(rotation: SandboxConfiguration.Rotation) async throws {
            try await SandboxWorkspace.with(configure: {
                $0.rotation = rotation
                $0.latency = 0.005
            }) { s in
                let names = (0..<50).map { "k\($0)" }
                let pairs = try await s.importAccounts(names)
                var kills = 0
                var midFlight = 0
                var completed = 0
                var attempts = 0
                while kills < 26 && attempts < 150 {
                    attempts += 1
                    let before = await s.sandbox.counters.successfulRefreshes
                    let child = try s.start(["refresh-all", "--skip-recent", "0", "--concurrency", "8"])
                    // Every other kill is timed from the first token request instead of from the start: start-up
                    // (process, KDF, opening the database) takes most of 400 ms here, and the window that matters
                    // most (the provider has answered, the pair is not yet stored) comes after it.
                    if attempts % 2 == 0 {
                        let requests = await s.sandbox.requests(to: "POST /v1/access_token")
                        let deadline = Date().addingTimeInterval(10)
                        while await s.sandbox.requests(to: "POST /v1/access_token") == requests, !child.isFinished,
                            Date() < deadline
                        {
                            try await Task.sleep(for: .milliseconds(2))
                        }
                        // The 50 refreshes take a few tens of milliseconds once the first is sent (the sandbox answers
                        // kept-alive requests at once since it sets TCP_NODELAY): kill within that.
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...60)))
                    } else {
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...400)))
                    }
                    if child.isFinished {
                        let finished = try await offPool { try child.wait() }
                        #expect(finished.code == 0, "a run that was not killed failed: \(finished.err)")
                        completed += 1
                        continue
                    }
                    child.signal(SIGKILL)
                    let killed = try await offPool { try child.wait(timeout: 10) }
                    if killed.code == 0 {
                        // It ended on its own between the look and the signal.
                        completed += 1
                        continue
                    }
                    #expect(killed.code == 128 + SIGKILL, "\(killed.err)")
                    kills += 1
                    // Killed after the provider answered at least one refresh of this run, but before the run ended.
                    if await s.sandbox.counters.successfulRefreshes > before { midFlight += 1 }
                }
                #expect(kills >= 26)
                // Kills during start-up alone would prove nothing about a refresh cut short (the fault suite asks
                // for the same): at least a few must land after the provider answered.
                #expect(midFlight >= 3, "only \(midFlight) of \(kills) kills landed after the provider had answered")
                let final = try await s.run(["refresh-all", "--skip-recent", "0", "--json"])
                #expect(final.code == 0, "\(final.err)")
                // A pair a killed run had journaled but not stored is stored first (from the local journal): its
                // account counts as fresh. Every other account is refreshed.
                let report = jsonObject(final.out)
                #expect(
                    (report["refreshed"] as? Int ?? 0) + (report["fresh"] as? Int ?? 0) == names.count, "\(final.err)")
                #expect(
                    (report["fresh"] as? Int ?? 0) == 0 || final.err.contains("the local journal kept"), "\(final.err)")
                // Every account's token works at the provider (checked four processes at a time).
                var invalid: [String] = []
                for chunk in stride(from: 0, to: names.count, by: 4).map({ Array(names[$0..<min($0 + 4, names.count)]) }
                ) {
                    let tokens = try await withThrowingTaskGroup(of: (String, String?).self) { group in
                        for name in chunk { group.addTask { (name, try await s.token(name)) } }
                        return try await group.reduce(into: [(String, String?)]()) { $0.append($1) }
                    }
                    for (name, token) in tokens {
                        if let token, await s.sandbox.isAccessTokenValid(token) { continue }
                        invalid.append(name)
                    }
                }
                #expect(invalid.isEmpty, "accounts whose token does not work after the kills: \(invalid)")
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.err)")
                #expect(try sqliteIntegrityCheck(s.ws.vault) == "ok")
                if rotation == .off {
                    // Without rotation the stored refresh token never changes and must still be the issued one.
                    for (name, pair) in pairs { #expect(await s.sandbox.isRefreshTokenValid(pair.refresh), "\(name)") }
                }
                // Every stored refresh token is the provider's current one: with rotation switched to strict (no grace),
                // one more run must still refresh every account.
                await s.sandbox.updateConfiguration { $0.rotation = .on }
                let strict = try await s.run(["refresh-all", "--skip-recent", "0", "--json"])
                #expect(strict.code == 0, "\(strict.err)")
                #expect(jsonObject(strict.out)["refreshed"] as? Int == names.count)
                let reuses = await s.sandbox.counters.rotatedRefreshTokenReuses
                print(
                    "rotation \(rotation): \(kills) kills (\(midFlight) after the provider had answered), \(completed) runs finished first, \(reuses) reuses of rotated refresh tokens inside the grace window"
                )
            }
        }
    }
}
