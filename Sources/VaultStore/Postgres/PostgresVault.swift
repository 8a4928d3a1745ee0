import Foundation

/// A vault in a PostgreSQL database (the second implementation of ``VaultStorage``), for a team's or a fleet's
/// hosts sharing one vault. The same sealed bytes, labels and audit MAC chain as the SQLite file: the server sees
/// no secret and no key.
///
/// Through libpq, loaded at the first use (``LibPQ``). Two connections, each guarded by a lock (libpq's are not
/// thread-safe): one for reads and write transactions, one that holds only the per-account refresh locks, so that
/// no transaction is ever open while a refresh talks to its provider.
public final class PostgresVault: VaultStorage, Sendable {
    /// The location as given: a URI or connection string without a password.
    public let location: String
    private let connection: PostgresConnection
    private let refreshLocks: PostgresRefreshLocks
    private let environment: [String: String]

    private init(location: String, connection: PostgresConnection, pq: LibPQ) {
        self.location = location
        self.connection = connection
        refreshLocks = PostgresRefreshLocks(connection: PostgresConnection(pq: pq, location: location, label: "locks"))
        environment = ProcessInfo.processInfo.environment
    }

    // MARK: Opening and creating

    /// Opens the vault in the database `location` names. A database without one, another program's tables or a
    /// newer schema are refused without a change; an older schema is upgraded (under the migrations' lock).
    public static func open(_ location: String) throws -> PostgresVault {
        try open(location, migrations: PostgresMigrations.all)
    }

    /// `migrations` is a parameter so that tests can prove an upgrade and a newer schema's refusal.
    static func open(_ location: String, migrations: [PostgresMigrations.Migration]) throws -> PostgresVault {
        let (pq, connection) = try connect(location)
        let needsMigration = try connection.read { session in
            try PostgresMigrations.check(
                try PostgresMigrations.state(session), location: location, migrations: migrations)
        }
        if needsMigration {
            try connection.write { session in
                try PostgresMigrations.migrate(session, location: location, migrations: migrations, creating: nil)
            }
        }
        return PostgresVault(location: location, connection: connection, pq: pq)
    }

    /// Creates a vault in an existing database (made by its administrator), refusing one that already holds a
    /// vault. The schema and the header go in one transaction, under the migrations' lock: of two hosts creating
    /// at once, one wins and the other is told the vault exists.
    public static func create(_ location: String, header: VaultHeader, auditHeadMAC: [UInt8]?) throws -> PostgresVault {
        try create(location, header: header, auditHeadMAC: auditHeadMAC, migrations: PostgresMigrations.all)
    }

    static func create(
        _ location: String, header: VaultHeader, auditHeadMAC: [UInt8]?,
        migrations: [PostgresMigrations.Migration]
    ) throws -> PostgresVault {
        let (pq, connection) = try connect(location)
        try connection.write { session in
            try PostgresMigrations.migrate(
                session, location: location, migrations: migrations,
                creating: (header, auditHeadMAC: auditHeadMAC))
        }
        return PostgresVault(location: location, connection: connection, pq: pq)
    }

    private static func connect(_ location: String) throws -> (LibPQ, PostgresConnection) {
        let pq = try LibPQ.shared()
        _ = try PostgresLocation.checkedOptions(location, pq: pq)
        let connection = PostgresConnection(pq: pq, location: location, label: "vault")
        try connection.connect()
        return (pq, connection)
    }

    /// Warnings about a location before it is opened (the CLI's): an unencrypted connection to another host.
    public static func warnings(forLocation location: String, environment: [String: String]) -> [String] {
        guard let pq = try? LibPQ.shared(), let options = try? PostgresLocation.checkedOptions(location, pq: pq) else {
            return []
        }
        return PostgresLocation.sslWarning(options: options, environment: environment).map { [$0] } ?? []
    }

    /// The same for the live connection, whose options include what a service file or the environment set.
    public func locationWarnings() -> [String] {
        let options = (try? connection.read { session in session.effectiveOptions() }) ?? [:]
        return PostgresLocation.sslWarning(options: options, environment: environment).map { [$0] } ?? []
    }

    // MARK: Transactions

