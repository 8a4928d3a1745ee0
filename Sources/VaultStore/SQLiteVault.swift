import Foundation
import GRDB
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The vault file: a real SQLite database that stores plain metadata and opaque sealed bytes (the SQLite
/// implementation of ``VaultStorage``). It knows nothing of cryptography; the layer above seals and opens.
///
/// Built on any GRDB `DatabaseWriter`, in the way of GRDB's AppDatabase: the file (``create(at:header:auditHeadMAC:)``,
/// ``open(at:)``) for tokenvault, an in-memory database (``inMemory(header:auditHeadMAC:)``) for unit tests.
public final class SQLiteVault: VaultStorage, Sendable {
    /// The file's path (":memory:" for an in-memory vault).
    public let path: String
    private let queue: any DatabaseWriter
    /// Per-account refresh locks: lock files beside the vault (across processes), or in this process for an
    /// in-memory vault.
    private let memoryLocks: InProcessRefreshLocks?
    /// The file this connection holds, counted in ``OpenVaultFiles`` while this value lives.
    private let file: OpenVaultFiles.FileID?

    private init(path: String, queue: any DatabaseWriter, inMemory: Bool = false) {
        self.path = path
        self.queue = queue
        self.memoryLocks = inMemory ? InProcessRefreshLocks() : nil
        self.file = inMemory ? nil : OpenVaultFiles.FileID(path: path)
        if let file { OpenVaultFiles.opened(file) }
    }

    deinit {
        if let file { OpenVaultFiles.released(file) }
    }

    public var location: String { path }

    /// A vault in memory, for unit tests of the layers above: the same schema and header as a file.
    public static func inMemory(header: VaultHeader, auditHeadMAC: [UInt8]? = nil) throws -> SQLiteVault {
        let queue = try DatabaseQueue()
        try VaultMigrations.migrator().migrate(queue)
        try insertHeader(header, auditHeadMAC: auditHeadMAC, into: queue)
        return SQLiteVault(path: ":memory:", queue: queue, inMemory: true)
    }

    private static func insertHeader(_ header: VaultHeader, auditHeadMAC: [UInt8]?, into queue: any DatabaseWriter)
        throws
    {
        try queue.write { db in
            try db.insert(
                into: "vault_meta",
                [
                    "id": 1, "kdf_algorithm": header.kdfAlgorithm, "kdf_salt": Data(header.kdfSalt),
                    "kdf_opslimit": Int64(header.kdfOpsLimit), "kdf_memlimit": Int64(header.kdfMemLimit),
                    "master_key_sealed": Data(header.masterKeySealed), "created_at": header.createdAt.unix,
                    "passphrase_changed_at": header.passphraseChangedAt.unix,
                    "audit_head_seq": 0, "audit_head_mac": auditHeadMAC.map { Data($0) },
                ])
        }
    }

    // MARK: Opening and creating

    /// SQLite settings for durability and for several tokenvault processes at once: WAL with synchronous=FULL, and
    /// writers that take the write lock at BEGIN (IMMEDIATE) with a busy timeout instead of failing with SQLITE_BUSY.
    private static func configuration() -> Configuration {
        var config = Configuration()
        // A rotated refresh token must survive a power cut: FULL syncs every commit, even in WAL mode.
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        // WAL is set once, at creation, and persists in the file. Not through `config.journalMode = .wal`:
        // GRDB then creates and drops a table whenever the -wal file is absent, which would modify the file on
        // every read-only command (and a wrong passphrase must leave it byte-for-byte unchanged).
        // Other processes (cron's refresh-all, a shell's env) write briefly; wait for them rather than fail.
        // GRDB opens write transactions with BEGIN IMMEDIATE, so a busy database is met at BEGIN, where waiting works.
        config.busyMode = .timeout(30)
        return config
    }

    /// Creates a new vault: the directory 0700 and the file 0600 made by us before SQLite opens it,
    /// whatever the umask, so that `-wal` and `-shm` inherit 0600.
    /// `auditHeadMAC` is the keyed MAC of the empty log's head (entry 0), so that an emptied log is told from a
    /// new one.
    public static func create(at path: String, header: VaultHeader, auditHeadMAC: [UInt8]? = nil) throws -> SQLiteVault
    {
        let url = URL(fileURLWithPath: path)
        try makePrivateDirectory(url.deletingLastPathComponent().path)
        let fd = Glibc.open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if fd < 0 {
            if errno == EEXIST { throw StoreError.vaultExists(path: path) }
            throw StoreError.fileSystem(path: path, reason: String(cString: strerror(errno)))
        }
        let chmodResult = fchmod(fd, 0o600)
        Glibc.close(fd)
        do {
            guard chmodResult == 0 else { throw StoreError.fileSystem(path: path, reason: "cannot set mode 0600") }
            let queue = try DatabaseQueue(path: path, configuration: configuration())
            try queue.writeWithoutTransaction { db in
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                guard mode?.lowercased() == "wal" else {
                    throw StoreError.database("cannot switch the vault to WAL mode (got \(mode ?? "nothing"))")
                }
            }
            try VaultMigrations.migrator().migrate(queue)
            try insertHeader(header, auditHeadMAC: auditHeadMAC, into: queue)
            return SQLiteVault(path: path, queue: queue)
        } catch {
            // Nothing half-made is left behind.
            for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
            throw mapped(error)
        }
    }

    /// Opens an existing vault. A file that is not a vault, or one written by a newer schema, is refused
    /// without being modified; an older schema is upgraded in place.
    public static func open(at path: String) throws -> SQLiteVault {
        try open(at: path, migrations: VaultMigrations.all)
    }

    /// `migrations` is a parameter so that tests can prove an upgrade keeps data.
    static func open(at path: String, migrations: [VaultMigrations.Migration]) throws -> SQLiteVault {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StoreError.vaultMissing(path: path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw StoreError.notAVault(path: path, reason: "not a regular file")
        }
        // A vault this process already has open was checked then, and must not be read through a descriptor of
        // our own: closing it would drop the locks SQLite holds on the file (see OpenVaultFiles).
        if !OpenVaultFiles.isOpen(OpenVaultFiles.FileID(info)) {
            try checkSQLiteHeader(path)
        }
        // One ordinary connection looks before anything is written: reading changes nothing (WAL was set at
        // creation, not through GRDB's WAL setup, which writes), and only a vault with an older schema is migrated.
        // A read-only probe connection was tried first and, under heavy concurrency, once saw a transient
        // "malformed" while another process checkpointed; a damaged verdict is also double-checked below.
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try openChecked(at: path, migrations: migrations)
            } catch StoreError.damaged(let p, let reason) where attempt < 3 {
                _ = (p, reason)
                usleep(50_000)
            }
        }
    }

    private static func openChecked(at path: String, migrations: [VaultMigrations.Migration]) throws -> SQLiteVault {
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration())
            let needsMigration = try queue.read { db in
                let applied = try VaultMigrations.migrator(migrations).appliedIdentifiers(db)
                guard applied.contains(migrations[0].identifier), try db.tableExists("vault_meta") else {
                    throw StoreError.notAVault(path: path, reason: "an SQLite database without tokenvault's tables")
                }
                let known = Set(migrations.map(\.identifier))
                let unknown = applied.subtracting(known)
                if !unknown.isEmpty { throw StoreError.newerSchema(path: path, unknown: unknown.sorted()) }
                guard try Row.fetchOne(db, sql: "SELECT 1 FROM vault_meta WHERE id = 1") != nil else {
                    throw StoreError.notAVault(path: path, reason: "its header row is missing")
                }
                return applied.count < known.count
            }
            if needsMigration { try VaultMigrations.migrator(migrations).migrate(queue) }
            return SQLiteVault(path: path, queue: queue)
        } catch {
            throw mapped(error, path: path)
        }
    }

    private static func checkSQLiteHeader(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw StoreError.fileSystem(path: path, reason: "cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { try? handle.close() }
        let magic = (try? handle.read(upToCount: 16)) ?? Data()
        if magic.isEmpty { throw StoreError.notAVault(path: path, reason: "the file is empty") }
        guard magic == Data("SQLite format 3\0".utf8) else {
            throw StoreError.notAVault(path: path, reason: "not an SQLite database")
        }
    }

    static func makePrivateDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw StoreError.fileSystem(path: path, reason: "not a directory") }
            return
        }
        try makePrivateDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
            throw StoreError.fileSystem(path: path, reason: String(cString: strerror(errno)))
        }
        chmod(path, 0o700)  // mkdir's mode is filtered by the umask
    }

    /// Turns SQLite's errors into words; a damaged file is "not a vault", with SQLite's reason.
    static func mapped(_ error: any Error, path: String? = nil) -> any Error {
        guard let dbError = error as? DatabaseError else { return error }
        switch dbError.resultCode {
        case .SQLITE_CORRUPT:
            return StoreError.damaged(path: path ?? "", reason: dbError.message ?? "corrupt")
        case .SQLITE_NOTADB:
            return StoreError.notAVault(path: path ?? "", reason: dbError.message ?? "not a database")
        case .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_PERM:
            return StoreError.fileSystem(path: path ?? "the vault", reason: dbError.message ?? "cannot open")
        case .SQLITE_IOERR:
            // The extended code says which system call failed (SQLITE_IOERR_SHMMAP, _FSYNC, _SHORT_READ, …).
            return StoreError.database(
                "\(dbError.message ?? "disk I/O error") (extended code \(dbError.extendedResultCode.rawValue))")
        default:
            return StoreError.database(dbError.message ?? "\(dbError.resultCode)")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try queue.read(body) } catch { throw Self.mapped(error, path: path) }
    }

    /// One write transaction (BEGIN IMMEDIATE). Never hold it across a network call.
    @discardableResult
    public func write<T>(_ body: (any VaultTransaction) throws -> T) throws -> T {
        do { return try queue.write { db in try body(VaultWriter(db: db)) } } catch {
            throw Self.mapped(error, path: path)
        }
    }

    /// The same, suspending instead of blocking a thread of the small async pool while SQLite waits or syncs.
    @discardableResult
    public func writeAsync<T: Sendable>(_ body: @escaping @Sendable (any VaultTransaction) throws -> T) async throws
        -> T
    {
        do { return try await queue.write { db in try body(VaultWriter(db: db)) } } catch {
            throw Self.mapped(error, path: path)
        }
    }

    /// An account read without blocking a thread of the async pool.
    public func accountAsync(named name: String) async throws -> Account {
        do {
            return try await queue.read { db in try VaultWriter(db: db).account(named: name) }
        } catch { throw Self.mapped(error, path: path) }
    }

    // MARK: Reading

    public func header() throws -> VaultHeader {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM vault_meta WHERE id = 1") else {
                throw StoreError.notAVault(path: path, reason: "its header row is missing")
            }
            return VaultHeader(row: row)
        }
    }

    public func integrations() throws -> [Integration] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM integration ORDER BY name").map(Integration.init(row:))
        }
    }

    public func integration(named name: String) throws -> Integration {
        try read { db in try VaultWriter(db: db).integration(named: name) }
    }

    public func integration(id: String) throws -> Integration? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM integration WHERE id = ?", arguments: [id]).map(
                Integration.init(row:))
        }
    }

    public func accounts() throws -> [Account] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM account ORDER BY name").map(Account.init(row:)) }
    }

    public func account(named name: String) throws -> Account {
        try read { db in try VaultWriter(db: db).account(named: name) }
    }

    /// Every account's plain metadata, for `list`: columns read by position and no sealed bytes copied, so
    /// 100,000 accounts list quickly.
    public func accountSummaries() throws -> [AccountSummary] {
        try read { db in
            let cursor = try Row.fetchCursor(
                db,
                sql: """
                    SELECT name, integration_id, access_token_sealed IS NOT NULL, refresh_token_sealed IS NOT NULL,
                           access_expires_at, refresh_expires_at, granted_scopes, email, display_name, org_id, state,
                           updated_at, id
                    FROM account ORDER BY name
                    """)
            var summaries: [AccountSummary] = []
            while let row = try cursor.next() {
                summaries.append(
                    AccountSummary(
                        name: try checkedName(row[0], ofRowKind: "account", id: row[12]), integrationId: row[1],
                        hasAccessToken: row[2], hasRefreshToken: row[3],
                        accessExpiresAt: (row[4] as Double?).map(Date.init(unix:)),
                        refreshExpiresAt: (row[5] as Double?).map(Date.init(unix:)),
                        grantedScopes: (row[6] as String?).map { $0.split(separator: " ").map(String.init) },
                        email: row[7], displayName: row[8], orgId: row[9],
                        state: AccountState(rawValue: row[10]) ?? .needsReauth, updatedAt: Date(unix: row[11])))
            }
            return summaries
        }
    }

    /// Accounts whose access token lapses before `date`, or (when given) whose pair was stored after
    /// `storedAfter` (a time in the future: its expiries cannot be trusted), found from plain metadata without
    /// decrypting anything.
    public func accounts(accessExpiringBefore date: Date, orStoredAfter storedAfter: Date?) throws -> [Account] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM account WHERE access_expires_at IS NULL OR access_expires_at < ? OR updated_at > ?
                    ORDER BY name
                    """, arguments: [date.unix, (storedAfter ?? .distantFuture).unix]
            ).map(Account.init(row:))
        }
    }

    public func accountCount(integrationId: String) throws -> Int {
        try read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM account WHERE integration_id = ?", arguments: [integrationId]) ?? 0
        }
    }

    public func auditEntries(account: String?) throws -> [AuditEntry] {
        try read { db in
            let rows =
                if let account {
                    try Row.fetchAll(
                        db, sql: "SELECT * FROM audit_entry WHERE account = ? ORDER BY seq", arguments: [account])
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM audit_entry ORDER BY seq")
                }
            return try rows.map(AuditEntry.init(row:))
        }
    }

    /// Whether the newest successful refresh through this integration came back with a new refresh token (a
    /// provider that rotates them); false when none is recorded.
    public func refreshTokensRotate(integration name: String) throws -> Bool {
        try read { db in
            try Bool.fetchOne(
                db,
                sql: """
                    SELECT refresh_token_changed FROM audit_entry
                    WHERE integration = ? AND event = 'refreshed' AND refresh_token_changed IS NOT NULL
                    ORDER BY seq DESC LIMIT 1
                    """, arguments: [name]) ?? false
        }
    }

    public func pairStoredTimes() throws -> [String: Date] {
        try read { db in
            Dictionary(
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT account, at FROM audit_entry WHERE seq IN
                        (SELECT MAX(seq) FROM audit_entry WHERE event IN ('imported', 'authorized', 'refreshed') GROUP BY account)
                        """
                ).map { ($0["account"] as String, Date(unix: $0["at"])) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func notifiedEvents() throws -> [String: String] {
        try read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT account, event FROM notification").map {
                    ($0["account"] as String, $0["event"] as String)
                })
        }
    }

    public func newestAuditEntry() throws -> AuditEntry? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM audit_entry ORDER BY seq DESC LIMIT 1").map(AuditEntry.init(row:))
        }
    }

    public func newestPairEntry(account: String) throws -> (entry: AuditEntry, previousMAC: [UInt8])? {
        try read { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql:
                            "SELECT * FROM audit_entry WHERE account = ? AND pair IS NOT NULL ORDER BY seq DESC LIMIT 1"
                    ),
                    arguments: [account])
            else { return nil }
            let entry = try AuditEntry(row: row)
            let previous = try Data.fetchOne(
                db.cachedStatement(sql: "SELECT mac FROM audit_entry WHERE seq < ? ORDER BY seq DESC LIMIT 1"),
                arguments: [entry.seq])
            return (entry, previous.map { [UInt8]($0) } ?? [])
        }
    }

    /// The newest audit entry's number and the keyed MAC over it, as the last append left them.
    public func auditHead() throws -> (seq: Int64, mac: [UInt8]) {
        try read { db in
            let row = try Row.fetchOne(db, sql: "SELECT audit_head_seq, audit_head_mac FROM vault_meta WHERE id = 1")
            return (row?["audit_head_seq"] ?? 0, (row?["audit_head_mac"] as Data?).map { [UInt8]($0) } ?? [])
        }
    }

    public func keySlots() throws -> [KeySlot] {
        try read { db in try VaultWriter(db: db).keySlots() }
    }

    /// Everything, in one read transaction (one snapshot of the WAL), for `tokenvault copy`.
    public func snapshot() throws -> VaultSnapshot {
        try read { db in
            guard let meta = try Row.fetchOne(db, sql: "SELECT * FROM vault_meta WHERE id = 1") else {
                throw StoreError.notAVault(path: path, reason: "its header row is missing")
            }
            return VaultSnapshot(
                header: VaultHeader(row: meta), auditHeadSeq: meta["audit_head_seq"] ?? 0,
                auditHeadMAC: (meta["audit_head_mac"] as Data?).map { [UInt8]($0) },
                keySlots: try VaultWriter(db: db).keySlots(),
                integrations: try Row.fetchAll(db, sql: "SELECT * FROM integration ORDER BY name").map(
                    Integration.init(row:)),
                accounts: try Row.fetchAll(db, sql: "SELECT * FROM account ORDER BY name").map(Account.init(row:)),
                auditEntries: try Row.fetchAll(db, sql: "SELECT * FROM audit_entry ORDER BY seq").map(
                    AuditEntry.init(row:)),
                notifications: try Row.fetchAll(db, sql: "SELECT account, event, at FROM notification ORDER BY account")
                    .map {
                        NotificationRecord(account: $0["account"], event: $0["event"], at: Date(unix: $0["at"]))
                    })
        }
    }

    /// Moves everything from the WAL into the main file and truncates the WAL, so that deleted secrets
    /// (already zeroed in place by secure_delete) linger in neither file.
    public func purgeDeletedData() throws {
        do {
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch { throw Self.mapped(error, path: path) }
    }

    public func close() throws { try queue.close() }

    // MARK: Refresh locks

    public func checkRefreshLocks() throws {
        guard memoryLocks == nil else { return }
        try FileAccountLock.checkDirectory(vaultPath: path)
    }

    public func lockForRefresh(
        _ account: Account, timeout: TimeInterval,
        sleep: @Sendable (Double) async throws -> Void
    ) async throws -> any RefreshLock {
        if let memoryLocks { return try await memoryLocks.acquire(account, timeout: timeout) }
        return try await FileAccountLock.acquire(vaultPath: path, account: account, timeout: timeout, sleep: sleep)
    }

    // MARK: Where it lives

    /// A warning when the directory that really holds the vault is writable by group or others: they could add,
    /// replace or hold its `-wal`, `-shm` and lock files (tokenvault refuses a lock directory that is not yours).
    public func locationWarnings() -> [String] {
        guard memoryLocks == nil else { return [] }
        return Self.sharedDirectoryWarning(vaultPath: path).map { [$0] } ?? []
    }

    public static func sharedDirectoryWarning(vaultPath: String) -> String? {
        let real = VaultLocation.file(vaultPath).canonical.text
        let directory = URL(fileURLWithPath: real).deletingLastPathComponent().path
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & 0o022 != 0 else { return nil }
        return
            "the vault's directory \(directory) is writable by group or others (mode \(String(info.st_mode & 0o7777, radix: 8))): other users can add or replace files beside the vault; keep the vault in a directory only you can write (chmod 700)"
    }
}

