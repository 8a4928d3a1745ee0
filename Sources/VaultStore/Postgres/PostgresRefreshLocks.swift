import Foundation

/// Per-account refresh locks of a PostgreSQL vault, across hosts: session-level advisory locks
/// (`pg_try_advisory_lock`) taken on a connection of their own, which holds no transaction while a refresh goes
/// to the provider. The server releases them when that connection ends, so a host that dies frees its accounts.
///
/// Advisory locks are re-entrant within one session, so the accounts this store holds are also kept here: a
/// second refresh of the same account in this process waits like one on another host.
final class PostgresRefreshLocks: @unchecked Sendable {
    private let connection: PostgresConnection
    private let mutex = NSLock()
    private var held: Set<String> = []

    /// The two-key advisory lock space ("tkvr"), apart from the migrations' one-key lock; the second key is the
    /// account id's hash (two accounts sharing one only take turns).
    static let namespace: Int32 = 0x746B_7672

    init(connection: PostgresConnection) { self.connection = connection }

    final class Held: RefreshLock, @unchecked Sendable {
        private let owner: PostgresRefreshLocks
        private let accountId: String
        private let releaseOnce = NSLock()
        private var released = false

        init(owner: PostgresRefreshLocks, accountId: String) {
            self.owner = owner
            self.accountId = accountId
        }

        /// Asks the server whether this store's lock connection holds the lock: after a lost connection (the
        /// read connects again) it is a new session, which does not.
        func isStillHeld() async -> Bool {
            (try? await owner.holds(accountId)) ?? false
        }

        func release() {
            let first = releaseOnce.withLock { () -> Bool in
                defer { released = true }
                return !released
            }
            if first { owner.unlock(accountId) }
        }
    }

    /// Tries once, then every 20 ms until `timeout`; `timeout: 0` is exactly one try. Each try is one short
    /// statement, run off the cooperative pool.
    func acquire(_ account: Account, timeout: TimeInterval, location: String) async throws -> any RefreshLock {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try await tryLock(account.id) { return Held(owner: self, accountId: account.id) }
            guard Date() < deadline else {
                throw StoreError.lockBusy(
                    "account '\(account.name)' stayed locked by another tokenvault process for \(Int(timeout)) s",
                    hint: "is a refresh stuck on another host? pg_locks on \(location) shows the holder (locktype 'advisory', classid \(Self.namespace))")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func tryLock(_ accountId: String) async throws -> Bool {
        guard mutex.withLock({ held.insert(accountId).inserted }) else { return false }
        do {
            let locked = try await connection.offPool { [connection] in
                try connection.read { session in
                    try session.query("SELECT pg_try_advisory_lock(\(Self.namespace), hashtext($1)) AS locked", [.text(accountId)])
                        .rows[0].bool("locked")
                }
            }
            if !locked { _ = mutex.withLock { held.remove(accountId) } }
            return locked
        } catch {
            _ = mutex.withLock { held.remove(accountId) }
            throw error
        }
    }

    func holds(_ accountId: String) async throws -> Bool {
        try await connection.offPool { [connection] in
            try connection.read { session in
                // pg_locks shows the two keys as classid and objid (an oid: the hash's 32 bits, unsigned).
                try session.query("""
                    SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                        AND granted AND objsubid = 2 AND classid = \(Self.namespace)
                        AND objid::bigint = (hashtext($1)::bigint + 4294967296) % 4294967296) AS held
                    """, [.text(accountId)]).rows[0].bool("held")
            }
        }
    }

    /// Releases on the server, then here. A connection that was lost has released it already.
    private func unlock(_ accountId: String) {
        _ = try? connection.read { session in
            try session.query("SELECT pg_advisory_unlock(\(Self.namespace), hashtext($1))", [.text(accountId)])
        }
        _ = mutex.withLock { held.remove(accountId) }
    }

    func close() { connection.close() }
}