    @discardableResult
    public func write<T>(_ body: (any VaultTransaction) throws -> T) throws -> T {
        try connection.write { session in try body(PostgresTransaction(session: session)) }
    }

    /// Runs on this store's own queue: the write waits for the server (and for another host's lock on the audit
    /// chain) without parking a thread of the async pool.
    @discardableResult
    public func writeAsync<T: Sendable>(_ body: @escaping @Sendable (any VaultTransaction) throws -> T) async throws
        -> T
    {
        try await connection.offPool { [connection] in
            try connection.write { session in try body(PostgresTransaction(session: session)) }
        }
    }

    public func accountAsync(named name: String) async throws -> Account {
        try await connection.offPool { [connection] in
            try connection.read { session in try PostgresTransaction(session: session).account(named: name) }
        }
    }

    // MARK: Reading

    private func read<T>(_ body: (PostgresTransaction) throws -> T) throws -> T {
        try connection.read { session in try body(PostgresTransaction(session: session)) }
    }

    public func header() throws -> VaultHeader {
        try read { t in
            guard let row = try t.session.query("SELECT * FROM vault_meta WHERE id = 1").rows.first else {
                throw StoreError.notAVault(path: location, reason: "its header row is missing")
            }
            return try VaultHeader(pg: row)
        }
    }

    public func integrations() throws -> [Integration] {
        try read { t in
            try t.session.query("SELECT * FROM integration ORDER BY name COLLATE \"C\"").rows.map(Integration.init(pg:))
        }
    }

    public func integration(named name: String) throws -> Integration {
        try read { t in try t.integration(named: name) }
    }

    public func integration(id: String) throws -> Integration? {
        try read { t in
            try t.session.query("SELECT * FROM integration WHERE id = $1", [.text(id)]).rows.first.map(
                Integration.init(pg:))
        }
    }

    public func accounts() throws -> [Account] {
        try read { t in
            try t.session.query("SELECT * FROM account ORDER BY name COLLATE \"C\"").rows.map(Account.init(pg:))
        }
    }

    public func account(named name: String) throws -> Account {
        try read { t in try t.account(named: name) }
    }

    public func accountSummaries() throws -> [AccountSummary] {
        try read { t in
            try t.session.query(
                """
                SELECT id, name, integration_id, access_token_sealed IS NOT NULL AS has_access_token,
                       refresh_token_sealed IS NOT NULL AS has_refresh_token, access_expires_at, refresh_expires_at,
                       granted_scopes, email, display_name, org_id, state, updated_at
                FROM account ORDER BY name COLLATE "C"
                """
            ).rows.map(AccountSummary.init(pg:))
        }
    }

    public func accounts(accessExpiringBefore date: Date, orStoredAfter storedAfter: Date?) throws -> [Account] {
        try read { t in
            try t.session.query(
                """
                SELECT * FROM account WHERE access_expires_at IS NULL OR access_expires_at < $1 OR updated_at > $2
                ORDER BY name COLLATE "C"
                """, [.double(date.unix), .double((storedAfter ?? .distantFuture).unix)]
            ).rows.map(Account.init(pg:))
        }
    }

    public func accountCount(integrationId: String) throws -> Int {
        try read { t in
            Int(
                try t.session.query(
                    "SELECT COUNT(*) AS n FROM account WHERE integration_id = $1", [.text(integrationId)]
                ).rows[0].int("n"))
        }
    }

    public func auditEntries(account: String?) throws -> [AuditEntry] {
        try read { t in
            let result =
                if let account {
                    try t.session.query("SELECT * FROM audit_entry WHERE account = $1 ORDER BY seq", [.text(account)])
                } else {
                    try t.session.query("SELECT * FROM audit_entry ORDER BY seq")
                }
            return try result.rows.map(AuditEntry.init(pg:))
        }
    }

    public func auditHead() throws -> (seq: Int64, mac: [UInt8]) {
        try read { t in
            guard
                let row = try t.session.query("SELECT audit_head_seq, audit_head_mac FROM vault_meta WHERE id = 1").rows
                    .first
            else {
                return (0, [])
            }
            return (try row.int("audit_head_seq"), try row.optionalBytes("audit_head_mac") ?? [])
        }
    }

