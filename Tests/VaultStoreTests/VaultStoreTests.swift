import Foundation
import GRDB
import Testing

@testable import VaultStore

/// A fresh directory per test, removed afterwards.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "tokenvault-store-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

func sampleHeader() -> VaultHeader {
    VaultHeader(
        kdfAlgorithm: "argon2id13", kdfSalt: Array(repeating: 7, count: 16), kdfOpsLimit: 2,
        kdfMemLimit: 1 << 26, masterKeySealed: Array(repeating: 9, count: 73),
        createdAt: Date(timeIntervalSince1970: 1_700_000_000),
        passphraseChangedAt: Date(timeIntervalSince1970: 1_700_000_000))
}

func sampleIntegration(_ name: String = "reporting") -> Integration {
    Integration(
        name: name, provider: "webex", clientId: "C0ffee", clientSecretSealed: [1, 2, 3],
        redirectURI: "http://localhost:8765/callback", scopes: ["spark:people_read", "spark:kms"],
        apiBase: "https://webexapis.com/v1", envVar: "WEBEX_ACCESS_TOKEN",
        createdAt: Date(timeIntervalSince1970: 1_700_000_000))
}

func mode(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
}

@Suite struct MigrationTests {
    /// Every .sql file in Migrations/ must be registered (and embedded), in order.
    @Test func everyMigrationFileIsRegistered() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Migrations")
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        let files = entries.filter { $0.hasSuffix(".sql") }.sorted()
        #expect(!files.isEmpty)
        // Nothing else lies there but the PostgreSQL folder (checked below).
        #expect(Set(entries).subtracting(files) == ["postgresql"])
        #expect(files.map { String($0.dropLast(4)) } == VaultMigrations.all.map(\.identifier))
        for (file, migration) in zip(files, VaultMigrations.all) {
            let onDisk = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            #expect(onDisk == migration.sql, "embedded copy of \(file) differs from the file")
        }
    }

    /// The same for PostgreSQL's folder (Migrations/postgresql/, embedded by the PostgresSchema target): every
    /// file registered, in order, and one PostgreSQL migration for each SQLite one, under the same name.
    @Test func everyPostgreSQLMigrationFileIsRegistered() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Migrations/postgresql")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(!files.isEmpty)
        #expect(files.allSatisfy { $0.hasSuffix(".sql") }, "\(files)")
        #expect(files.map { String($0.dropLast(4)) } == PostgresMigrations.all.map(\.identifier))
        for (file, migration) in zip(files, PostgresMigrations.all) {
            let onDisk = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            #expect(onDisk == migration.sql, "embedded copy of postgresql/\(file) differs from the file")
        }
        #expect(PostgresMigrations.all.map(\.identifier) == VaultMigrations.all.map(\.identifier))
    }

    @Test func upgradeAppliesNewMigrationAndKeepsData() throws {
        let dir = TempDir()
        let path = dir.file("vault.db")
        let db = try SQLiteVault.create(at: path, header: sampleHeader())
        try db.write { try $0.insert(sampleIntegration()) }
        try db.close()

        let next = VaultMigrations.all + [("v999_test_note", "ALTER TABLE integration ADD COLUMN note TEXT;")]
        let upgraded = try SQLiteVault.open(at: path, migrations: next)
        #expect(try upgraded.integrations().map(\.name) == ["reporting"])
        #expect(try upgraded.header() == sampleHeader())
        try upgraded.close()
        let queue = try DatabaseQueue(path: path)
        #expect(try queue.read { try $0.columns(in: "integration").map(\.name) }.contains("note"))
        try queue.close()

        // And now this binary, which does not know v999, must refuse the file without touching it.
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(throws: StoreError.newerSchema(path: path, unknown: ["v999_test_note"])) {
            try SQLiteVault.open(at: path)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }
}

@Suite struct VaultFileTests {
    /// Under the process's own umask. The same under `umask 000` is checked on the built binary in a child
    /// process (EndToEndTests, `initUnderUmask000MakesPrivateDirectoriesAndFile`): umask is per process, and
    /// setting it here would change the files every test running in parallel creates.
    @Test func createMakesPrivateDirectoryAndFile() throws {
        let dir = TempDir()
        let path = dir.file("a/b/vault.db")
        let db = try SQLiteVault.create(at: path, header: sampleHeader())
        try db.write { try $0.insert(sampleIntegration()) }
        #expect(mode(dir.file("a")) == 0o700)
        #expect(mode(dir.file("a/b")) == 0o700)
        #expect(mode(path) == 0o600)
        #expect(mode(path + "-wal") == 0o600)
        #expect(mode(path + "-shm") == 0o600)
        try db.close()
    }

