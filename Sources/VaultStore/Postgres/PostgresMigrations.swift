import Foundation
import PostgresSchema

/// The PostgreSQL vault's schema: the files of `Migrations/postgresql/`, applied in order, each once, recorded in
/// `tokenvault_migrations` (one row per applied identifier, the same identifiers as the SQLite vault's).
/// Migrations run in one transaction under an advisory lock, so two hosts opening a new or older database at once
/// take turns and the second finds the work done.
enum PostgresMigrations {
    typealias Migration = (identifier: String, sql: String)

    static let all: [Migration] = PostgresSchema.migrations

    /// The transaction-level advisory lock the migrations (and creating a vault) hold ("tokenvlt" in ASCII).
    static let lockKey: Int64 = 0x746F_6B65_6E76_6C74

    struct State {
        var hasMigrationsTable: Bool
        var hasVaultTables: Bool
        var applied: Set<String>
        var hasHeader: Bool
    }

    static func state(_ session: PGSession) throws -> State {
        let tables = try session.query(
            """
            SELECT to_regclass('tokenvault_migrations') IS NOT NULL AS migrations,
                   to_regclass('vault_meta') IS NOT NULL AS meta
            """
        ).rows[0]
        let hasMigrations = try tables.bool("migrations")
        let hasMeta = try tables.bool("meta")
        let applied =
            hasMigrations
            ? Set(
                try session.query("SELECT identifier FROM tokenvault_migrations").rows.map {
                    try $0.string("identifier")
                })
            : []
        let hasHeader =
            hasMeta
            ? try session.query("SELECT EXISTS (SELECT 1 FROM vault_meta WHERE id = 1) AS found").rows[0].bool("found")
            : false
        return State(hasMigrationsTable: hasMigrations, hasVaultTables: hasMeta, applied: applied, hasHeader: hasHeader)
    }

    /// Checks an existing vault without writing anything: a database without one, another program's tables or a
    /// newer schema are refused unmodified. Returns whether migrations are missing.
    static func check(_ state: State, location: String, migrations: [Migration]) throws -> Bool {
        guard state.hasMigrationsTable else {
            if state.hasVaultTables {
                throw StoreError.notAVault(
                    path: location,
                    reason: "a database with tables named like tokenvault's but no tokenvault_migrations")
            }
            throw StoreError.vaultMissing(path: location)
        }
        let known = Set(migrations.map(\.identifier))
        let unknown = state.applied.subtracting(known)
        if !unknown.isEmpty { throw StoreError.newerSchema(path: location, unknown: unknown.sorted()) }
        guard state.applied.contains(migrations[0].identifier), state.hasHeader else {
            throw StoreError.notAVault(path: location, reason: "its header row is missing")
        }
        return state.applied.count < known.count
    }

    /// Applies the missing migrations inside the caller's transaction, under the advisory lock; with `header`,
    /// creates the vault, refusing a database that already holds one.
    static func migrate(
        _ session: PGSession, location: String, migrations: [Migration],
        creating header: (VaultHeader, auditHeadMAC: [UInt8]?)?
    ) throws {
        try session.query("SELECT pg_advisory_xact_lock($1)", [.int(lockKey)])
        // Looked at again under the lock: another host may have done the work meanwhile.
        let state = try state(session)
        if header != nil {
            if state.hasHeader { throw StoreError.vaultExists(path: location) }
            if state.hasVaultTables || (state.hasMigrationsTable && !state.applied.isEmpty) {
                throw StoreError.notAVault(
                    path: location, reason: "the database holds a half-made vault without its header row")
            }
        } else {
            _ = try check(state, location: location, migrations: migrations)
        }
        try session.execute(
            """
            CREATE TABLE IF NOT EXISTS tokenvault_migrations (
                identifier TEXT PRIMARY KEY,
                applied_at DOUBLE PRECISION NOT NULL
            )
            """)
        for migration in migrations where !state.applied.contains(migration.identifier) {
            try session.execute(migration.sql)
            try session.query(
                "INSERT INTO tokenvault_migrations (identifier, applied_at) VALUES ($1, $2)",
                [.text(migration.identifier), .double(Date().unix)])
        }
        if let (header, auditHeadMAC) = header {
            try session.query(
                """
                INSERT INTO vault_meta (id, kdf_algorithm, kdf_salt, kdf_opslimit, kdf_memlimit, master_key_sealed,
                    created_at, passphrase_changed_at, audit_head_seq, audit_head_mac)
                VALUES (1, $1, $2, $3, $4, $5, $6, $7, 0, $8)
                """,
                [
                    .text(header.kdfAlgorithm), .bytes(header.kdfSalt), .int(Int64(clamping: header.kdfOpsLimit)),
                    .int(Int64(clamping: header.kdfMemLimit)), .bytes(header.masterKeySealed),
                    .double(header.createdAt.unix),
                    .double(header.passphraseChangedAt.unix), PGValue(auditHeadMAC),
                ])
        }
    }
}