    public func newestAuditEntry() throws -> AuditEntry? {
        try read { t in
            try t.session.query("SELECT * FROM audit_entry ORDER BY seq DESC LIMIT 1").rows.first.map(
                AuditEntry.init(pg:))
        }
    }

    public func newestPairEntry(account: String) throws -> (entry: AuditEntry, previousMAC: [UInt8])? {
        try read { t in
            // One round trip: the entry and the MAC of the one before it.
            let rows = try t.session.query(
                """
                WITH newest AS (SELECT * FROM audit_entry WHERE account = $1 AND pair IS NOT NULL ORDER BY seq DESC LIMIT 1)
                SELECT newest.*, (SELECT mac FROM audit_entry p WHERE p.seq < newest.seq ORDER BY p.seq DESC LIMIT 1) AS previous_mac
                FROM newest
                """, [.text(account)]
            ).rows
            guard let row = rows.first else { return nil }
            return (try AuditEntry(pg: row), try row.optionalBytes("previous_mac") ?? [])
        }
    }

    public func refreshTokensRotate(integration name: String) throws -> Bool {
        try read { t in
            try t.session.query(
                """
                SELECT refresh_token_changed FROM audit_entry
                WHERE integration = $1 AND event = 'refreshed' AND refresh_token_changed IS NOT NULL
                ORDER BY seq DESC LIMIT 1
                """, [.text(name)]
            ).rows.first?.bool("refresh_token_changed") ?? false
        }
    }

    public func pairStoredTimes() throws -> [String: Date] {
        try read { t in
            Dictionary(
                try t.session.query(
                    """
                    SELECT account, at FROM audit_entry WHERE seq IN
                    (SELECT MAX(seq) FROM audit_entry WHERE event IN ('imported', 'authorized', 'refreshed') GROUP BY account)
                    """
                ).rows.map { (try $0.string("account"), try $0.date("at")) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func notifiedEvents() throws -> [String: String] {
        try read { t in
            Dictionary(
                try t.session.query("SELECT account, event FROM notification").rows.map {
                    (try $0.string("account"), try $0.string("event"))
                }, uniquingKeysWith: { $1 })
        }
    }

    public func keySlots() throws -> [KeySlot] {
        try read { t in try t.keySlots() }
    }

    /// Everything, in one REPEATABLE READ transaction (one snapshot of the database), for `tokenvault copy`.
    public func snapshot() throws -> VaultSnapshot {
        try read { t in
            try t.session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            let snapshot = try t.readEverything(location: location)
            try t.session.execute("COMMIT")
            return snapshot
        }
    }

    /// Nothing to do here. The SQLite vault checkpoints and truncates its WAL so that deleted secrets linger in no
    /// file tokenvault controls; a PostgreSQL server keeps dead row versions until its own (auto)VACUUM reclaims
    /// them, and its WAL and backups are the database administrator's, whom the design already trusts with
    /// sealed bytes only. A client cannot force either (VACUUM needs the table's owner and cannot run inside the
    /// vault's transactions).
    public func purgeDeletedData() throws {}

    public func close() throws {
        refreshLocks.close()
        connection.close()
    }

    // MARK: Refresh locks

    /// Nothing to check: advisory locks live in the server, where no other user of this machine can hold or
    /// redirect them (only a role that can connect to the vault's database).
    public func checkRefreshLocks() throws {}

    /// Holds the account's refresh lock, an advisory lock of this store's lock connection, trying every 20 ms
    /// until `timeout` (exactly once for 0). The server releases it if this process dies.
    public func lockForRefresh(
        _ account: Account, timeout: TimeInterval,
        sleep: @Sendable (Double) async throws -> Void
    ) async throws -> any RefreshLock {
        try await refreshLocks.acquire(account, timeout: timeout, location: location)
    }
}

extension PGSession {
    /// The live connection's options (a service file's and the environment's included), for the TLS warning.
    func effectiveOptions() -> [String: String] {
        guard let conn, let options = pq.conninfo(conn) else { return [:] }
        defer { pq.conninfoFree(options) }
        return Dictionary(
            LibPQ.options(options).filter { !$0.isSecret }.map { ($0.keyword, $0.value) }, uniquingKeysWith: { $1 })
    }
}
