import Foundation

/// The operations allowed inside one write transaction of a PostgreSQL vault: ``VaultWriter``'s, statement for
/// statement, with every value bound.
struct PostgresTransaction: VaultTransaction {
    let session: PGSession

    static let integrationColumns =
        "id, name, provider, client_id, client_secret_sealed, redirect_uri, scopes, api_base, env_var, created_at, provider_options"
    static let accountColumns =
        "id, name, integration_id, access_token_sealed, refresh_token_sealed, access_expires_at, refresh_expires_at, granted_scopes, email, display_name, org_id, person_id, state, created_at, updated_at, pair"
    static let auditColumns =
        "seq, at, account, integration, event, trigger, outcome, access_expires_before, access_expires_after, refresh_expires_before, refresh_expires_after, refresh_token_changed, detail, mac, pair"
    static let keySlotColumns =
        "name, kdf_algorithm, kdf_salt, kdf_opslimit, kdf_memlimit, public_key, secret_key_sealed, master_key_sealed, created_at, changed_at"

    /// `$1, $2, …, $n`.
    static func placeholders(_ count: Int, from first: Int = 1) -> String {
        (first..<(first + count)).map { "$\($0)" }.joined(separator: ", ")
    }

    /// Everything, inside this write transaction (`keys rotate` re-seals what it reads here). Unlike SQLite's
    /// BEGIN IMMEDIATE, a PostgreSQL write transaction does not keep other writers out, so they are locked out
    /// first: the header row (every audit append takes it) and the tables whose rows are re-sealed, while readers
    /// go on. Held until this transaction ends.
    public func snapshot() throws -> VaultSnapshot {
        try session.execute("SELECT 1 FROM vault_meta WHERE id = 1 FOR UPDATE")
        try session.execute("LOCK TABLE integration, account, key_slot, notification IN SHARE ROW EXCLUSIVE MODE")
        return try readEverything(location: "the vault")
    }

    /// The rows of every table, in the order SQLite's snapshot gives them (byte order of names).
    func readEverything(location: String) throws -> VaultSnapshot {
        let s = session
        guard let meta = try s.query("SELECT * FROM vault_meta WHERE id = 1").rows.first else {
            throw StoreError.notAVault(path: location, reason: "its header row is missing")
        }
        return VaultSnapshot(
            header: try VaultHeader(pg: meta), auditHeadSeq: try meta.int("audit_head_seq"),
            auditHeadMAC: try meta.optionalBytes("audit_head_mac"),
            keySlots: try keySlots(),
            integrations: try s.query("SELECT * FROM integration ORDER BY name COLLATE \"C\"").rows.map(
                Integration.init(pg:)),
            accounts: try s.query("SELECT * FROM account ORDER BY name COLLATE \"C\"").rows.map(Account.init(pg:)),
            auditEntries: try s.query("SELECT * FROM audit_entry ORDER BY seq").rows.map(AuditEntry.init(pg:)),
            notifications: try s.query("SELECT account, event, at FROM notification ORDER BY account COLLATE \"C\"")
                .rows.map {
                    NotificationRecord(
                        account: try $0.string("account"), event: try $0.string("event"), at: try $0.date("at"))
                })
    }

    public func integration(named name: String) throws -> Integration {
        guard let row = try session.query("SELECT * FROM integration WHERE name = $1", [.text(name)]).rows.first else {
            throw StoreError.noSuchIntegration(name)
        }
        return try Integration(pg: row)
    }

    public func account(named name: String) throws -> Account {
        guard let row = try session.query("SELECT * FROM account WHERE name = $1", [.text(name)]).rows.first else {
            throw StoreError.noSuchAccount(name)
        }
        return try Account(pg: row)
    }

    public func accountExists(named name: String) throws -> Bool {
        try session.query("SELECT EXISTS (SELECT 1 FROM account WHERE name = $1) AS found", [.text(name)]).rows.first?
            .bool("found") ?? false
    }

    public func updateHeader(_ header: VaultHeader) throws {
        try session.query(
            """
            UPDATE vault_meta SET kdf_algorithm = $1, kdf_salt = $2, kdf_opslimit = $3, kdf_memlimit = $4,
                master_key_sealed = $5, passphrase_changed_at = $6 WHERE id = 1
            """,
            [
                .text(header.kdfAlgorithm), .bytes(header.kdfSalt), .int(Int64(clamping: header.kdfOpsLimit)),
                .int(Int64(clamping: header.kdfMemLimit)), .bytes(header.masterKeySealed),
                .double(header.passphraseChangedAt.unix),
            ])
    }

