import Foundation
import Synchronization
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultOAuth
import VaultStore

@testable import TokenVaultCore

/// A store whose writes fail while `failing` is set (a server down, a full disk); everything else is the inner store's.
final class FailingStore: VaultStorage {
    let inner: any VaultStorage
    let failing = Mutex(false)
    init(_ inner: any VaultStorage) { self.inner = inner }

    private func check() throws {
        if failing.withLock({ $0 }) { throw StoreError.database("database or disk is full") }
    }

    var location: String { inner.location }
    func header() throws -> VaultHeader { try inner.header() }
    func integrations() throws -> [Integration] { try inner.integrations() }
    func integration(named name: String) throws -> Integration { try inner.integration(named: name) }
    func integration(id: String) throws -> Integration? { try inner.integration(id: id) }
    func accounts() throws -> [Account] { try inner.accounts() }
    func account(named name: String) throws -> Account { try inner.account(named: name) }
    func accountAsync(named name: String) async throws -> Account { try await inner.accountAsync(named: name) }
    func accountSummaries() throws -> [AccountSummary] { try inner.accountSummaries() }
    func accounts(accessExpiringBefore date: Date, orStoredAfter storedAfter: Date?) throws -> [Account] {
        try inner.accounts(accessExpiringBefore: date, orStoredAfter: storedAfter)
    }
    func accountCount(integrationId: String) throws -> Int { try inner.accountCount(integrationId: integrationId) }
    func auditEntries(account: String?) throws -> [AuditEntry] { try inner.auditEntries(account: account) }
    func auditHead() throws -> (seq: Int64, mac: [UInt8]) { try inner.auditHead() }
    func newestAuditEntry() throws -> AuditEntry? { try inner.newestAuditEntry() }
    func newestPairEntry(account: String) throws -> (entry: AuditEntry, previousMAC: [UInt8])? {
        try inner.newestPairEntry(account: account)
    }
    func pairStoredTimes() throws -> [String: Date] { try inner.pairStoredTimes() }
    func refreshTokensRotate(integration name: String) throws -> Bool {
        try inner.refreshTokensRotate(integration: name)
    }
    func write<T>(_ body: (any VaultTransaction) throws -> T) throws -> T {
        try check()
        return try inner.write(body)
    }
    func writeAsync<T: Sendable>(_ body: @escaping @Sendable (any VaultTransaction) throws -> T) async throws -> T {
        try check()
        return try await inner.writeAsync(body)
    }
    func notifiedEvents() throws -> [String: String] { try inner.notifiedEvents() }
    func purgeDeletedData() throws { try inner.purgeDeletedData() }
    func checkRefreshLocks() throws { try inner.checkRefreshLocks() }
    func lockForRefresh(_ account: Account, timeout: TimeInterval, sleep: @Sendable (Double) async throws -> Void)
        async throws -> any RefreshLock
    {
        try await inner.lockForRefresh(account, timeout: timeout, sleep: sleep)
    }
    func locationWarnings() -> [String] { inner.locationWarnings() }
    func keySlots() throws -> [KeySlot] { try inner.keySlots() }
    func snapshot() throws -> VaultSnapshot { try inner.snapshot() }
    func close() throws { try inner.close() }
}

