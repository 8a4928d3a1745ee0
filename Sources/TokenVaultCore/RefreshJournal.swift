import Foundation
import VaultCrypto
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

/// A local journal of refreshed pairs not yet known to be in the vault's store.
///
/// Under strict rotation the provider retires the old refresh token the moment it answers, so between its answer
/// and the store's commit the new pair exists only in this process. The journal keeps it on local disk meanwhile:
/// before a refresh token is sent, the account's entry is created at its full size (so a disk that fills up later
/// cannot refuse the pair); once the provider has answered, the new pair is written into it and synced; once the
/// store has committed the pair, the entry is removed. An entry left behind (the store failed, the process died)
/// is stored by the next command that unlocks the vault, unless the account's row has moved on since.
///
/// The tokens in an entry are the very bytes the store would hold, sealed under the vault's master key with the
/// same labels; the rest is what the store keeps in the clear (names, ids, expiries). Entries live in a directory
/// of their own per vault, 0700, each file 0600.
public final class RefreshJournal: Sendable {
    /// The vault's own directory: `base/<hash of the vault's location>`.
    public let directory: String
    /// The vault this journal belongs to, as messages name it.
    public let location: String

    /// Bytes an entry reserves up front: room for a pair of long tokens (sealed and base64'd) and the fields.
    static let reservedSize = 16 * 1024

    /// - Parameters:
    ///   - base: the per-user directory of journals (`$XDG_STATE_HOME/tokenvault/journal`).
    ///   - location: the vault's location as the store names it (a file path, or a PostgreSQL location without a
    ///     password); named by ``VaultLocation/journalKey``, so two paths to one file share one journal.
    public init(base: String, location: String) {
        let canonical = VaultLocation(location).journalKey
        // A name for the directory, not a secret: a keyed hash under a fixed public key is a plain hash.
        let digest = MAC.hmacSHA256(
            key: SecretBytes(copying: Array("tokenvault journal".utf8)), message: Array(canonical.utf8))
        directory = base + "/" + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
        self.location = location
    }

    /// Where a user's journals live: `$XDG_STATE_HOME/tokenvault/journal`, else `~/.local/state/tokenvault/journal`.
    /// Local state on purpose: not beside a vault file, whose disk may be the one that failed, and not in
    /// `$XDG_RUNTIME_DIR`, which is emptied at logout.
    /// Nil without either variable (no home to keep it in), or with `TOKENVAULT_JOURNAL=off`: no journal, and a
    /// failed store write is tried once (tokenvault before the journal; the fault suite's "before" runs).
    public static func base(environment: [String: String]) -> String? {
        if environment["TOKENVAULT_JOURNAL"] == "off" { return nil }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/tokenvault/journal" }
        guard let home = environment["HOME"], home.hasPrefix("/") else { return nil }
        return home + "/.local/state/tokenvault/journal"
    }

    // MARK: Entries

    /// One account's entry: the row the refresh started from and, once the provider answered, the new pair.
    public struct Entry: Codable, Sendable, Equatable {
        public var accountId: String
        public var account: String
        public var integration: String?
        public var trigger: String
        /// When the refresh token was sent.
        public var sentAt: Date
        /// The row's sealed tokens when the refresh started: the pair is stored only over that row.
        public var fromAccessSealed: Data?
        public var fromRefreshSealed: Data?
        public var accessExpiresBefore: Date?
        public var refreshExpiresBefore: Date?
        /// The provider's answer, sealed as the store keeps it; nil while the refresh token is on its way.
        public var pair: Pair?

        public struct Pair: Codable, Sendable, Equatable {
            public var accessSealed: Data?
            public var refreshSealed: Data?
            public var accessExpiresAt: Date?
            public var refreshExpiresAt: Date?
            public var grantedScopes: [String]?
            public var updatedAt: Date
            public var refreshTokenChanged: Bool?
            /// The pair's id (schema v5): bound into its tokens' labels, recorded by its audit entry when stored.
            public var pairId: String?
        }

