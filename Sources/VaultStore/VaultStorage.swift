import Foundation

/// What the vault's logic needs from a store, in the vault's own words: the header, integrations, accounts, the
/// audit log and its head, write transactions, per-account refresh locks and erasure of deleted secrets.
///
/// The store keeps plain metadata and sealed bytes and knows no cryptography; the core seals and opens. The SQLite
/// file (``SQLiteVault``) is one implementation, built on any GRDB `DatabaseWriter`, so unit tests use an
/// in-memory database (``SQLiteVault/inMemory(header:auditHeadMAC:)``); a PostgreSQL database shared by many
/// hosts (``PostgresVault``) is the other. Nothing above this interface names GRDB, libpq, a database file or
/// `flock`; ``VaultStores`` turns a location into one of them.
public protocol VaultStorage: AnyObject, Sendable {
    /// Where the vault lives, as messages name it (a file path, or a PostgreSQL location without a password).
    var location: String { get }

    func header() throws -> VaultHeader
    func integrations() throws -> [Integration]
    func integration(named name: String) throws -> Integration
    func integration(id: String) throws -> Integration?
    func accounts() throws -> [Account]
    func account(named name: String) throws -> Account
    /// An account read without blocking a thread of the async pool.
    func accountAsync(named name: String) async throws -> Account
    /// Every account's plain metadata, without sealed bytes (for `list`).
    func accountSummaries() throws -> [AccountSummary]
    /// Accounts whose access token lapses before `date`, or whose pair was stored after `storedAfter`.
    func accounts(accessExpiringBefore date: Date, orStoredAfter storedAfter: Date?) throws -> [Account]
    func accountCount(integrationId: String) throws -> Int
    /// The audit log in order, of one account or all.
    func auditEntries(account: String?) throws -> [AuditEntry]
    /// The newest audit entry's number and the keyed MAC over it, as the last append left them.
    func auditHead() throws -> (seq: Int64, mac: [UInt8])
    /// The newest audit entry, if any.
    func newestAuditEntry() throws -> AuditEntry?
    /// The newest audit entry of `account` that set its pair (schema v5), and the MAC of the entry before it, with
    /// which the entry's own MAC is checked; nil when there is none.
    func newestPairEntry(account: String) throws -> (entry: AuditEntry, previousMAC: [UInt8])?
    /// When each account's current token pair was stored: the time of its newest `imported`, `authorized` or
    /// `refreshed` audit entry, by account name. (The row's `updatedAt` also moves when only its state changes.)
    func pairStoredTimes() throws -> [String: Date]
    /// Whether the newest successful refresh through this integration came back with a new refresh token.
    func refreshTokensRotate(integration name: String) throws -> Bool

    /// One write transaction. Never held across a network call.
    @discardableResult
    func write<T>(_ body: (any VaultTransaction) throws -> T) throws -> T
    /// The same, suspending instead of blocking a thread of the async pool.
    @discardableResult
    func writeAsync<T: Sendable>(_ body: @escaping @Sendable (any VaultTransaction) throws -> T) async throws -> T

    /// The events `--notify` last told about, by account.
    func notifiedEvents() throws -> [String: String]

    /// Removes the traces deleted secrets leave behind (a journal, free pages).
    func purgeDeletedData() throws

    /// Refuses, up front, refresh locks another user could hold or redirect: one clear error before any work.
    func checkRefreshLocks() throws
    /// Holds the account's refresh lock (one refresh at a time per account, across processes), waiting up to
    /// `timeout`. Released by ``RefreshLock/release()`` or when the process dies.
    func lockForRefresh(
        _ account: Account, timeout: TimeInterval,
        sleep: @Sendable (Double) async throws -> Void
    ) async throws -> any RefreshLock

    /// Warnings about where the vault lives (a directory others can write), for a person to read.
    /// Warnings about where the vault is, each one sentence without the `tokenvault: warning:` prefix (the
    /// CLI's warning channel adds it).
    func locationWarnings() -> [String]

    /// The key slots (schema v4), oldest first. Never empty for a vault tokenvault wrote.
    func keySlots() throws -> [KeySlot]

    /// Everything the vault holds, read in one transaction (`tokenvault copy`).
    func snapshot() throws -> VaultSnapshot

    func close() throws
}

extension VaultStorage {
    public func accounts(accessExpiringBefore date: Date) throws -> [Account] {
        try accounts(accessExpiringBefore: date, orStoredAfter: nil)
    }

    public func auditEntries() throws -> [AuditEntry] { try auditEntries(account: nil) }
}

/// The operations allowed inside one write transaction.
public protocol VaultTransaction {
    func integration(named name: String) throws -> Integration
    func account(named name: String) throws -> Account
    func accountExists(named name: String) throws -> Bool
    func updateHeader(_ header: VaultHeader) throws
    func insert(_ integration: Integration) throws
    /// Updates an integration whose sealed secret is still `previousSecret` (else another process changed it).
    func update(_ integration: Integration, previousSecret: [UInt8]) throws
    func deleteIntegration(id: String) throws
    func replaceClientSecret(integrationId: String, old: [UInt8], new: [UInt8]) throws
    func insert(_ account: Account) throws
    func update(_ account: Account) throws
    func deleteAccount(id: String) throws
    /// Records that `--notify` told about `event` for `account` (nil: the account needs no one any more).
    func setNotified(account: String, event: String?, at: Date) throws
    // Key slots (schema v4).
    func keySlots() throws -> [KeySlot]
    func insert(_ slot: KeySlot) throws
    /// Replaces the slot of the same name (a new passphrase, a converted form, a new master key wrapped for it).
    func update(_ slot: KeySlot) throws
    func deleteKeySlot(named name: String) throws
    /// Removes every slot (only `restore` into a store just created, whose migration may have made one).
    func deleteAllKeySlots() throws