    /// ON CONFLICT rather than a check first: one round trip, and a name another host inserted meanwhile is told
    /// apart without an error that would abort the transaction.
    public func insert(_ integration: Integration) throws {
        let result = try session.query(
            """
            INSERT INTO integration (\(Self.integrationColumns)) VALUES (\(Self.placeholders(11))) ON CONFLICT (name) DO NOTHING
            """, integration.pgValues)
        if result.changes == 0 { throw StoreError.duplicateIntegration(integration.name) }
    }

    /// Stores an edited integration (its name and id stay); refused if another process changed its sealed client
    /// secret since `previousSecret` was read.
    public func update(_ integration: Integration, previousSecret: [UInt8]) throws {
        let result = try session.query(
            """
            UPDATE integration SET client_id = $1, client_secret_sealed = $2, redirect_uri = $3, scopes = $4, api_base = $5,
                env_var = $6 WHERE id = $7 AND client_secret_sealed = $8
            """,
            [
                .text(integration.clientId), .bytes(integration.clientSecretSealed), .text(integration.redirectURI),
                .text(integration.scopes.joined(separator: " ")), .text(integration.apiBase), .text(integration.envVar),
                .text(integration.id), .bytes(previousSecret),
            ])
        guard result.changes == 1 else {
            throw StoreError.database(
                "integration '\(integration.name)' changed while it was being edited; run the edit again")
        }
    }

    public func deleteIntegration(id: String) throws {
        try session.query("DELETE FROM account WHERE integration_id = $1", [.text(id)])
        try session.query("DELETE FROM integration WHERE id = $1", [.text(id)])
    }

    public func replaceClientSecret(integrationId: String, old: [UInt8], new: [UInt8]) throws {
        try session.query(
            "UPDATE integration SET client_secret_sealed = $1 WHERE id = $2 AND client_secret_sealed = $3",
            [.bytes(new), .text(integrationId), .bytes(old)])
    }

    public func insert(_ account: Account) throws {
        let result = try session.query(
            """
            INSERT INTO account (\(Self.accountColumns)) VALUES (\(Self.placeholders(16))) ON CONFLICT (name) DO NOTHING
            """, account.pgValues)
        if result.changes == 0 { throw StoreError.duplicateAccount(account.name) }
    }

    public func update(_ account: Account) throws {
        let result = try session.query(
            """
            UPDATE account SET name = $2, integration_id = $3, access_token_sealed = $4, refresh_token_sealed = $5,
                access_expires_at = $6, refresh_expires_at = $7, granted_scopes = $8, email = $9, display_name = $10,
                org_id = $11, person_id = $12, state = $13, created_at = $14, updated_at = $15, pair = $16
            WHERE id = $1
            """, account.pgValues)
        guard result.changes == 1 else { throw StoreError.noSuchAccount(account.name) }
    }

    public func setNotified(account: String, event: String?, at: Date) throws {
        if let event {
            try session.query(
                """
                INSERT INTO notification (account, event, at) VALUES ($1, $2, $3)
                ON CONFLICT (account) DO UPDATE SET event = excluded.event, at = excluded.at
                """, [.text(account), .text(event), .double(at.unix)])
        } else {
            try session.query("DELETE FROM notification WHERE account = $1", [.text(account)])
        }
    }

    public func deleteAccount(id: String) throws {
        try session.query("DELETE FROM account WHERE id = $1", [.text(id)])
    }

    // MARK: Key slots

    public func keySlots() throws -> [KeySlot] {
        try session.query("SELECT * FROM key_slot ORDER BY created_at, name COLLATE \"C\"").rows.map(KeySlot.init(pg:))
    }

    public func insert(_ slot: KeySlot) throws {
        let result = try session.query(
            """
            INSERT INTO key_slot (\(Self.keySlotColumns)) VALUES (\(Self.placeholders(10))) ON CONFLICT (name) DO NOTHING
            """, slot.pgValues)
        if result.changes == 0 { throw StoreError.duplicateKeySlot(slot.name) }
    }