        /// The account row with this entry's pair on it.
        public func applied(to row: Account) -> Account {
            guard let pair else { return row }
            var account = row
            account.accessTokenSealed = pair.accessSealed.map { [UInt8]($0) }
            account.refreshTokenSealed = pair.refreshSealed.map { [UInt8]($0) }
            account.accessExpiresAt = pair.accessExpiresAt
            account.refreshExpiresAt = pair.refreshExpiresAt
            if let scopes = pair.grantedScopes { account.grantedScopes = scopes }
            account.state = .ok
            account.updatedAt = pair.updatedAt
            account.pair = pair.pairId
            return account
        }

        /// Whether `row` still holds the pair this refresh started from.
        public func startedFrom(_ row: Account) -> Bool {
            row.id == accountId && row.accessTokenSealed.map { Data($0) } == fromAccessSealed
                && row.refreshTokenSealed.map { Data($0) } == fromRefreshSealed
        }

        /// Whether `row` already holds this entry's pair (the store's commit landed after all).
        public func isStored(in row: Account) -> Bool {
            guard let pair else { return false }
            return row.id == accountId && row.accessTokenSealed.map { Data($0) } == pair.accessSealed
                && row.refreshTokenSealed.map { Data($0) } == pair.refreshSealed
        }
    }

    /// The entry of one refresh in flight: created before the refresh token is sent.
    public struct Reservation: Sendable {
        public let path: String
        public var entry: Entry
    }

    public enum Failure: Error, LocalizedError, Equatable {
        case unsafeDirectory(path: String, reason: String)
        case system(path: String, reason: String)
        case unreadable(path: String)

        public var errorDescription: String? {
            switch self {
            case .unsafeDirectory(let path, let reason): "refusing the journal directory \(path): \(reason)"
            case .system(let path, let reason): "the local journal \(path): \(reason)"
            case .unreadable(let path): "the journal entry \(path) cannot be read"
            }
        }
    }

    func path(forAccountId id: String) -> String { directory + "/" + id + ".pair" }

    /// Creates the entry for `account` at its full size (not synced: a refresh that dies before the provider
    /// answers loses nothing). Throws when the journal cannot be written: then nothing may be sent.
    public func reserve(_ account: Account, integration: String?, trigger: AuditTrigger, now: Date) throws
        -> Reservation
    {
        try prepareDirectory()
        let entry = Entry(
            accountId: account.id, account: account.name, integration: integration, trigger: trigger.rawValue,
            sentAt: now, fromAccessSealed: account.accessTokenSealed.map { Data($0) },
            fromRefreshSealed: account.refreshTokenSealed.map { Data($0) },
            accessExpiresBefore: account.accessExpiresAt, refreshExpiresBefore: account.refreshExpiresAt, pair: nil)
        let reservation = Reservation(path: path(forAccountId: account.id), entry: entry)
        // A pair kept earlier (its row had moved on) stays kept, under a name of its own.
        if let kept = Self.decode(reservation.path), kept.pair != nil {
            rename(reservation.path, directory + "/\(account.id)-\(Int(kept.sentAt.timeIntervalSince1970)).pair")
        }
        try write(entry, to: reservation.path, create: true, sync: false)
        return reservation
    }

    /// Writes the provider's answer (`account` as it will be stored) into the reserved entry and syncs it.
    public func record(_ reservation: inout Reservation, stored account: Account, refreshTokenChanged: Bool) throws {
        reservation.entry.pair = Entry.Pair(
            accessSealed: account.accessTokenSealed.map { Data($0) },
            refreshSealed: account.refreshTokenSealed.map { Data($0) },
            accessExpiresAt: account.accessExpiresAt, refreshExpiresAt: account.refreshExpiresAt,
            grantedScopes: account.grantedScopes, updatedAt: account.updatedAt,
            refreshTokenChanged: refreshTokenChanged,
            pairId: account.pair)
        try write(reservation.entry, to: reservation.path, create: false, sync: true)
    }

    /// Removes an entry whose pair is in the store (or that never got one).
    public func remove(_ reservation: Reservation) {
        unlink(reservation.path)
    }

