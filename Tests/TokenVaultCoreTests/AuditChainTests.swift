import Foundation
import GRDB
import Testing
import VaultStore

@testable import TokenVaultCore

/// The audit chain (AuditChain.swift) against a real vault file and real libsodium.
@Suite struct AuditChainTests {
    func draft(_ account: String, _ event: AuditEvent, at: Date) -> AuditDraft {
        AuditDraft(at: at, account: account, integration: "webex", event: event, trigger: "test", outcome: "ok")
    }

    func append(_ v: CoreVault, _ drafts: [AuditDraft]) throws {
        for d in drafts { try v.database.write { w in try v.vault.appendAudit(d, in: w) } }
    }

    /// Edits the file as an attacker would: past the append-only triggers, which only stop accidents.
    func tamper(_ v: CoreVault, _ sql: String) throws {
        let queue = try DatabaseQueue(path: v.path)
        defer { try? queue.close() }
        try queue.write { try $0.execute(sql: sql) }
    }

    @Test func anEmptyLogAndAnAppendedOneVerify() throws {
        let v = try CoreVault()
        defer { v.remove() }
        let empty = try v.vault.verifyAudit()
        #expect(empty.problems.isEmpty)
        #expect(empty.count == 0 && empty.headSeq == 0)

        try append(
            v, [draft("alice", .imported, at: v.now), draft("alice", .refreshed, at: v.now.addingTimeInterval(60))])
        let result = try v.vault.verifyAudit()
        #expect(result.problems.isEmpty, "\(result.problems)")
        #expect(result.count == 2 && result.headSeq == 2)
        // A head printed earlier is still in the log; the empty log's head too.
        #expect(try v.vault.verifyAudit(expectHead: empty.head).problems.isEmpty)
        #expect(try v.vault.verifyAudit(expectHead: result.head.uppercased()).problems.isEmpty)
    }

    @Test func anEditedEntryIsNamed() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try append(v, [draft("alice", .imported, at: v.now), draft("bob", .imported, at: v.now)])
        try tamper(v, "DROP TRIGGER audit_entry_no_update; UPDATE audit_entry SET outcome = 'failed' WHERE seq = 1")
        let problems = try v.vault.verifyAudit().problems
        #expect(problems.count == 1)
        #expect(
            problems.first?.contains("entry 1 (imported, account 'alice') does not match its MAC") == true,
            "\(problems)")
    }

    @Test func removedEntriesAreFoundAtTheEndInTheMiddleAndAll() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try append(v, (1...3).map { draft("a\($0)", .imported, at: v.now) })
        try tamper(v, "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry WHERE seq = 3")
        #expect(try v.vault.verifyAudit().problems.contains { $0.contains("the newest entries were removed") })

        let w = try CoreVault()
        defer { w.remove() }
        try append(w, (1...3).map { draft("a\($0)", .imported, at: w.now) })
        try tamper(w, "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry WHERE seq = 2")
        let problems = try w.vault.verifyAudit().problems
        #expect(problems.contains("entry 2 is missing"), "\(problems)")
        #expect(
            problems.contains { $0.contains("entry 3 (imported, account 'a3') does not match its MAC") }, "\(problems)")

        let x = try CoreVault()
        defer { x.remove() }
        try append(x, [draft("alice", .imported, at: x.now)])
        try tamper(x, "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry")
        #expect(try x.vault.verifyAudit().problems.contains { $0.contains("the newest entries were removed") })
    }

    @Test func aHeadFromAnotherVaultOrALaterStateIsNotInTheLog() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try append(v, [draft("alice", .imported, at: v.now)])
        let other = try CoreVault()
        defer { other.remove() }
        let problems = try v.vault.verifyAudit(expectHead: try other.vault.verifyAudit().head).problems
        #expect(problems.count == 1)
        #expect(problems.first?.contains("is not in this log") == true)
    }

    /// An append that finds the head wrong records a MAC'd `tamper-detected` entry first; verify keeps reporting it.
    @Test func anAppendAfterTheHeadWasRemovedRecordsTamperDetected() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try append(v, [draft("alice", .imported, at: v.now)])
        try tamper(
            v,
            "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry; UPDATE vault_meta SET audit_head_seq = 0, audit_head_mac = NULL"
        )
        try append(v, [draft("bob", .imported, at: v.now)])
        #expect(try v.database.auditEntries().map(\.draft.event) == [.tamperDetected, .imported])
        let problems = try v.vault.verifyAudit().problems
        #expect(
            problems.contains { $0.contains("tokenvault found the log tampered with before it appended this entry") },
            "\(problems)")
    }
}