    /// Writes audit entries as they are (sequence numbers and MACs kept) and sets the head: `copy` into a new
    /// store only.
    func insertAuditEntries(_ entries: [AuditEntry], headSeq: Int64, headMAC: [UInt8]?) throws
    /// Replaces every audit entry's MAC and the head's MAC, nothing else (`keys rotate`: the chain re-keyed under
    /// the new master key after it was verified under the old one). The append-only guard allows only this.
    func rewriteAuditMACs(_ macs: [Int64: [UInt8]], headMAC: [UInt8]) throws
    /// Everything the vault holds, read inside this write transaction (`keys rotate` re-seals exactly what it read,
    /// with no other writer in between). Same content as ``VaultStorage/snapshot()``.
    func snapshot() throws -> VaultSnapshot

    /// Appends an audit entry after checking the head (see ``VaultWriter/appendAudit(_:mac:headMAC:)``).
    @discardableResult
    func appendAudit(
        _ draft: AuditDraft, mac: (_ seq: Int64, _ draft: AuditDraft, _ previousMAC: [UInt8]) throws -> [UInt8],
        headMAC: (_ seq: Int64, _ entryMAC: [UInt8]) throws -> [UInt8]
    ) throws -> AuditEntry
}

extension VaultTransaction {
    /// Fills a store just created with `snapshot.header` (and nothing else) with the rest of `snapshot`: key slots,
    /// integrations, accounts, audit entries with their own sequence numbers and MACs, the audit head, and the
    /// notification records. Ids and bytes are kept as they are.
    public func restore(_ snapshot: VaultSnapshot) throws {
        try deleteAllKeySlots()
        for slot in snapshot.keySlots { try insert(slot) }
        for integration in snapshot.integrations { try insert(integration) }
        for account in snapshot.accounts { try insert(account) }
        try insertAuditEntries(snapshot.auditEntries, headSeq: snapshot.auditHeadSeq, headMAC: snapshot.auditHeadMAC)
        for record in snapshot.notifications {
            try setNotified(account: record.account, event: record.event, at: record.at)
        }
    }
}

/// A held per-account refresh lock.
public protocol RefreshLock: Sendable {
    func release()
    /// Whether this process still holds the lock. A lock file's flock lasts as long as the process, but a
    /// PostgreSQL advisory lock ends with its connection (a server restart): then another host may hold it now,
    /// and a refresh must not store over what that host stores. Checked just before storing a refreshed pair.
    func isStillHeld() async -> Bool
}

extension RefreshLock {
    /// Locks that last as long as the process (flock, in-process) are held until released.
    public func isStillHeld() async -> Bool { true }
}

/// Where stores are opened and created: the registry that turns a ``VaultLocation`` into the store behind it,
/// one line per kind of location.
public enum VaultStores {
    /// Opens the vault at `location`.
    public static func open(_ location: VaultLocation) throws -> any VaultStorage {
        switch location {
        case .file(let path): try SQLiteVault.open(at: path)
        case .postgres(let conninfo): try PostgresVault.open(conninfo)
        }
    }

    /// Creates a new vault at `location` with this header and the MAC of the empty audit log's head.
    public static func create(_ location: VaultLocation, header: VaultHeader, auditHeadMAC: [UInt8]?) throws
        -> any VaultStorage
    {
        switch location {
        case .file(let path): try SQLiteVault.create(at: path, header: header, auditHeadMAC: auditHeadMAC)
        case .postgres(let conninfo): try PostgresVault.create(conninfo, header: header, auditHeadMAC: auditHeadMAC)
        }
    }

    /// Warnings about a location, given before anything is opened (a directory others can write; a connection
    /// to another host that may travel unencrypted).
    public static func warnings(forLocation location: VaultLocation) -> [String] {
        switch location {
        case .file(let path): SQLiteVault.sharedDirectoryWarning(vaultPath: path).map { [$0] } ?? []
        case .postgres(let conninfo):
            PostgresVault.warnings(forLocation: conninfo, environment: ProcessInfo.processInfo.environment)
        }
    }

    /// Opens the vault at `location` as given (``VaultLocation/init(_:)`` says which store it names).
    public static func open(_ location: String) throws -> any VaultStorage { try open(VaultLocation(location)) }

    public static func create(_ location: String, header: VaultHeader, auditHeadMAC: [UInt8]?) throws
        -> any VaultStorage
    {
        try create(VaultLocation(location), header: header, auditHeadMAC: auditHeadMAC)
    }

    /// The location as messages name it (``VaultLocation/name``).
    public static func named(_ location: String) -> String { VaultLocation(location).name }

    public static func warnings(forLocation location: String) -> [String] {
        warnings(forLocation: VaultLocation(location))
    }
}