    /// Every entry on disk, by account id; an entry that cannot be decoded is returned as nil (a reservation whose
    /// write was torn).
    public func entries() throws -> [(path: String, entry: Entry?)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { $0.hasSuffix(".pair") }.sorted().map { name in
            let path = directory + "/" + name
            return (path, Self.decode(path))
        }
    }

    /// The entry of one account, if any.
    public func entry(forAccountId id: String) -> Entry?? {
        let path = path(forAccountId: id)
        guard access(path, F_OK) == 0 else { return nil }
        return .some(Self.decode(path))
    }

    static func decode(_ path: String) -> Entry? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(Entry.self, from: data)
    }

    // MARK: Files

    /// The journal's directories: the base (`…/tokenvault/journal`) and this vault's, each created 0700 if needed
    /// and made private if it is ours; the base's parents are created as `mkdir -p` would (0700 where new) and only
    /// checked, never changed: one that others could write (and is not sticky) is refused.
    func prepareDirectory() throws {
        let base = URL(fileURLWithPath: directory).deletingLastPathComponent().path
        let parent = URL(fileURLWithPath: base).deletingLastPathComponent().path
        if access(parent, F_OK) != 0 {
            try? FileManager.default.createDirectory(
                atPath: parent, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        }
        var info = stat()
        guard stat(parent, &info) == 0 else {
            throw Failure.system(path: parent, reason: String(cString: strerror(errno)))
        }
        if info.st_mode & 0o002 != 0 && info.st_mode & S_ISVTX == 0 {
            throw Failure.unsafeDirectory(
                path: parent, reason: "anyone can write it (mode \(String(info.st_mode & 0o7777, radix: 8)))")
        }
        for dir in [base, directory] { try Self.checkDirectory(dir) }
    }

    static func checkDirectory(_ dir: String) throws {
        if mkdir(dir, 0o700) == 0 { chmod(dir, 0o700) }
        var info = stat()
        guard lstat(dir, &info) == 0 else { throw Failure.system(path: dir, reason: String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw Failure.unsafeDirectory(
                path: dir, reason: info.st_mode & S_IFMT == S_IFLNK ? "it is a symbolic link" : "it is not a directory")
        }
        guard info.st_uid == geteuid() else {
            throw Failure.unsafeDirectory(
                path: dir, reason: "it belongs to uid \(info.st_uid), not to you (uid \(geteuid()))")
        }
        if info.st_mode & 0o022 != 0 || info.st_mode & 0o700 != 0o700 {
            guard chmod(dir, 0o700) == 0 else {
                throw Failure.unsafeDirectory(
                    path: dir, reason: "others can write it (mode \(String(info.st_mode & 0o777, radix: 8)))")
            }
        }
    }

    /// Writes `entry` padded to the reserved size. `create`: a new file (replacing a stale one), 0600; otherwise
    /// the reserved file is overwritten in place, which needs no new space as long as the entry fits.
    private func write(_ entry: Entry, to path: String, create: Bool, sync: Bool) throws {
        var bytes = [UInt8](try JSONEncoder().encode(entry))
        if bytes.count < Self.reservedSize { bytes += [UInt8](repeating: 0x20, count: Self.reservedSize - bytes.count) }
        let flags =
            create ? (O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC) : (O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        let fd = open(path, flags, 0o600)
        guard fd >= 0 else { throw Failure.system(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        if create { fchmod(fd, 0o600) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + written, $0.count - written, off_t(written)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure.system(path: path, reason: String(cString: strerror(errno)))
            }
            written += n
        }
        if sync {
            guard fsync(fd) == 0 else {
                throw Failure.system(path: path, reason: "fsync: \(String(cString: strerror(errno)))")
            }
            // The entry's name too: a directory entry is durable once its directory is synced.
            let dirFd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dirFd >= 0 {
                fsync(dirFd)
                close(dirFd)
            }
        }
    }
}

// MARK: Replay

/// What the next command did with the entries an earlier one left.
public struct JournalReplay: Sendable {
    /// Pairs stored now.
    public var stored: [String] = []
    /// Pairs the store already held (its commit landed after all); entries removed.
    public var alreadyStored: [String] = []
    /// Pairs not stored because the account's row moved on since (another refresh, an authorize): kept, with why.
    public var kept: [(account: String, path: String, reason: String)] = []
    /// Entries without a pair (a refresh cut off before the provider answered, or a torn write): removed.
    public var dropped = 0
    /// Refreshes cut off after sending with no answer kept, over a row that has not moved: kept as a mark.
    public var interrupted: [String] = []
    /// Entries another process is working on (its lock is held): left alone.
    public var busy = 0
    /// The store failed: nothing more was tried (entries stay).
    public var storeFailure: (any Error)?

    public init() {}
}

extension RefreshJournal {
    /// Stores the pairs earlier commands left, each only over the row its refresh started from, under the account's
    /// refresh lock (an entry whose lock another process holds is that process's refresh in flight). Each stored
    /// pair gets its `refreshed` audit entry, noting that it came from the journal.
    public func replay(vault: UnlockedVault, now: Date, sleep: @Sendable (Double) async throws -> Void) async
        -> JournalReplay
    {
        var result = JournalReplay()
        let found: [(path: String, entry: Entry?)]
        do { found = try entries() } catch {
            result.storeFailure = error
            return result
        }
        let database = vault.database
        for (path, entry) in found {
            guard let entry else {
                // Unreadable: a reservation another process is writing this instant, or one torn by a crash long
                // ago. Only the latter is removed.
                var info = stat()
                if stat(path, &info) == 0, now.timeIntervalSince1970 - Double(info.st_mtim.tv_sec) > 600 {
                    unlink(path)
                    result.dropped += 1
                }
                continue
            }
            do {
                let row: Account
                do { row = try await database.accountAsync(named: entry.account) } catch StoreError.noSuchAccount {
                    result.kept.append((entry.account, path, "the account was removed since"))
                    continue
                }
                guard row.id == entry.accountId else {
                    result.kept.append((entry.account, path, "the account was removed and added again since"))
                    continue
                }
                let lock: any RefreshLock
                do { lock = try await database.lockForRefresh(row, timeout: 0, sleep: sleep) } catch StoreError.lockBusy
                {
                    result.busy += 1
                    continue
                }
                defer { lock.release() }
                guard entry.pair != nil else {
                    // A refresh cut off after its refresh token was sent, with no answer kept: if the row is still
                    // the one it started from, the provider may have retired that token. Kept (list and check
                    // name the account) until the account's next refresh finds out.
                    if entry.startedFrom(row) {
                        result.interrupted.append(entry.account)
                    } else {
                        unlink(path)
                        result.dropped += 1
                    }
                    continue
                }
                let outcome = try await store(entry, over: row, vault: vault, now: now)
                switch outcome {
                case .stored:
                    unlink(path)
                    result.stored.append(entry.account)
                case .alreadyStored:
                    unlink(path)
                    result.alreadyStored.append(entry.account)
                case .movedOn:
                    result.kept.append(
                        (entry.account, path, "the account's pair changed since (another refresh or an authorize)"))
                case .unopenable:
                    result.kept.append(
                        (entry.account, path, "its sealed tokens do not open under the vault's current key"))
                }
            } catch {
                result.storeFailure = error
                return result
            }
        }
        return result
    }
}

extension RefreshJournal {
    public enum StoreOutcome: Sendable { case stored, alreadyStored, movedOn, unopenable }

    /// Stores one entry's pair over `row` if the row is still the one its refresh started from, with its
    /// `refreshed` audit entry (the caller holds the account's refresh lock and removes the file).
    public func store(_ entry: Entry, over row: Account, vault: UnlockedVault, now: Date) async throws -> StoreOutcome {
        let candidate = entry.applied(to: row)
        // Sealed under this master key with the store's labels, or it is not stored (a `keys rotate` since).
        // Opened directly, not through accessToken(of:), which also wants the row to match the newest audit
        // entry: this pair's entry is the one about to be written.
        do {
            if let sealed = candidate.accessTokenSealed {
                _ = try vault.open(sealed, label: SealLabel.accessToken(candidate), what: "the journaled access token")
            }
            if let sealed = candidate.refreshTokenSealed {
                _ = try vault.open(
                    sealed, label: SealLabel.refreshToken(candidate), what: "the journaled refresh token")
            }
        } catch { return .unopenable }
        return try await vault.database.writeAsync { w in
            let current = try w.account(named: entry.account)
            if entry.isStored(in: current) { return .alreadyStored }
            guard entry.startedFrom(current) else { return .movedOn }
            try w.update(candidate)
            var draft = AuditDraft(
                at: now, account: entry.account, integration: entry.integration, event: .refreshed,
                trigger: AuditTrigger(entry.trigger), outcome: .ok,
                accessExpiresBefore: entry.accessExpiresBefore, accessExpiresAfter: candidate.accessExpiresAt,
                refreshExpiresBefore: entry.refreshExpiresBefore, refreshExpiresAfter: candidate.refreshExpiresAt,
                refreshTokenChanged: entry.pair?.refreshTokenChanged, pair: candidate.pair)
            draft.detail =
                "stored from the local journal: the vault's store had failed after the provider answered at \(Format.timestamp(entry.sentAt))"
            try vault.appendAudit(draft, in: w)
            return .stored
        }
    }

    /// The journal of `vault` under `services`' journal base, nil when the command keeps none.
    public static func of(_ database: any VaultStorage, services: VaultServices) -> RefreshJournal? {
        services.journalBase.map { RefreshJournal(base: $0, location: database.location) }
    }

    /// Stores what earlier commands left in the journal (``replay(vault:now:sleep:)``) and says so on the console:
    /// one line for the pairs stored, one per pair kept. Run by every command that refreshes, before it refreshes.
    @discardableResult
    public static func storePending(vault: UnlockedVault, services: VaultServices) async -> JournalReplay {
        guard let journal = of(vault.database, services: services),
            let names = try? FileManager.default.contentsOfDirectory(atPath: journal.directory),
            names.contains(where: { $0.hasSuffix(".pair") })
        else { return JournalReplay() }
        let result = await journal.replay(vault: vault, now: services.now(), sleep: services.sleep)
        let console = services.console
        if !result.stored.isEmpty {
            let names =
                result.stored.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
                + (result.stored.count > 5 ? ", …" : "")
            console.err(
                "tokenvault: stored \(result.stored.count) new pair\(result.stored.count == 1 ? "" : "s") the local journal kept when the vault's store failed (\(names))\n"
            )
        }
        for kept in result.kept {
            console.warn(
                "the local journal keeps a new pair of '\(kept.account)' that was not stored: \(kept.reason); it stays in \(kept.path)"
            )
            console.err(
                "tokenvault: hint: if the account works ('tokenvault token \(kept.account)'), remove that file; if the provider refuses it, run 'tokenvault authorize \(kept.account)'\n"
            )
        }
        if let failure = result.storeFailure {
            console.warn(
                "the pairs the local journal keeps could not be stored yet (\(failure.localizedDescription)); they stay in \(journal.directory) for the next command"
            )
        }
        return result
    }

    /// Entries with a pair, by account id (for `list` and `check`: no passphrase needed, nothing opened).
    public func waitingPairs() -> [String: Entry] {
        var found: [String: Entry] = [:]
        for (_, entry) in (try? entries()) ?? [] {
            if let entry, entry.pair != nil { found[entry.accountId] = entry }
        }
        return found
    }

    /// Entries of refreshes cut off after sending with no answer kept (``JournalReplay/interrupted``), whose
    /// process is gone (the account's lock is free) and whose row has not moved: `list` and `check` name them.
    public func interruptedRefreshes(in database: any VaultStorage) async -> [Entry] {
        var found: [Entry] = []
        for (_, entry) in (try? entries()) ?? [] {
            guard let entry, entry.pair == nil, let row = try? await database.accountAsync(named: entry.account),
                entry.startedFrom(row),
                let lock = try? await database.lockForRefresh(row, timeout: 0, sleep: { _ in })
            else { continue }
            lock.release()
            found.append(entry)
        }
        return found
    }
}