    @Test func secondCreateIsRefused() throws {
        let dir = TempDir()
        let path = dir.file("vault.db")
        try SQLiteVault.create(at: path, header: sampleHeader()).close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(throws: StoreError.vaultExists(path: path)) { try SQLiteVault.create(at: path, header: sampleHeader()) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func missingVault() {
        let dir = TempDir()
        #expect(throws: StoreError.vaultMissing(path: dir.file("nope.db"))) {
            try SQLiteVault.open(at: dir.file("nope.db"))
        }
    }

    @Test func nonVaultFilesAreRefusedUnchanged() throws {
        let dir = TempDir()
        let cases: [(String, Data)] = [
            ("empty", Data()),
            ("text", Data("hello, this is not a database at all".utf8)),
            ("random", Data((0..<4096).map { _ in UInt8.random(in: 0...255) })),
        ]
        for (name, content) in cases {
            let path = dir.file(name)
            try content.write(to: URL(fileURLWithPath: path))
            #expect(throws: StoreError.self) { try SQLiteVault.open(at: path) }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == content, "\(name) was modified")
        }
        // A real SQLite database of some other program is not a vault, and stays in its journal mode.
        let other = dir.file("other.db")
        let queue = try DatabaseQueue(path: other)
        try queue.write { try $0.execute(sql: "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('x')") }
        try queue.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: other))
        #expect(throws: StoreError.notAVault(path: other, reason: "an SQLite database without tokenvault's tables")) {
            try SQLiteVault.open(at: other)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: other)) == before)
    }

    @Test func truncatedVaultIsAnErrorNotACrash() throws {
        let dir = TempDir()
        let path = dir.file("vault.db")
        let db = try SQLiteVault.create(at: path, header: sampleHeader())
        for i in 0..<50 { try db.write { try $0.insert(sampleIntegration("i\(i)")) } }
        try db.purgeDeletedData()
        try db.close()
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        for length in [16, 100, 1024, full.count / 2, full.count - 1000] {
            try full.prefix(length).write(to: URL(fileURLWithPath: path))
            for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
            var failed = false
            do {
                let opened = try SQLiteVault.open(at: path)
                _ = try opened.integrations()
                _ = try opened.header()
            } catch is StoreError {
                failed = true
            }
            #expect(failed, "truncating to \(length) bytes went unnoticed")
        }
    }
}

@Suite struct RecordTests {
    @Test func integrationsAndAccountsRoundTrip() throws {
        let dir = TempDir()
        let db = try SQLiteVault.create(at: dir.file("vault.db"), header: sampleHeader())
        let integration = sampleIntegration()
        try db.write { try $0.insert(integration) }
        #expect(try db.integration(named: "reporting") == integration)
        #expect(throws: StoreError.duplicateIntegration("reporting")) { try db.write { try $0.insert(integration) } }

        let now = Date(timeIntervalSince1970: 1_700_000_000)
        var account = Account(
            name: "alice@example.com", integrationId: integration.id, accessTokenSealed: [4, 5],
            refreshTokenSealed: [6], accessExpiresAt: now.addingTimeInterval(100),
            refreshExpiresAt: now.addingTimeInterval(1000), email: "alice@example.com",
            createdAt: now, updatedAt: now)
        try db.write { try $0.insert(account) }
        #expect(try db.account(named: "alice@example.com") == account)
        account.state = .needsReauth
        account.refreshTokenSealed = nil
        try db.write { try $0.update(account) }
        #expect(try db.account(named: "alice@example.com") == account)
        #expect(try db.accounts(accessExpiringBefore: now.addingTimeInterval(50)).isEmpty)
        #expect(try db.accounts(accessExpiringBefore: now.addingTimeInterval(150)).map(\.name) == ["alice@example.com"])
        #expect(try db.accountCount(integrationId: integration.id) == 1)
        try db.write { try $0.deleteIntegration(id: integration.id) }
        #expect(throws: StoreError.noSuchAccount("alice@example.com")) { try db.account(named: "alice@example.com") }
    }

    @Test func auditLogIsAppendOnlyAndChainsPreviousMAC() throws {
        let dir = TempDir()
        // The head of the empty log, as the test's head MAC below computes it for entry 0.
        let db = try SQLiteVault.create(at: dir.file("vault.db"), header: sampleHeader(), auditHeadMAC: [0])
        let draft = AuditDraft(
            at: Date(timeIntervalSince1970: 1_700_000_000), account: "alice", integration: "reporting",
            event: .imported, trigger: "import", outcome: "ok")
        var seen: [(Int64, [UInt8])] = []
        for i in 0..<3 {
            _ = try db.write { w in
                try w.appendAudit(
                    draft,
                    mac: { seq, _, previous in
                        seen.append((seq, previous))
                        return [UInt8(i + 1)]
                    }, headMAC: { seq, mac in [UInt8(seq)] + mac })
            }
        }
        #expect(seen.map(\.0) == [1, 2, 3])
        #expect(seen.map(\.1) == [[], [1], [2]])
        #expect(try db.auditEntries().map(\.mac) == [[1], [2], [3]])
        #expect(try db.auditHead().seq == 3)
        #expect(try db.auditHead().mac == [3, 3])
        #expect(try db.auditEntries(account: "bob").isEmpty)
    }

