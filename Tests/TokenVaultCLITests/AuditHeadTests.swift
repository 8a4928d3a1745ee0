import Foundation
import GRDB
import Testing
import TokenVaultTestSupport

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// The audit log's head is MAC'd from `init` on (entry 0 included) and checked on every append, so
/// that wiping the log cannot make `audit --verify` say "intact", and a kept head detects a rolled-back copy.
@Suite struct AuditHeadTests {
    func history() async throws -> Harness {
        let (h, _, _) = try await Harness.withAccount()
        for name in ["bob", "carol"] {
            try await h.expectOK(
                ["import", name, "--integration", "webex1"], stdin: tokenJSON(access: "a-\(name)", refresh: "r-\(name)")
            )
        }
        return h
    }

    func verifyJSON(_ h: Harness, _ extra: [String] = []) async throws -> (
        code: Int32, report: [String: Any], err: String
    ) {
        let result = await h.run(["audit", "--verify", "--json"] + extra)
        let report = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any]
        return (result.code, try #require(report, "\(result.out) \(result.err)"), result.err)
    }

    /// The wipe an attacker with write access to the file can do: drop the trigger, delete every entry, set the
    /// head to 0 and its MAC to NULL.
    @Test func wipingTheLogAndResettingTheHeadIsDetected() async throws {
        let h = try await history()
        try tamper(
            h,
            """
            DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry;
            UPDATE vault_meta SET audit_head_seq = 0, audit_head_mac = NULL
            """)
        let (code, report, err) = try await verifyJSON(h)
        #expect(code == 7, "\(err)")
        #expect(report["intact"] as? Bool == false)
        #expect(err.contains("the log's head record has no MAC"), "\(err)")
    }

    /// With a made-up head MAC instead of NULL: an empty log must still match the keyed MAC of entry 0.
    @Test func anEmptiedLogWithAForgedHeadIsDetected() async throws {
        let h = try await history()
        try tamper(
            h,
            """
            DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry;
            UPDATE vault_meta SET audit_head_seq = 0, audit_head_mac = randomblob(32)
            """)
        let (code, _, err) = try await verifyJSON(h)
        #expect(code == 7)
        #expect(err.contains("the log is empty but its head record does not match an empty log"), "\(err)")
    }

    /// After the wipe, the next append restarts the chain; the old code then verified "intact". Now the append
    /// records a MAC'd `tamper-detected` entry first, and the evidence survives every later append.
    @Test func appendsAfterAWipeKeepTheEvidence() async throws {
        let h = try await history()
        try tamper(
            h,
            """
            DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry;
            UPDATE vault_meta SET audit_head_seq = 0, audit_head_mac = NULL
            """)
        try await h.expectOK(
            ["import", "erin", "--integration", "webex1"], stdin: tokenJSON(access: "a-e", refresh: "r-e"))
        try await h.expectOK(
            ["import", "fay", "--integration", "webex1"], stdin: tokenJSON(access: "a-f", refresh: "r-f"))
        let (code, _, err) = try await verifyJSON(h)
        #expect(code == 7, "\(err)")
        #expect(err.contains("tokenvault found the log tampered with before it appended this entry"), "\(err)")
        let listed = await h.run(["audit", "--json"])
        let events = (try JSONSerialization.jsonObject(with: Data(listed.out.utf8)) as? [[String: Any]] ?? [])
            .compactMap { $0["event"] as? String }
        #expect(events == ["tamper-detected", "imported", "imported"])
        // The pairs themselves were stored: nothing is lost over the log.
        #expect(await h.run(["token", "fay"]).out == "a-f\n")
    }

    /// A new vault verifies with 0 entries; its head (entry 0) is MAC'd, so removing that MAC is caught too.
    @Test func aNewVaultHasAKeyedHead() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        let (code, report, err) = try await verifyJSON(h)
        #expect(code == 0, "\(err)")
        #expect(report["entries"] as? Int == 0)
        #expect(report["head_seq"] as? Int == 0)
        #expect((report["head"] as? String)?.count == 64)
        try tamper(h, "UPDATE vault_meta SET audit_head_mac = NULL")
        #expect(await h.run(["audit", "--verify"]).code == 7)
    }

    /// A head kept outside the vault (from `audit --verify` or `refresh-all --json`) detects a vault replaced
    /// by an older copy of itself, which nothing inside the file can.
    @Test func aKeptHeadDetectsARollback() async throws {
        let h = try await history()
        let old = try await verifyJSON(h)
        let oldHead = try #require(old.report["head"] as? String)
        // An older copy of the file, kept by an attacker (or restored from a stale backup).
        let copy = h.vaultPath + ".old"
        try FileManager.default.copyItem(atPath: h.vaultPath, toPath: copy)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: h.vaultPath + suffix) {
            try FileManager.default.copyItem(atPath: h.vaultPath + suffix, toPath: copy + suffix)
        }
        try await h.expectOK(["revoke", "bob", "--local"])
        let new = try await verifyJSON(h)
        let newHead = try #require(new.report["head"] as? String)
        #expect(newHead != oldHead)
        // The newer log still contains the older head, and its own.
        #expect(try await verifyJSON(h, ["--expect-head", oldHead]).code == 0)
        #expect(try await verifyJSON(h, ["--expect-head", newHead]).code == 0)
        // Roll the vault back: intact on its own, but the head kept after the revoke is not in it.
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: h.vaultPath + suffix)
            if FileManager.default.fileExists(atPath: copy + suffix) {
                try FileManager.default.moveItem(atPath: copy + suffix, toPath: h.vaultPath + suffix)
            }
        }
        #expect(try await verifyJSON(h).code == 0)
        let rolledBack = try await verifyJSON(h, ["--expect-head", newHead])
        #expect(rolledBack.code == 7)
        #expect(rolledBack.err.contains("rolled back to an older copy"), "\(rolledBack.err)")
        #expect(await h.run(["audit", "--expect-head", newHead]).code == 2)  // needs --verify
        #expect(await h.run(["audit", "--verify", "--expect-head", "xyz"]).code == 2)
    }

    /// `refresh-all --json` prints the head to keep.
    @Test func refreshAllPrintsTheHead() async throws {
        let s = try await SandboxHarness()
        s.h.browser = browserStandIn()
        try await s.h.expectOK(["authorize", "alice"])
        let run = await s.h.run(["refresh-all", "--json", "--skip-recent", "0"])
        #expect(run.code == 0, "\(run.err)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [String: Any])
        let verified = await s.h.run(["audit", "--verify", "--json"])
        let head =
            (try JSONSerialization.jsonObject(with: Data(verified.out.utf8)) as? [String: Any])?["head"] as? String
        #expect(report["audit_head"] as? String == head)
        #expect(report["audit_head_seq"] as? Int == 2)
        await s.stop()
    }
}
