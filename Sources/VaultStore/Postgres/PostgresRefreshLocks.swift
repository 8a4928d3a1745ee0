import Foundation
import Synchronization

/// Per-account refresh locks of a PostgreSQL vault, across hosts: session-level advisory locks
/// (`pg_try_advisory_lock`) taken on a connection of their own, which holds no transaction while a refresh goes
/// to the provider. The server releases them when that connection ends, so a host that dies frees its accounts.
///
/// Advisory locks are re-entrant within one session, so the accounts this store holds are also kept here: a
/// second refresh of the same account in this process waits like one on another host.
final class PostgresRefreshLocks: Sendable {
    private let connection: PostgresConnection
    private let held = Mutex<Set<String>>([])

    /// The two-key advisory lock space ("tkvr"), apart from the migrations' one-key lock; the second key is the
    /// account id's hash (two accounts sharing one only take turns).
    static let namespace: Int32 = 0x746B_7672

    init(connection: PostgresConnection) { self.connection = connection }

    final class Held: RefreshLock {
        private let owner: PostgresRefreshLocks
        private let accountId: String
        /// The lock connection's ``PGSession/generation`` when the lock was taken.
        private let session: Int
        private let released = Mutex(false)

        init(owner: PostgresRefreshLocks, accountId: String, session: Int) {
            self.owner = owner
            self.accountId = accountId
            self.session = session
        }

        /// Whether the session that took the lock is still there: one round trip on the lock connection, which
        /// finds a lost connection (a restarted server) and connects again, a new session that holds nothing.
        /// Only `unlock` ends a session-level advisory lock within its session.
        func isStillHeld() async -> Bool {
            (try? await owner.sessionIsAlive(session)) ?? false
        }

        func release() {
            let first = released.withLock { released in
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
            if let session = try await tryLock(account.id) {
                return Held(owner: self, accountId: account.id, session: session)
            }
            guard Date() < deadline else {
                throw StoreError.lockBusy(
                    "account '\(account.name)' stayed locked by another tokenvault process for \(Int(timeout)) s",
                    hint:
                        "is a refresh stuck on another host? pg_locks on \(location) shows the holder (locktype 'advisory', classid \(Self.namespace))"
                )
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The session (``PGSession/generation``) that took the lock, or nil when another holds it.
    private func tryLock(_ accountId: String) async throws -> Int? {
        guard held.withLock({ $0.insert(accountId).inserted }) else { return nil }
        do {
            let session = try await connection.offPool { [connection] in
                try connection.read { session -> Int? in
                    try session.query(
                        "SELECT pg_try_advisory_lock(\(Self.namespace), hashtext($1)) AS locked", [.text(accountId)]
                    )
                    .rows[0].bool("locked") ? session.generation : nil
                }
            }
            if session == nil { _ = held.withLock { $0.remove(accountId) } }
            return session
        } catch {
            _ = held.withLock { $0.remove(accountId) }
            throw error
        }
    }

    /// Whether the lock connection is still session `generation`, asked of the server (a statement on a lost
    /// connection connects again: another session). Cheaper than looking the lock up in `pg_locks`, whose every
    /// read takes all of the server's lock-table partitions, with three hosts each holding sixteen.
    func sessionIsAlive(_ generation: Int) async throws -> Bool {
        try await connection.offPool { [connection] in
            try connection.read { session in
                _ = try session.query("SELECT 1 AS alive")
                return session.generation == generation
            }
        }
    }

    /// Releases on the server, then here. A connection that was lost has released it already.
    private func unlock(_ accountId: String) {
        _ = try? connection.read { session in
            try session.query("SELECT pg_advisory_unlock(\(Self.namespace), hashtext($1))", [.text(accountId)])
        }
        _ = held.withLock { $0.remove(accountId) }
    }

    func close() { connection.close() }
}