    /// What the triggers do: another connection, with no transaction of ours around it (a careless tool editing
    /// the file), cannot UPDATE or DELETE an entry; SQLite answers with the triggers' message. Without them the
    /// edit would succeed.
    @Test func theTriggersRefuseEditsFromAnotherConnection() throws {
        let dir = TempDir()
        let path = dir.file("vault.db")
        let db = try SQLiteVault.create(at: path, header: sampleHeader(), auditHeadMAC: [0])
        let draft = AuditDraft(
            at: Date(timeIntervalSince1970: 1_700_000_000), account: "alice", integration: "reporting",
            event: .imported, trigger: "import", outcome: "ok")
        _ = try db.write { try $0.appendAudit(draft, mac: { _, _, _ in [1] }, headMAC: { _, mac in mac }) }
        try db.close()
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        let before = try queue.inDatabase { try String.fetchAll($0, sql: "SELECT outcome FROM audit_entry") }
        #expect(before.last == "ok")
        for sql in ["UPDATE audit_entry SET outcome = 'edited'", "DELETE FROM audit_entry"] {
            do {
                try queue.inDatabase { try $0.execute(sql: sql) }
                Issue.record("\(sql) was allowed")
            } catch let error as DatabaseError {
                #expect(error.resultCode == .SQLITE_CONSTRAINT, "\(sql): \(error)")
                #expect(error.message == "the audit log is append-only", "\(sql): \(error)")
            }
        }
        let outcomes = try queue.inDatabase { try String.fetchAll($0, sql: "SELECT outcome FROM audit_entry") }
        #expect(outcomes == before)
    }

    @Test func canonicalBytesDifferForEveryField() {
        let base = AuditDraft(
            at: Date(timeIntervalSince1970: 1), account: "a", integration: "i", event: .refreshed,
            trigger: "refresh-all", outcome: "ok", accessExpiresBefore: Date(timeIntervalSince1970: 2),
            accessExpiresAfter: Date(timeIntervalSince1970: 3), refreshExpiresBefore: nil,
            refreshExpiresAfter: Date(timeIntervalSince1970: 4), refreshTokenChanged: false, detail: nil)
        var variants = [base]
        var v = base
        v.account = "b"
        variants.append(v)
        v = base
        v.outcome = "failed"
        variants.append(v)
        v = base
        v.refreshTokenChanged = true
        variants.append(v)
        v = base
        v.accessExpiresAfter = Date(timeIntervalSince1970: 3.5)
        variants.append(v)
        v = base
        v.account = "a"
        v.integration = nil
        variants.append(v)
        let encodings = Set(variants.map { AuditEntry.canonicalBytes(seq: 1, draft: $0, previousMAC: []) })
        #expect(encodings.count == variants.count)
        #expect(
            AuditEntry.canonicalBytes(seq: 1, draft: base, previousMAC: [])
                != AuditEntry.canonicalBytes(seq: 2, draft: base, previousMAC: []))
    }
}

@Suite struct AuditHeadStoreTests {
    /// An append that finds the head disagreeing with the newest entry writes a `tamper-detected` entry first,
    /// MAC'd through the same closure, and still appends the real one.
    @Test func aWrongHeadIsRecordedBeforeTheNextAppend() throws {
        let dir = TempDir()
        let db = try SQLiteVault.create(at: dir.file("vault.db"), header: sampleHeader(), auditHeadMAC: [9, 9])
        let draft = AuditDraft(
            at: Date(timeIntervalSince1970: 1_700_000_000), account: "alice", integration: "reporting",
            event: .imported, trigger: "import", outcome: "ok")
        var macced: [(Int64, AuditEvent)] = []
        try db.write { w in
            try w.appendAudit(
                draft,
                mac: { seq, entry, _ in
                    macced.append((seq, entry.event))
                    return [UInt8(seq)]
                }, headMAC: { seq, mac in [UInt8(seq)] + mac })
        }
        #expect(macced.map(\.0) == [1, 2])
        #expect(macced.map(\.1) == [.tamperDetected, .imported])
        #expect(try db.auditEntries().map(\.draft.event) == [.tamperDetected, .imported])
        #expect(try db.auditHead().seq == 2)
        #expect(try db.auditHead().mac == [2, 2])
    }
}