/// Refresh locks of an in-memory vault: one holder per account in this process.
final class InProcessRefreshLocks: Sendable {
    private let held = Mutex<Set<String>>([])

    final class Held: RefreshLock {
        let owner: InProcessRefreshLocks
        let id: String
        init(owner: InProcessRefreshLocks, id: String) {
            self.owner = owner
            self.id = id
        }
        func release() { _ = owner.held.withLock { $0.remove(id) } }
    }

    func acquire(_ account: Account, timeout: TimeInterval) async throws -> any RefreshLock {
        let deadline = Date().addingTimeInterval(timeout)
        while !held.withLock({ $0.insert(account.id).inserted }) {
            guard Date() < deadline else {
                throw StoreError.lockBusy("account '\(account.name)' stayed locked for \(Int(timeout)) s", hint: nil)
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return Held(owner: self, id: account.id)
    }
}

/// The operations allowed inside one write transaction.
public struct VaultWriter: VaultTransaction {
    let db: Database

    public func integration(named name: String) throws -> Integration {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM integration WHERE name = ?", arguments: [name]) else {
            throw StoreError.noSuchIntegration(name)
        }
        return try Integration(row: row)
    }

    public func account(named name: String) throws -> Account {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM account WHERE name = ?", arguments: [name]) else {
            throw StoreError.noSuchAccount(name)
        }
        return try Account(row: row)
    }

