import Foundation
import Testing
import TokenVaultLab

@testable import VaultStore

/// What only the PostgreSQL store has: locations with connection secrets, a schema shared by many hosts, a
/// server that restarts, connections that are cut.
@Suite struct PostgresStoreTests {
    @Test func locationsThatNamePostgreSQL() {
        for location in [
            "postgresql:///vault", "postgres://db.example/vault", "POSTGRESQL://h/v", "service=tokenvault",
            "host=/run/postgresql dbname=vault", "dbname=vault",
        ] {
            #expect(PostgresLocation.isPostgreSQL(location), "\(location)")
        }
        for location in ["/home/a/vault.db", "vault.db", "postgresql.db", "./service=x", "sqlite:///x"] {
            #expect(!PostgresLocation.isPostgreSQL(location), "\(location)")
        }
    }

    /// libpq's messages come with newlines, double spaces and tabs: one line, single spaces (a refresh-all line
    /// carried the tab).
    @Test func libpqMessagesAreOneLineWithoutTabs() {
        let raw =
            "connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?\n"
        let clean = PGSession.clean(raw)
        #expect(!clean.contains("\t") && !clean.contains("\n") && !clean.contains("  "), "\(clean.debugDescription)")
        #expect(
            clean.hasSuffix(
                "failed: No such file or directory; Is the server running locally and accepting connections on that socket?"
            ), "\(clean)")
    }

    /// A password in the location is refused before any connection, and no message repeats it.
    @Test func aLocationWithAPasswordIsRefused() async throws {
        for location in [
            "postgresql://alice:s3cretpw@db.example/vault", "postgresql:///vault?host=/tmp&password=s3cretpw",
            "host=/tmp dbname=vault password=s3cretpw", "postgres://db.example/vault?sslpassword=s3cretpw",
        ] {
            do {
                _ = try VaultStores.open(location)
                Issue.record("\(location) was accepted")
            } catch let error as StoreError {
                guard case .postgres(let message, let hint) = error else {
                    Issue.record("\(error)")
                    continue
                }
                #expect(message.contains("password") && !message.contains("s3cretpw"), "\(message)")
                #expect(hint?.contains("~/.pgpass") == true)
            }
            #expect(throws: StoreError.self) {
                try VaultStores.create(location, header: sampleHeader(), auditHeadMAC: nil)
            }
            #expect(!VaultStores.warnings(forLocation: location).joined().contains("s3cretpw"))
        }
    }

    /// Without libpq on the machine, a PostgreSQL vault is refused with what to install.
    @Test func aMissingLibpqIsNamedWithWhatToInstall() async throws {
        guard case .failure(let error) = LibPQ.load("libpq-not-installed-\(UUID().uuidString).so.5") else {
            Issue.record("a library that does not exist was loaded")
            return
        }
        #expect(error.errorDescription?.contains("cannot load libpq") == true, "\(error)")
        #expect(error.hint?.contains("install libpq5") == true, "\(error)")
        #expect(throws: Never.self) { try LibPQ.load().get() }
    }

    @Test func unencryptedConnectionsToAnotherHostAreWarnedAbout() {
        let remote = PostgresLocation.sslWarning(options: ["host": "db.example"], environment: [:])
        #expect(remote?.contains("sslmode=prefer") == true && remote?.contains("db.example") == true)
        #expect(
            PostgresLocation.sslWarning(options: ["host": "db.example", "sslmode": "disable"], environment: [:]) != nil)
        #expect(
            PostgresLocation.sslWarning(options: ["host": "db.example", "sslmode": "verify-full"], environment: [:])
                == nil)
        #expect(
            PostgresLocation.sslWarning(options: ["host": "db.example"], environment: ["PGSSLMODE": "require"]) == nil)
        #expect(PostgresLocation.sslWarning(options: [:], environment: ["PGHOST": "10.0.0.5"]) != nil)
        for local in ["/run/postgresql", "localhost", "127.0.0.1", "::1"] {
            #expect(
                PostgresLocation.sslWarning(options: ["host": local, "sslmode": "disable"], environment: [:]) == nil,
                "\(local)")
        }
        #expect(PostgresLocation.sslWarning(options: [:], environment: [:]) == nil)
        #expect(VaultStores.warnings(forLocation: "postgresql://db.example/vault?sslmode=allow").count == 1)
        #expect(VaultStores.warnings(forLocation: "postgresql://db.example/vault?sslmode=verify-full").isEmpty)
    }

    @Test func anEmptyDatabaseHoldsNoVault() async throws {
        let place = try await StorePlace(.postgresql)
        #expect(throws: StoreError.vaultMissing(path: place.location)) { try place.open() }
    }

    /// A database that was never made: the server's words, and what to do.
    @Test func aMissingDatabaseIsNamedWithWhatToDo() async throws {
        let server = try await PostgresServer.sharedOffPool()
        let location = server.location(database: "never_made")
        do {
            _ = try VaultStores.open(location)
            Issue.record("opened a database that does not exist")
        } catch let error as StoreError {
            #expect(error.errorDescription?.contains("database \"never_made\" does not exist") == true, "\(error)")
            #expect(error.hint?.contains("createdb") == true, "\(error)")
        }
        // A unix socket is this machine: no warning about TLS.
        let store = try await StorePlace(.postgresql).create()
        #expect(store.locationWarnings().isEmpty)
        try store.close()
    }

    @Test func createRefusesADatabaseThatHoldsAVault() async throws {
        let place = try await StorePlace(.postgresql)
        let store = try place.create()
        try store.write { try $0.insert(sampleIntegration()) }
        try store.close()
        #expect(throws: StoreError.vaultExists(path: place.location)) { try place.create(header: sampleHeader()) }
        #expect(try place.open().integrations().map(\.name) == ["reporting"])
    }

    /// Hosts running `init` on one new database at once: one vault, one winner, the others told it exists.
    @Test func ofConcurrentCreatesOneWins() async throws {
        let place = try await StorePlace(.postgresql)
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<4 {
                group.addTask {
                    try await offPool {
                        var header = sampleHeader()
                        header.kdfSalt = [UInt8(i)]
                        do {
                            try place.create(header: header).close()
                            return "created \(i)"
                        } catch StoreError.vaultExists {
                            return "exists"
                        }
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0.hasPrefix("created") }.count == 1, "\(results)")
        #expect(results.filter { $0 == "exists" }.count == 3, "\(results)")
        let winner = Int(results.first { $0.hasPrefix("created") }!.dropFirst("created ".count))!
        #expect(try place.open().header().kdfSalt == [UInt8(winner)])
    }

    /// A database written by a newer tokenvault (a migration this one does not know) is refused, unmodified.
    @Test func aNewerSchemaIsRefusedUnmodified() async throws {
        let place = try await StorePlace(.postgresql)
        try place.create().close()
        let server = try await PostgresServer.sharedOffPool()
        try server.psql(
            place.database!,
            "INSERT INTO tokenvault_migrations VALUES ('v999_future', 0); CREATE TABLE future_thing (x INT)")
        let dump =
            "SELECT string_agg(identifier, ',' ORDER BY identifier) FROM tokenvault_migrations UNION ALL SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'"
        let before = try server.psql(place.database!, dump)
        #expect(throws: StoreError.newerSchema(path: place.location, unknown: ["v999_future"])) { try place.open() }
        #expect(throws: StoreError.vaultExists(path: place.location)) { try place.create() }
        #expect(try server.psql(place.database!, dump) == before)
    }

    /// A vault made by an older tokenvault (schema v1-v3) is upgraded on open, its data kept; v4 copies the
    /// header's single slot as 'main'.
    @Test func anOlderSchemaIsUpgradedAndKeepsItsData() async throws {
        let place = try await StorePlace(.postgresql)
        let old = try PostgresVault.create(
            place.location, header: sampleHeader(), auditHeadMAC: nil,
            migrations: Array(PostgresMigrations.all.prefix(3)))
        try old.write { try $0.insert(sampleIntegration()) }
        try old.close()
        let upgraded = try place.open()
        defer { try? upgraded.close() }
        #expect(try upgraded.integrations().map(\.name) == ["reporting"])
        let header = sampleHeader()
        #expect(
            try upgraded.keySlots() == [
                KeySlot(
                    name: "main", kdfAlgorithm: header.kdfAlgorithm, kdfSalt: header.kdfSalt,
                    kdfOpsLimit: header.kdfOpsLimit,
                    kdfMemLimit: header.kdfMemLimit, masterKeySealed: header.masterKeySealed,
                    createdAt: header.createdAt,
                    changedAt: header.passphraseChangedAt)
            ])
        let applied = try PostgresServer.shared().psql(
            place.database!, "SELECT identifier FROM tokenvault_migrations ORDER BY 1")
        #expect(applied.split(separator: "\n").map(String.init) == PostgresMigrations.all.map(\.identifier))
    }

    /// A server restart between operations: the next read connects again and works, and so do a write and a
    /// refresh lock.
    @Test(.timeLimit(.minutes(1))) func theNextOperationAfterAServerRestartWorks() async throws {
        // A server of its own: restarting the shared one would cut the other tests' connections.
        let server = try await PostgresServer.startOffPool()
        defer { server.stop() }
        let location = server.location(database: try server.createDatabase())
        let store = try VaultStores.create(location, header: sampleHeader(), auditHeadMAC: headMAC(0, []))
        defer { try? store.close() }
        try store.write { try $0.insert(sampleIntegration()) }
        let alice = Account(name: "alice", integrationId: UUID().uuidString.lowercased(), createdAt: t0, updatedAt: t0)
        try await store.lockForRefresh(alice, timeout: 0, sleep: { _ in }).release()

        try server.restart()
        #expect(try store.integrations().map(\.name) == ["reporting"])
        try server.restart()
        try append(store, draft())
        #expect(try chainProblems(store).isEmpty)
        try server.restart()
        try await store.lockForRefresh(alice, timeout: 0, sleep: { _ in }).release()

        // A lock held across a restart is gone with its connection, and says so; another store can take it.
        let held = try await store.lockForRefresh(alice, timeout: 0, sleep: { _ in })
        #expect(await held.isStillHeld())
        try server.restart()
        #expect(await !held.isStillHeld())
        let other = try VaultStores.open(location)
        defer { try? other.close() }
        let taken = try await other.lockForRefresh(alice, timeout: 0, sleep: { _ in })
        #expect(await taken.isStillHeld())
        held.release()
        #expect(await taken.isStillHeld(), "releasing the lost lock released the other store's")
        taken.release()
    }

    /// A connection cut in the middle of a write transaction (before COMMIT): the server rolled it back, so the
    /// transaction runs once more on a new connection and everything is stored once. Cut every time, it fails
    /// clearly after the second run, nothing stored.
    @Test(arguments: [1, 2])
    func aWriteCutBeforeCommitRunsOnceMoreOnANewConnection(cuts: Int) async throws {
        let place = try await StorePlace(.postgresql)
        let store = try place.create(auditHeadMAC: headMAC(0, []))
        defer { try? store.close() }
        let server = try await PostgresServer.sharedOffPool()
        nonisolated(unsafe) var runs = 0
        do {
            try store.write { w in
                runs += 1
                try w.insert(sampleIntegration("first"))
                try w.appendAudit(draft(), mac: chainMAC, headMAC: headMAC)
                if runs <= cuts {
                    let session = (w as! PostgresTransaction).session
                    let pid = try session.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
                    try server.psql("postgres", "SELECT pg_terminate_backend(\(pid))")
                }
                try w.insert(sampleIntegration("second"))
            }
            #expect(cuts == 1, "the write went through")
        } catch let error as StoreError {
            #expect(cuts == 2, "\(error)")
            guard case .postgres(let message, _) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(
                message.contains("lost before a write was committed") && message.contains("nothing was stored"),
                "\(message)")
        }
        #expect(runs == 2)
        #expect(try store.integrations().map(\.name) == (cuts == 1 ? ["first", "second"] : []))
        #expect(try store.auditEntries().count == (cuts == 1 ? 1 : 0))
        #expect(try chainProblems(store).isEmpty)
    }

    /// A connection cut while COMMIT runs: whether the server committed is unknown, and the error says so (and
    /// the body is not run again). A deferred trigger makes this COMMIT slow enough to be cut.
    @Test func aCommitWhoseOutcomeIsUnknownIsReportedSoAndNotRetried() async throws {
        let place = try await StorePlace(.postgresql)
        let store = try place.create()
        defer { try? store.close() }
        let server = try await PostgresServer.sharedOffPool()
        try server.psql(
            place.database!,
            """
            CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(20); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON integration DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION slow_commit();
            """)
        let database = place.database!
        let cutter = Task.detached {
            // Cut the connection once it is inside COMMIT.
            for _ in 0..<200 {
                let cut = try server.psql(
                    database,
                    """
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND query = 'COMMIT' AND pid <> pg_backend_pid()
                    """)
                if cut == "1" { return true }
                try await Task.sleep(for: .milliseconds(25))
            }
            return false
        }
        let runs = Counter()
        do {
            try await offPool {
                try store.write { w in
                    runs.increment()
                    try w.insert(sampleIntegration())
                }
            }
            Issue.record("the write went through")
        } catch let error as StoreError {
            guard case .postgres(let message, let hint) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(
                message.contains("while committing") && message.contains("may or may not have been stored"),
                "\(message)")
            #expect(hint?.contains("look before") == true)
        }
        #expect(try await cutter.value)
        #expect(runs.value == 1)
        // The next read connects again.
        #expect(try store.header() == sampleHeader())
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
