import Foundation
import Testing
import VaultCrypto
import VaultStore

@testable import TokenVaultCore

/// Which accounts need a person (`check`, `--notify`), from plain metadata and the audit log of an in-memory vault.
@Suite struct AttentionTests {
    @Test func everyKindOfNeedIsFoundAndHealthyAccountsAreNot() throws {
        let m = try MemoryVault()
        let now = m.now
        func store(_ name: String, _ change: (inout Account) -> Void) throws {
            var a = try m.database.account(named: name)
            change(&a)
            try m.database.write { try $0.update(a) }
        }
        try m.add("healthy", provider: .webex, base: "https://webex.test/v1")
        try m.add("refused", provider: .webex, base: "https://webex.test/v1", state: .needsReauth)
        try m.add("lapsing", provider: .webex, base: "https://webex.test/v1")
        try store("lapsing") { $0.refreshExpiresAt = now.addingTimeInterval(5 * 86_400) }
        try m.add("failing", provider: .webex, base: "https://webex.test/v1")
        try store("failing") { $0.updatedAt = now.addingTimeInterval(-2 * 86_400) }
        try m.database.write { w in
            try m.vault.appendAudit(
                AuditDraft(
                    at: now.addingTimeInterval(-2 * 86_400), account: "failing", integration: "webex",
                    event: .refreshed, trigger: .refreshAll, outcome: .ok), in: w)
            try m.vault.appendAudit(
                AuditDraft(
                    at: now.addingTimeInterval(-3600), account: "failing", integration: "webex",
                    event: .refreshFailed, trigger: .refreshAll, outcome: .failedPairUnchanged,
                    detail: "the provider answered HTTP 503"), in: w)
        }
        // Refreshed long ago but its newest attempt succeeded: not failing.
        try m.add("quiet", provider: .webex, base: "https://webex.test/v1")
        try store("quiet") { $0.updatedAt = now.addingTimeInterval(-2 * 86_400) }
        try m.add("noRefresh", provider: .webex, base: "https://webex.test/v1")
        try store("noRefresh") {
            $0.refreshTokenSealed = nil
            $0.refreshExpiresAt = nil
            $0.accessExpiresAt = now.addingTimeInterval(3 * 86_400)
        }

        let found = try Attention.find(in: m.database, now: now)
        let events = Dictionary(uniqueKeysWithValues: found.map { ($0.account, $0.event) })
        #expect(
            events == [
                "refused": .needsReauth, "lapsing": .refreshTokenLapsing, "failing": .refreshFailing,
                "noRefresh": .accessTokenLapsing,
            ])
        #expect(found.first { $0.account == "failing" }?.detail.contains("HTTP 503") == true)
        #expect(found.allSatisfy { $0.integration == "webex" })
    }
}