    public func accountExists(named name: String) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM account WHERE name = ?)"), arguments: [name]) ?? false
    }

    public func updateHeader(_ header: VaultHeader) throws {
        try db.execute(
            sql: """
                UPDATE vault_meta SET kdf_algorithm = ?, kdf_salt = ?, kdf_opslimit = ?, kdf_memlimit = ?,
                    master_key_sealed = ?, passphrase_changed_at = ? WHERE id = 1
                """,
            arguments: [
                header.kdfAlgorithm, Data(header.kdfSalt), Int64(header.kdfOpsLimit),
                Int64(header.kdfMemLimit), Data(header.masterKeySealed), header.passphraseChangedAt.unix,
            ])
    }

    public func insert(_ integration: Integration) throws {
        if try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM integration WHERE name = ?)", arguments: [integration.name]) == true
        {
            throw StoreError.duplicateIntegration(integration.name)
        }
        try IntegrationRecord(integration).insert(db)
    }

    /// Stores an edited integration (its name and id stay); refused if another process changed its sealed
    /// client secret since `previousSecret` was read.
    public func update(_ integration: Integration, previousSecret: [UInt8]) throws {
        try db.execute(
            sql: """
                UPDATE integration SET client_id = ?, client_secret_sealed = ?, redirect_uri = ?, scopes = ?, api_base = ?,
                    env_var = ? WHERE id = ? AND client_secret_sealed = ?
                """,
            arguments: [
                integration.clientId, Data(integration.clientSecretSealed), integration.redirectURI,
                integration.scopes.joined(separator: " "), integration.apiBase, integration.envVar,
                integration.id, Data(previousSecret),
            ])
        guard db.changesCount == 1 else {
            throw StoreError.database(
                "integration '\(integration.name)' changed while it was being edited; run the edit again")
        }
    }

    public func deleteIntegration(id: String) throws {
        try db.execute(sql: "DELETE FROM account WHERE integration_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM integration WHERE id = ?", arguments: [id])
    }

    /// Replaces an integration's sealed client secret (a re-seal under a new label), unless another process did first.
    public func replaceClientSecret(integrationId: String, old: [UInt8], new: [UInt8]) throws {
        try db.execute(
            sql: "UPDATE integration SET client_secret_sealed = ? WHERE id = ? AND client_secret_sealed = ?",
            arguments: [Data(new), integrationId, Data(old)])
    }

    public func insert(_ account: Account) throws {
        if try accountExists(named: account.name) { throw StoreError.duplicateAccount(account.name) }
        try AccountRecord(account).insert(db)
    }

    public func update(_ account: Account) throws {
        try AccountRecord(account).update(db)
    }

    public func setNotified(account: String, event: String?, at: Date) throws {
        if let event {
            try db.execute(
                sql:
                    "INSERT INTO notification (account, event, at) VALUES (?, ?, ?) ON CONFLICT(account) DO UPDATE SET event = excluded.event, at = excluded.at",
                arguments: [account, event, at.unix])
        } else {
            try db.execute(sql: "DELETE FROM notification WHERE account = ?", arguments: [account])
        }
    }

    public func deleteAccount(id: String) throws {
        try db.execute(sql: "DELETE FROM account WHERE id = ?", arguments: [id])
    }

    // MARK: Key slots

    public func keySlots() throws -> [KeySlot] {
        try Row.fetchAll(db, sql: "SELECT * FROM key_slot ORDER BY created_at, name").map(KeySlot.init(row:))
    }

    public func insert(_ slot: KeySlot) throws {
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM key_slot WHERE name = ?)", arguments: [slot.name])
            == true
        {
            throw StoreError.duplicateKeySlot(slot.name)
        }
        try db.execute(
            sql: """
                INSERT INTO key_slot (name, kdf_algorithm, kdf_salt, kdf_opslimit, kdf_memlimit, public_key, secret_key_sealed,
                    master_key_sealed, created_at, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: StatementArguments(slot.databaseValues))
    }

    public func update(_ slot: KeySlot) throws {
        try db.execute(
            sql: """
                UPDATE key_slot SET kdf_algorithm = ?, kdf_salt = ?, kdf_opslimit = ?, kdf_memlimit = ?, public_key = ?,
                    secret_key_sealed = ?, master_key_sealed = ?, created_at = ?, changed_at = ? WHERE name = ?
                """, arguments: StatementArguments(Array(slot.databaseValues.dropFirst()) + [slot.name]))
        guard db.changesCount == 1 else { throw StoreError.noSuchKeySlot(slot.name) }
    }

    public func deleteKeySlot(named name: String) throws {
        try db.execute(sql: "DELETE FROM key_slot WHERE name = ?", arguments: [name])
        guard db.changesCount == 1 else { throw StoreError.noSuchKeySlot(name) }
    }

    public func deleteAllKeySlots() throws {
        try db.execute(sql: "DELETE FROM key_slot")
    }

    // MARK: Audit entries as they are (copy) and re-keyed (keys rotate)

    public func insertAuditEntries(_ entries: [AuditEntry], headSeq: Int64, headMAC: [UInt8]?) throws {
        for entry in entries { try insert(entry.draft, seq: entry.seq, mac: entry.mac) }
        try db.execute(
            sql: "UPDATE vault_meta SET audit_head_seq = ?, audit_head_mac = ? WHERE id = 1",
            arguments: [headSeq, headMAC.map { Data($0) }])
    }

    /// The append-only triggers are dropped and made again inside this one transaction: nothing else can write
    /// meanwhile, and a failure rolls the whole change back, the triggers included.
    public func rewriteAuditMACs(_ macs: [Int64: [UInt8]], headMAC: [UInt8]) throws {
        try db.execute(sql: "DROP TRIGGER audit_entry_no_update")
        let statement = try db.makeStatement(sql: "UPDATE audit_entry SET mac = ? WHERE seq = ?")
        for (seq, mac) in macs {
            try statement.execute(arguments: [Data(mac), seq])
            guard db.changesCount == 1 else { throw StoreError.database("audit entry \(seq) is missing") }
        }
        try db.execute(
            sql: """
                CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
                """)
        try db.execute(sql: "UPDATE vault_meta SET audit_head_mac = ? WHERE id = 1", arguments: [Data(headMAC)])
    }

    /// Appends an audit entry. `mac` receives the entry's sequence number, the entry and the previous entry's MAC
    /// (empty for the first) and returns this entry's MAC, computed inside the same transaction so the chain
    /// cannot fork when several processes write. `headMAC` seals the new head (number and MAC) into the header
    /// row, so that removing the newest entries is detected too.
    ///
    /// Before appending, the recorded head is checked against the newest entry. When they disagree (entries were
    /// deleted, the head was reset or its MAC removed), a `tamper-detected` entry is appended first: the entry
    /// still goes in (a refreshed pair must never be lost over the log), but the chain can no longer be made to
    /// look intact by restarting it, and `audit --verify` reports it.
    @discardableResult
    public func appendAudit(
        _ draft: AuditDraft, mac: (_ seq: Int64, _ draft: AuditDraft, _ previousMAC: [UInt8]) throws -> [UInt8],
        headMAC: (_ seq: Int64, _ entryMAC: [UInt8]) throws -> [UInt8]
    ) throws -> AuditEntry {
        // Cached statements: an import or a refresh-all appends one entry per account, and parsing the same SQL
        // each time showed in the profile.
        let last = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT seq, mac FROM audit_entry ORDER BY seq DESC LIMIT 1"))
        let headRow = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT audit_head_seq, audit_head_mac FROM vault_meta WHERE id = 1"))
        let headSeq: Int64 = headRow?["audit_head_seq"] ?? 0
        let storedHead = (headRow?["audit_head_mac"] as Data?).map { [UInt8]($0) } ?? []
        let entry = try appendToAuditChain(
            draft, lastSeq: last?["seq"] ?? 0, lastMAC: (last?["mac"] as Data?).map { [UInt8]($0) } ?? [],
            headSeq: headSeq, storedHead: storedHead, mac: mac, headMAC: headMAC,
            insert: { try insert($0, seq: $1, mac: $2) })
        try db.cachedStatement(sql: "UPDATE vault_meta SET audit_head_seq = ?, audit_head_mac = ? WHERE id = 1")
            .execute(arguments: [entry.seq, Data(try headMAC(entry.seq, entry.mac))])
        return entry
    }

    private func insert(_ d: AuditDraft, seq: Int64, mac: [UInt8]) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO audit_entry (seq, at, account, integration, event, trigger, outcome, access_expires_before,
                    access_expires_after, refresh_expires_before, refresh_expires_after, refresh_token_changed, detail, mac, pair)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            seq, d.at.unix, d.account, d.integration, d.event.rawValue, d.trigger.rawValue, d.outcome.rawValue,
            d.accessExpiresBefore?.unix, d.accessExpiresAfter?.unix, d.refreshExpiresBefore?.unix,
            d.refreshExpiresAfter?.unix, d.refreshTokenChanged.map { $0 ? 1 : 0 }, d.detail, Data(mac), d.pair,
        ])
    }
}

/// The vault files this process has open through SQLite, by device and inode, with how many ``SQLiteVault`` values
/// hold each. POSIX advisory locks belong to a process and a file, not to a descriptor: closing any descriptor of the
/// file drops every lock the process holds on it, SQLite's included (https://sqlite.org/howtocorrupt.html §2.2).
/// Without its shared lock, another process closing its connection believes it is the last one, checkpoints and
/// deletes the `-wal` file, and this process's later commits go to the deleted file: other processes never see them
/// (a refresh elsewhere then sends a rotated refresh token again) and they are lost when this process exits.
enum OpenVaultFiles {
    struct FileID: Hashable {
        var device: UInt64
        var inode: UInt64

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }

        init?(path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            self.init(info)
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var counts: [FileID: Int] = [:]

    static func opened(_ file: FileID) { lock.withLock { counts[file, default: 0] += 1 } }

    static func released(_ file: FileID) {
        lock.withLock {
            let remaining = counts[file, default: 1] - 1
            counts[file] = remaining > 0 ? remaining : nil
        }
    }

    static func isOpen(_ file: FileID) -> Bool { lock.withLock { counts[file] != nil } }
}