@Suite struct RefreshJournalTests {
    /// A fresh directory for journals, removed by the caller.
    static func temporaryBase() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tokenvault-journal-" + UUID().uuidString
        ).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Generated test tokens, never real ones.
    static func generated(_ prefix: String) -> String {
        prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "")
    }

    /// `account` refreshed to a new pair, sealed as the refresher seals it.
    static func refreshed(_ account: Account, in m: MemoryVault, access: String, refresh: String) throws -> Account {
        var next = account
        next.accessTokenSealed = try m.vault.seal(access, label: SealLabel.accessToken(account))
        next.refreshTokenSealed = try m.vault.seal(refresh, label: SealLabel.refreshToken(account))
        next.accessExpiresAt = m.now.addingTimeInterval(3600)
        next.updatedAt = m.now.addingTimeInterval(1)
        return next
    }

    @Test func aKeptPairIsStoredByTheNextReplayWithItsAuditEntry() async throws {
        let m = try MemoryVault()
        let base = try Self.temporaryBase()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let account = try m.add("alice", provider: .github)
        let journal = RefreshJournal(base: base, location: m.database.location)
        var reservation = try journal.reserve(account, integration: "github", trigger: .refreshAll, now: m.now)
        let access = Self.generated("ghu_")
        let refresh = Self.generated("ghr_")
        let next = try Self.refreshed(account, in: m, access: access, refresh: refresh)
        try journal.record(&reservation, stored: next, refreshTokenChanged: true)
        #expect(journal.waitingPairs()[account.id]?.account == "alice")

        let auditBefore = try m.database.auditEntries().count
        let replay = await journal.replay(vault: m.vault, now: m.now, sleep: { _ in })
        #expect(replay.stored == ["alice"])
        #expect(try m.refreshToken("alice") == refresh)
        #expect(try m.vault.accessToken(of: try m.database.account(named: "alice")).copyToString() == access)
        let entries = try m.database.auditEntries()
        #expect(entries.count == auditBefore + 1)
        #expect(entries.last?.draft.event == .refreshed)
        #expect(entries.last?.draft.detail?.contains("local journal") == true)
        #expect(try journal.entries().isEmpty)
        // Nothing left: a second replay does nothing.
        let again = await journal.replay(vault: m.vault, now: m.now, sleep: { _ in })
        #expect(again.stored.isEmpty && again.kept.isEmpty)
    }

    @Test func aPairWhoseRowMovedOnIsKeptAndReportedNotStored() async throws {
        let m = try MemoryVault()
        let base = try Self.temporaryBase()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let account = try m.add("bob", provider: .github)
        let journal = RefreshJournal(base: base, location: m.database.location)
        var reservation = try journal.reserve(account, integration: "github", trigger: .refreshAll, now: m.now)
        try journal.record(
            &reservation,
            stored: try Self.refreshed(account, in: m, access: Self.generated("ghu_"), refresh: Self.generated("ghr_")),
            refreshTokenChanged: true)
        // Meanwhile the account was authorized again: its row moved on.
        let authorized = try Self.refreshed(account, in: m, access: Self.generated("ghu_"), refresh: "RT_authorized")
        try m.database.write { try $0.update(authorized) }

        let replay = await journal.replay(vault: m.vault, now: m.now, sleep: { _ in })
        #expect(replay.stored.isEmpty)
        #expect(replay.kept.map(\.account) == ["bob"])
        #expect(try m.refreshToken("bob") == "RT_authorized")
        #expect(try journal.entries().count == 1)
        #expect(FileManager.default.fileExists(atPath: replay.kept[0].path))
    }

    /// A pair whose commit landed after all is dropped; a reservation without a pair (cut off after sending) over
    /// an unchanged row is kept as the account's `interrupted` mark, and dropped once the row moves on.
    @Test func aPairTheStoreAlreadyHoldsIsDroppedAndAReservationWithoutAPairIsAMark() async throws {
        let m = try MemoryVault()
        let base = try Self.temporaryBase()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let stored = try m.add("carol", provider: .github)
        let cut = try m.add("dave", provider: .github)
        let journal = RefreshJournal(base: base, location: m.database.location)
        var reservation = try journal.reserve(stored, integration: "github", trigger: .refreshAll, now: m.now)
        let next = try Self.refreshed(stored, in: m, access: Self.generated("ghu_"), refresh: Self.generated("ghr_"))
        try journal.record(&reservation, stored: next, refreshTokenChanged: true)
        try m.database.write { try $0.update(next) }  // the commit landed although the writer did not hear so
        _ = try journal.reserve(cut, integration: "github", trigger: .refreshAll, now: m.now)  // cut off before an answer

        let auditBefore = try m.database.auditEntries().count
        let replay = await journal.replay(vault: m.vault, now: m.now, sleep: { _ in })
        #expect(replay.alreadyStored == ["carol"])
        #expect(replay.interrupted == ["dave"] && replay.dropped == 0)
        #expect(try m.database.auditEntries().count == auditBefore)
        #expect(try journal.entries().count == 1)
        #expect(await journal.interruptedRefreshes(in: m.database).map(\.account) == ["dave"])
        #expect(try m.refreshToken("dave") == "RT_old")

        // A pair stored since (another refresh, an authorize) settles it.
        try m.database.write {
            try $0.update(
                try Self.refreshed(cut, in: m, access: Self.generated("ghu_"), refresh: Self.generated("ghr_")))
        }
        #expect(await journal.interruptedRefreshes(in: m.database).isEmpty)
        let again = await journal.replay(vault: m.vault, now: m.now, sleep: { _ in })
        #expect(again.dropped == 1)
        #expect(try journal.entries().isEmpty)
    }

    @Test func theJournalIsPrivateAndHoldsNoTokenInTheClear() throws {
        let m = try MemoryVault()
        let base = try Self.temporaryBase()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let account = try m.add("erin", provider: .github)
        let journal = RefreshJournal(base: base + "/state/tokenvault/journal", location: m.database.location)
        var reservation = try journal.reserve(account, integration: "github", trigger: .refreshAll, now: m.now)
        let access = Self.generated("ghu_")
        let refresh = Self.generated("ghr_")
        try journal.record(
            &reservation, stored: try Self.refreshed(account, in: m, access: access, refresh: refresh),
            refreshTokenChanged: true)

        for dir in [base + "/state/tokenvault", base + "/state/tokenvault/journal", journal.directory] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int)
            #expect(mode == 0o700, "\(dir): \(String(mode, radix: 8))")
        }
        let mode = try #require(
            try FileManager.default.attributesOfItem(atPath: reservation.path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let bytes = try #require(FileManager.default.contents(atPath: reservation.path))
        for secret in [access, refresh, "RT_old", "AT_old", "secret"] {
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(secret) in the clear")
            #expect(bytes.range(of: Data(Data(secret.utf8).base64EncodedString().utf8)) == nil, "\(secret) base64'd")
        }
        // It is the store's sealed bytes: the vault's key opens them under the store's labels, and only there.
        let entry = try #require(RefreshJournal.decode(reservation.path)?.pair)
        let sealed = try #require(entry.refreshSealed)
        #expect(
            try m.vault.open([UInt8](sealed), label: SealLabel.refreshToken(account), what: "t").copyToString()
                == refresh)
        #expect(throws: (any Error).self) {
            try m.vault.open([UInt8](sealed), label: SealLabel.accessToken(account), what: "t")
        }
    }

    @Test func aDirectoryOthersCanWriteIsMadePrivateAndASymlinkRefused() throws {
        // The base's parent is only checked, never changed: a journal under /tmp must leave /tmp as it is.
        let tmp = try FileManager.default.attributesOfItem(atPath: "/tmp")[.posixPermissions] as? Int
        let base0 = try Self.temporaryBase()
        defer { try? FileManager.default.removeItem(atPath: base0) }
        try RefreshJournal(base: base0, location: "/nowhere/vault.db").prepareDirectory()
        #expect(try FileManager.default.attributesOfItem(atPath: "/tmp")[.posixPermissions] as? Int == tmp)

        let base = try Self.temporaryBase()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let open = base + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: false)
        chmod(open, 0o777)
        try RefreshJournal.checkDirectory(open)
        #expect(try FileManager.default.attributesOfItem(atPath: open)[.posixPermissions] as? Int == 0o700)
        try FileManager.default.createSymbolicLink(atPath: base + "/link", withDestinationPath: open)
        #expect(throws: RefreshJournal.Failure.self) { try RefreshJournal.checkDirectory(base + "/link") }
    }

    @Test func aPairTheStoreRefusesWaitsInTheJournalAndNoOtherRefreshTokenIsSent() async throws {
        let m = try MemoryVault()
        let base = try Self.temporaryBase()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try m.add("frank", provider: .github)
        try m.add("grace", provider: .github)
        let store = FailingStore(m.database)
        let vault = UnlockedVault(database: store, keys: m.vault.keys)
        let counter = Mutex(0)
        let transport = FakeTransport { _ in
            let n = counter.withLock {
                $0 += 1
                return $0
            }
            return answer(
                200,
                "access_token=ghu_new\(n)&expires_in=28800&refresh_token=ghr_new\(n)&refresh_token_expires_in=15811200&token_type=bearer",
                form: true)
        }
        var services = m.services(transport)
        services.journalBase = base
        services.storeWait = 5
        let clock = Mutex(m.now)
        services.now = { clock.withLock { $0 } }
        services.sleep = { seconds in clock.withLock { $0 = $0.addingTimeInterval(seconds) } }
        let refresher = Refresher(vault: vault, services: services, trigger: .refreshAll, verbose: false)
        store.failing.withLock { $0 = true }
        let first = await refresher.refresh(try m.database.account(named: "frank")) { _ in true }
        #expect(first.status == .pending)
        #expect(refresher.storeHealth.isDown)
        // The store is down: the next account's refresh token is not sent.
        let second = await refresher.refresh(try m.database.account(named: "grace")) { _ in true }
        #expect(second.status == .failed && second.notSentStoreFailing)
        #expect(transport.requests.count == 1)
        #expect(try m.refreshToken("frank") == "RT_old")

        // The store is back: the next command stores the kept pair first.
        store.failing.withLock { $0 = false }
        let replay = await RefreshJournal.storePending(vault: vault, services: services)
        #expect(replay.stored == ["frank"])
        #expect(try m.refreshToken("frank") == "ghr_new1")
    }
}
