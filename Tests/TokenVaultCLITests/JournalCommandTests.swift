import Foundation
import Testing
import TokenVaultTestSupport
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// An account whose newest pair waits in the local journal (the store failed after the provider answered) is
/// never shown `ok`: `list` says `pending`, `check` names it `pair-not-stored` (exit 5), as `--notify` tells it.
@Suite struct JournalCommandTests {
    /// Leaves an entry with a pair for `alice` in the harness's journal, as a refresh-all whose store failed does.
    static func leavePendingPair(_ h: Harness) throws -> String {
        let base = try #require(RefreshJournal.base(environment: h.environment))
        let database = try VaultStores.open(h.vaultPath)
        defer { try? database.close() }
        let alice = try database.account(named: "alice")
        let journal = RefreshJournal(base: base, location: database.location)
        var reservation = try journal.reserve(alice, integration: "webex1", trigger: .refreshAll, now: h.now)
        var answered = alice
        answered.accessExpiresAt = h.now.addingTimeInterval(3600)
        answered.updatedAt = h.now
        try journal.record(&reservation, stored: answered, refreshTokenChanged: true)
        return reservation.path
    }

    @Test func aPairWaitingInTheJournalIsPendingInListAndNamedByCheck() async throws {
        let (h, _, _) = try await Harness.withAccount()
        #expect(await h.run(["check"]).code == 0)
        let path = try Self.leavePendingPair(h)
        #expect(path.hasPrefix(h.dir + "/.local/state/tokenvault/journal/"))

        let listed = await h.run(["list", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.out.utf8)) as? [[String: Any]])
        #expect(rows.first?["state"] as? String == "pending", "\(listed.out)")
        let table = await h.run(["list"])
        #expect(
            table.out.split(separator: "\n").first { $0.hasPrefix("alice") }?.hasSuffix("pending") == true,
            "\(table.out)")

        let checked = await h.run(["check", "--json"])
        #expect(checked.code == 5)
        let found = try #require(try JSONSerialization.jsonObject(with: Data(checked.out.utf8)) as? [[String: Any]])
        #expect(found.first?["event"] as? String == "pair-not-stored", "\(checked.out)")
        #expect((found.first?["detail"] as? String)?.contains("tokenvault refresh alice") == true)

        // Without the journal (TOKENVAULT_JOURNAL=off) nothing is read from it: tokenvault before the journal.
        let off = await h.run(["list", "--json"], environment: ["TOKENVAULT_JOURNAL": "off"])
        #expect(off.out.contains("\"ok\""), "\(off.out)")
    }

    /// A refresh cut off after its refresh token was sent, with no answer kept (the store and the journal both
    /// failed, or the process died): `interrupted` in list, `refresh-interrupted` in check, until a refresh finds out.
    @Test func aRefreshCutOffAfterSendingIsInterruptedUntilTheRowMovesOn() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let base = try #require(RefreshJournal.base(environment: h.environment))
        let database = try VaultStores.open(h.vaultPath)
        let alice = try database.account(named: "alice")
        _ = try RefreshJournal(base: base, location: database.location).reserve(
            alice, integration: "webex1", trigger: .refreshAll, now: h.now)
        try database.close()

        let listed = await h.run(["list", "--json"])
        #expect(listed.out.contains("\"interrupted\""), "\(listed.out)")
        let checked = await h.run(["check", "--json"])
        #expect(checked.code == 5)
        #expect(
            checked.out.contains("refresh-interrupted") && checked.out.contains("tokenvault authorize alice"),
            "\(checked.out)")

        // A new pair stored since (here an import) settles it.
        try await h.expectOK(
            ["import", "alice", "--integration", "webex1", "--replace"],
            stdin: tokenJSON(access: "AT_" + randomToken(), refresh: "RT_" + randomToken()))
        #expect(await h.run(["check"]).code == 0)
    }
}
