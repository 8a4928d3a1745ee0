import Foundation
import ProviderSandbox
import Testing

@testable import TokenVaultCLI
@testable import TokenVaultCore

// An account whose pair was stored in the future (a clock that ran ahead, an edited file).

@Suite struct ClockAheadTests {
    /// Sets an account's pair as if it had been stored `ahead` seconds in the future (the expiries follow).
    func storeInTheFuture(_ s: SandboxHarness, _ account: String, by ahead: TimeInterval) throws {
        let stored = s.h.now.addingTimeInterval(ahead).timeIntervalSince1970
        try tamper(
            s.h, "UPDATE account SET updated_at = ?, access_expires_at = ?, refresh_expires_at = ? WHERE name = ?",
            [stored, stored + 1_209_599, stored + 7_776_000, account])
    }

    @Test func listShowsStaleAndWarns() async throws {
        let s = try await SandboxHarness()
        _ = try await s.importAccounts(["alice", "bob", "carol"])
        try storeInTheFuture(s, "alice", by: 30 * 86_400)
        try storeInTheFuture(s, "carol", by: 240)  // within the tolerated clock skew
        let result = await s.h.run(["list", "--json"])
        #expect(result.code == 0)
        let rows = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [[String: Any]] ?? []
        let states = Dictionary(uniqueKeysWithValues: rows.map { ($0["account"] as! String, $0["state"] as! String) })
        #expect(states == ["alice": "stale", "bob": "ok", "carol": "ok"])
        let warnings = result.err.split(separator: "\n").filter { $0.hasPrefix("tokenvault: warning:") }
        #expect(warnings.count == 1, "\(result.err)")
        #expect(warnings.first?.contains("account 'alice'") == true)
        #expect(warnings.first?.contains("the clock ran ahead or the vault file was edited") == true)
        let table = await s.h.run(["list"])
        #expect(
            table.out.split(separator: "\n").first { $0.hasPrefix("alice") }?.hasSuffix("stale") == true, "\(table.out)"
        )
        await s.stop()
    }

    @Test func refreshAllRefreshesAPairStoredInTheFutureDespiteSkipRecentAndDueWithin() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["alice", "bob", "carol"])
        try storeInTheFuture(s, "alice", by: 30 * 86_400)
        try storeInTheFuture(s, "carol", by: 3 * 86_400)
        // Default --skip-recent 10m: bob was imported just now and is left alone; alice is refreshed.
        let first = await s.h.run(["refresh-all", "--json"])
        #expect(first.code == 0, "\(first.err)")
        let report = try JSONSerialization.jsonObject(with: Data(first.out.utf8)) as? [String: Any] ?? [:]
        #expect(report["refreshed"] as? Int == 2, "\(first.err)")
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["alice"]!.refresh) == 1)
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["carol"]!.refresh) == 1)
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["bob"]!.refresh) == 0)
        let warnings = first.err.split(separator: "\n").filter { $0.contains("later than now") }
        #expect(
            warnings.count == 2 && warnings.contains { $0.contains("'alice'") }
                && warnings.contains { $0.contains("'carol'") }, "\(first.err)")
        #expect(try await s.listState("alice") == "ok")
        // --due-within: nothing lapses within a day, but a pair stored in the future is due.
        try storeInTheFuture(s, "bob", by: 86_400)
        let due = await s.h.run(["refresh-all", "--due-within", "1d", "--json"])
        #expect(due.code == 0, "\(due.err)")
        #expect(
            (try JSONSerialization.jsonObject(with: Data(due.out.utf8)) as? [String: Any])?["refreshed"] as? Int == 1)
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["bob"]!.refresh) == 1)
        await s.stop()
    }

    @Test func refreshOnUseRefreshesAPairStoredInTheFuture() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["alice"])
        try storeInTheFuture(s, "alice", by: 10 * 86_400)
        let result = await s.h.run(["token", "alice"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.out != pairs["alice"]!.access + "\n")
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["alice"]!.refresh) == 1)
        #expect(result.err.components(separatedBy: "later than now").count == 2, "\(result.err)")
        #expect(result.err.contains("account 'alice'"))
        // Refreshed: stored now, so the next use neither warns nor refreshes.
        let again = await s.h.run(["token", "alice"])
        #expect(again.code == 0)
        #expect(!again.err.contains("later than now"))
        #expect(await s.sandbox.counters.successfulRefreshes == 1)
        await s.stop()
    }
}