    public func update(_ slot: KeySlot) throws {
        let result = try session.query(
            """
            UPDATE key_slot SET kdf_algorithm = $2, kdf_salt = $3, kdf_opslimit = $4, kdf_memlimit = $5, public_key = $6,
                secret_key_sealed = $7, master_key_sealed = $8, created_at = $9, changed_at = $10 WHERE name = $1
            """, slot.pgValues)
        guard result.changes == 1 else { throw StoreError.noSuchKeySlot(slot.name) }
    }

    public func deleteKeySlot(named name: String) throws {
        let result = try session.query("DELETE FROM key_slot WHERE name = $1", [.text(name)])
        guard result.changes == 1 else { throw StoreError.noSuchKeySlot(name) }
    }

    public func deleteAllKeySlots() throws {
        try session.query("DELETE FROM key_slot")
    }

    // MARK: Audit entries as they are (copy) and re-keyed (keys rotate)

    public func insertAuditEntries(_ entries: [AuditEntry], headSeq: Int64, headMAC: [UInt8]?) throws {
        for entry in entries { try insert(entry.draft, seq: entry.seq, mac: entry.mac) }
        try session.query(
            "UPDATE vault_meta SET audit_head_seq = $1, audit_head_mac = $2 WHERE id = 1",
            [.int(headSeq), PGValue(headMAC)])
    }

    /// The append-only trigger lets an UPDATE through only while `tokenvault.rewrite_audit_macs` is on, and then
    /// only one that changes `mac` alone. SET LOCAL ends with this transaction (a failure rolls everything back),
    /// and it is switched off again before anything else runs in it.
    public func rewriteAuditMACs(_ macs: [Int64: [UInt8]], headMAC: [UInt8]) throws {
        try session.execute("SET LOCAL tokenvault.rewrite_audit_macs = 'on'")
        for (seq, mac) in macs {
            let result = try session.query("UPDATE audit_entry SET mac = $1 WHERE seq = $2", [.bytes(mac), .int(seq)])
            guard result.changes == 1 else { throw StoreError.database("audit entry \(seq) is missing") }
        }
        try session.execute("SET LOCAL tokenvault.rewrite_audit_macs = 'off'")
        try session.query("UPDATE vault_meta SET audit_head_mac = $1 WHERE id = 1", [.bytes(headMAC)])
    }

    /// Appends an audit entry, as ``VaultWriter/appendAudit(_:mac:headMAC:)`` does. Many hosts write to one
    /// chain: the header row is locked first (FOR UPDATE, held until this transaction ends), so a second writer
    /// waits here and then reads the entry the first one appended; the chain never forks and has no gap.
    @discardableResult
    public func appendAudit(
        _ draft: AuditDraft, mac: (_ seq: Int64, _ draft: AuditDraft, _ previousMAC: [UInt8]) throws -> [UInt8],
        headMAC: (_ seq: Int64, _ entryMAC: [UInt8]) throws -> [UInt8]
    ) throws -> AuditEntry {
        guard
            let headRow = try session.query(
                "SELECT audit_head_seq, audit_head_mac FROM vault_meta WHERE id = 1 FOR UPDATE"
            ).rows.first
        else {
            throw StoreError.database("the vault's header row is missing")
        }
        // A statement of its own after the lock: under READ COMMITTED it sees what the previous holder committed.
        let last = try session.query("SELECT seq, mac FROM audit_entry ORDER BY seq DESC LIMIT 1").rows.first
        let headSeq = try headRow.int("audit_head_seq")
        let storedHead = try headRow.optionalBytes("audit_head_mac") ?? []
        let entry = try appendToAuditChain(
            draft, lastSeq: try last?.int("seq") ?? 0, lastMAC: try last?.bytes("mac") ?? [],
            headSeq: headSeq, storedHead: storedHead, mac: mac, headMAC: headMAC,
            insert: { try insert($0, seq: $1, mac: $2) })
        try session.query(
            "UPDATE vault_meta SET audit_head_seq = $1, audit_head_mac = $2 WHERE id = 1",
            [.int(entry.seq), .bytes(try headMAC(entry.seq, entry.mac))])
        return entry
    }

    private func insert(_ draft: AuditDraft, seq: Int64, mac: [UInt8]) throws {
        try session.query(
            "INSERT INTO audit_entry (\(Self.auditColumns)) VALUES (\(Self.placeholders(15)))",
            [.int(seq)] + draft.pgValues + [.bytes(mac), PGValue(draft.pair)])
    }
}
