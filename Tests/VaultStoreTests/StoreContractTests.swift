import Foundation
import Testing
import TokenVaultLab

@testable import VaultStore

/// One contract, two stores: every operation of ``VaultStorage`` and ``VaultTransaction`` behaves the same on the
/// SQLite file and on PostgreSQL (a fresh database on the test process's throwaway server).
@Suite struct StoreContractTests {
    @Test(arguments: StoreKind.allCases)
    func headerAndIntegrations(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create()
        defer { try? store.close() }
        #expect(try store.header() == sampleHeader())
        var changed = sampleHeader()
        changed.kdfSalt = [1, 2, 3]
        changed.kdfOpsLimit = 4
        changed.masterKeySealed = Array(repeating: 0, count: 80)
        changed.passphraseChangedAt = t0.addingTimeInterval(60.5)
        try store.write { try $0.updateHeader(changed) }
        #expect(try store.header() == changed)

        let integration = sampleIntegration()
        var withOptions = sampleIntegration("b-generic")
        withOptions.providerOptions = #"{"token_url":"https://idp.example/token"}"#
        try store.write { w in
            try w.insert(integration)
            try w.insert(withOptions)
        }
        #expect(try store.integration(named: "reporting") == integration)
        #expect(try store.integration(id: withOptions.id) == withOptions)
        #expect(try store.integration(id: UUID().uuidString.lowercased()) == nil)
        #expect(try store.integrations().map(\.name) == ["b-generic", "reporting"])
        #expect(throws: StoreError.duplicateIntegration("reporting")) { try store.write { try $0.insert(integration) } }
        #expect(throws: StoreError.noSuchIntegration("nope")) { try store.integration(named: "nope") }

        // An edit lands only over the secret it was made from.
        var edited = integration
        edited.clientId = "C0ffee2"
        edited.clientSecretSealed = [7, 7, 7]
        edited.scopes = ["spark:kms"]
        try store.write { try $0.update(edited, previousSecret: integration.clientSecretSealed) }
        #expect(try store.integration(named: "reporting") == edited)
        #expect(throws: StoreError.self) { try store.write { try $0.update(integration, previousSecret: [9, 9]) } }
        #expect(try store.integration(named: "reporting") == edited)
        try store.write { try $0.replaceClientSecret(integrationId: edited.id, old: [1], new: [2]) }
        #expect(try store.integration(named: "reporting").clientSecretSealed == [7, 7, 7])
        try store.write { try $0.replaceClientSecret(integrationId: edited.id, old: [7, 7, 7], new: [8]) }
        #expect(try store.integration(named: "reporting").clientSecretSealed == [8])
        #expect(try store.write { try $0.integration(named: "b-generic") } == withOptions)
    }

    @Test(arguments: StoreKind.allCases)
    func accountsKeepEveryField(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create()
        defer { try? store.close() }
        let integration = sampleIntegration()
        var alice = fullAccount("alice", integration: integration)
        let bare = Account(name: "bare", integrationId: integration.id, createdAt: t0, updatedAt: t0)
        try store.write { w in
            try w.insert(integration)
            try w.insert(alice)
            try w.insert(bare)
        }
        let stored = try store.account(named: "alice")
        #expect(stored == alice, "\(stored)\n\(alice)")
        #expect(try store.account(named: "bare") == bare)
        #expect(try await store.accountAsync(named: "alice") == alice)
        #expect(try store.accounts() == [alice, bare])
        #expect(try store.write { try $0.accountExists(named: "alice") })
        #expect(try !store.write { try $0.accountExists(named: "nobody") })
        #expect(throws: StoreError.duplicateAccount("alice")) { try store.write { try $0.insert(alice) } }
        await #expect(throws: StoreError.noSuchAccount("nobody")) { try await store.accountAsync(named: "nobody") }

        alice.state = .needsReauth
        alice.refreshTokenSealed = nil
        alice.grantedScopes = nil
        alice.accessExpiresAt = t0.addingTimeInterval(10)
        alice.updatedAt = t0.addingTimeInterval(20)
        try await store.writeAsync { [alice] in try $0.update(alice) }
        #expect(try store.write { try $0.account(named: "alice") } == alice)

        let summaries = try store.accountSummaries()
        #expect(summaries.map(\.name) == ["alice", "bare"])
        #expect(
            summaries[0]
                == AccountSummary(
                    name: "alice", integrationId: integration.id, hasAccessToken: true, hasRefreshToken: false,
                    accessExpiresAt: alice.accessExpiresAt, refreshExpiresAt: alice.refreshExpiresAt,
                    grantedScopes: nil,
                    email: alice.email, displayName: alice.displayName, orgId: alice.orgId, state: .needsReauth,
                    updatedAt: alice.updatedAt))
        #expect(summaries[1].hasAccessToken == false && summaries[1].accessExpiresAt == nil)

        // Expiring: a lapsing access token, one without any expiry, or a pair stored "in the future".
        #expect(try store.accounts(accessExpiringBefore: t0).map(\.name) == ["bare"])
        #expect(try store.accounts(accessExpiringBefore: t0.addingTimeInterval(11)).map(\.name) == ["alice", "bare"])
        #expect(
            try store.accounts(accessExpiringBefore: t0, orStoredAfter: t0.addingTimeInterval(19)).map(\.name) == [
                "alice", "bare",
            ])
        #expect(try store.accountCount(integrationId: integration.id) == 2)

        try store.write { try $0.deleteAccount(id: bare.id) }
        #expect(throws: StoreError.noSuchAccount("bare")) { try store.account(named: "bare") }
        try store.write { try $0.deleteIntegration(id: integration.id) }
        #expect(try store.accounts().isEmpty)
        #expect(try store.accountCount(integrationId: integration.id) == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func auditAppendsChainAndMoveTheHead(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create(auditHeadMAC: headMAC(0, []))
        defer { try? store.close() }
        #expect(try store.newestAuditEntry() == nil)
        #expect(try store.auditHead().seq == 0)
        var seen: [(Int64, [UInt8])] = []
        for i in 0..<3 {
            try store.write { w in
                try w.appendAudit(
                    draft(i == 1 ? "bob" : "alice", event: .refreshed, changed: i == 2),
                    mac: { seq, d, previous in
                        seen.append((seq, previous))
                        return chainMAC(seq, d, previous)
                    }, headMAC: headMAC)
            }
        }
        #expect(seen.map(\.0) == [1, 2, 3])
        let entries = try store.auditEntries()
        #expect(seen.map(\.1) == [[]] + entries.dropLast().map(\.mac))
        #expect(
            entries.map(\.draft) == [
                draft("alice", event: .refreshed, changed: false), draft("bob", event: .refreshed, changed: false),
                draft("alice", event: .refreshed, changed: true),
            ])
        #expect(try store.auditEntries(account: "bob").map(\.seq) == [2])
        #expect(try store.newestAuditEntry() == entries.last)
        #expect(try store.auditHead().seq == 3)
        #expect(try chainProblems(store).isEmpty)
        #expect(try store.refreshTokensRotate(integration: "reporting"))
        #expect(try !store.refreshTokensRotate(integration: "other"))
    }

    /// Schema v5: an account's pair id and an entry's `pair` are kept as written, and the newest entry of an
    /// account that set its pair comes with the MAC of the entry before it.
    /// When each account's pair was stored: its newest imported, authorized or refreshed entry, whatever came
    /// after (a failed refresh, a revocation of another account) and whatever the row's update time says.
    @Test(arguments: StoreKind.allCases)
    func pairStoredTimesFollowThePairStoringEntries(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create(auditHeadMAC: headMAC(0, []))
        defer { try? store.close() }
        #expect(try store.pairStoredTimes().isEmpty)
        func at(_ d: AuditDraft, _ seconds: Double) -> AuditDraft {
            var d = d
            d.at = t0.addingTimeInterval(seconds)
            return d
        }
        for d in [
            at(draft("alice"), 0), at(draft("bob", event: .authorized), 10),
            at(draft("alice", event: .refreshed), 20.5),
            at(draft("alice", event: .refreshFailed), 30), at(draft("carol", event: .refreshFailed), 35),
            at(draft("bob", event: .accessTokenRejected), 40), at(draft("dave", event: .imported), 50),
            at(draft("dave", event: .revoked), 60),
        ] {
            try append(store, d)
        }
        let times = try store.pairStoredTimes()
        #expect(times["alice"] == t0.addingTimeInterval(20.5))
        #expect(times["bob"] == t0.addingTimeInterval(10))
        #expect(times["carol"] == nil)
        // A revoked account's name has no pair; the caller asks only for accounts that exist.
        #expect(times["dave"] == t0.addingTimeInterval(50))
    }

    @Test(arguments: StoreKind.allCases)
    func pairIdsAndTheNewestPairEntry(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create(auditHeadMAC: headMAC(0, []))
        defer { try? store.close() }
        let integration = sampleIntegration()
        var alice = fullAccount("alice", integration: integration)
        alice.pair = "0123456789abcdef0123456789abcdef"
        try store.write { w in
            try w.insert(integration)
            try w.insert(alice)
        }
        #expect(try store.account(named: "alice") == alice)
        #expect(try store.newestPairEntry(account: "alice") == nil)
        let drafts: [AuditDraft] = [
            {
                var d = draft("alice")
                d.pair = "p1"
                return d
            }(),
            draft("bob", event: .refreshed),
            {
                var d = draft("alice", event: .refreshed)
                d.pair = "p2"
                return d
            }(),
            draft("alice", event: .refreshFailed),
            {
                var d = draft("bob", event: .revoked)
                d.pair = ""
                return d
            }(),
        ]
        for d in drafts {
            try store.write { try $0.appendAudit(d, mac: chainMAC, headMAC: headMAC) }
        }
        let entries = try store.auditEntries()
        #expect(entries.map(\.draft.pair) == ["p1", nil, "p2", nil, ""])
        let alices = try #require(try store.newestPairEntry(account: "alice"))
        #expect(alices.entry == entries[2] && alices.previousMAC == entries[1].mac)
        let bobs = try #require(try store.newestPairEntry(account: "bob"))
        #expect(bobs.entry == entries[4] && bobs.entry.draft.pair == "" && bobs.previousMAC == entries[3].mac)
        #expect(try chainProblems(store).isEmpty)
        alice.pair = "p2"
        try store.write { try $0.update(alice) }
        #expect(try store.account(named: "alice").pair == "p2")
    }

    @Test(arguments: StoreKind.allCases)
    func aHeadMismatchIsRecordedAsTamperBeforeTheAppend(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create(auditHeadMAC: [9, 9])
        defer { try? store.close() }
        let entry = try append(store, draft())
        #expect(entry.seq == 2)
        let entries = try store.auditEntries()
        #expect(entries.map(\.draft.event) == [.tamperDetected, .imported])
        #expect(entries[0].draft.outcome == .headMismatch)
        #expect(entries[0].draft.detail == "head record at entry 0, newest entry 0")
        #expect(try chainProblems(store).isEmpty)
    }

    /// Another connection cannot UPDATE, DELETE (or, on PostgreSQL, TRUNCATE) an entry: the database answers with
    /// the triggers' message.
    @Test(arguments: StoreKind.allCases)
    func theAuditLogIsAppendOnlyForOtherConnections(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create(auditHeadMAC: headMAC(0, []))
        defer { try? store.close() }
        try append(store, draft())
        var statements = [
            "UPDATE audit_entry SET outcome = 'edited'", "UPDATE audit_entry SET mac = mac", "DELETE FROM audit_entry",
        ]
        if kind == .postgresql {
            statements += [
                "TRUNCATE audit_entry",
                // The re-keying switch alone does not allow changing anything but the MAC.
                "BEGIN; SET LOCAL tokenvault.rewrite_audit_macs = 'on'; UPDATE audit_entry SET outcome = 'edited'; COMMIT",
            ]
        }
        for sql in statements {
            do {
                try place.rawSQL(sql)
                Issue.record("\(sql) was allowed")
            } catch {
                #expect("\(error)".contains("the audit log is append-only"), "\(sql): \(error)")
            }
        }
        #expect(try store.auditEntries().map(\.draft.outcome) == [.ok])
        #expect(try chainProblems(store).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func rewritingTheMACsChangesOnlyTheMACsAndTheHead(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create(auditHeadMAC: headMAC(0, []))
        defer { try? store.close() }
        for i in 0..<3 { try append(store, draft(detail: "n\(i)")) }
        let before = try store.auditEntries()
        let newMACs = Dictionary(uniqueKeysWithValues: before.map { ($0.seq, [UInt8(0xA0 + $0.seq)] + $0.mac) })
        try store.write { try $0.rewriteAuditMACs(newMACs, headMAC: [0xEE]) }
        let after = try store.auditEntries()
        #expect(after.map(\.draft) == before.map(\.draft))
        #expect(after.map(\.seq) == before.map(\.seq))
        #expect(after.map(\.mac) == before.map { newMACs[$0.seq]! })
        #expect(try store.auditHead() == (3, [0xEE]))
        // A MAC for an entry that does not exist rolls the whole change back.
        #expect(throws: StoreError.self) {
            try store.write { try $0.rewriteAuditMACs([1: [1], 99: [2]], headMAC: [0xFF]) }
        }
        #expect(try store.auditEntries().map(\.mac) == after.map(\.mac))
        #expect(try store.auditHead().mac == [0xEE])
        // And the log is append-only again afterwards.
        #expect(throws: (any Error).self) { try place.rawSQL("UPDATE audit_entry SET mac = mac") }
        #expect(throws: (any Error).self) { try place.rawSQL("DELETE FROM audit_entry") }
        #expect(try store.auditEntries().count == 3)
    }

    @Test(arguments: StoreKind.allCases)
    func keySlotsInsertUpdateDelete(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create()
        defer { try? store.close() }
        let main = KeySlot(
            name: "main", kdfAlgorithm: "argon2id13", kdfSalt: [1], kdfOpsLimit: 2, kdfMemLimit: 1 << 26,
            masterKeySealed: [2], createdAt: t0, changedAt: t0)
        let host = sampleSlot("host-b", at: t0.addingTimeInterval(1))
        let early = sampleSlot("host-a", at: t0.addingTimeInterval(1))
        try store.write { w in
            try w.insert(main)
            try w.insert(host)
            try w.insert(early)
        }
        #expect(try store.keySlots() == [main, early, host])
        #expect(throws: StoreError.duplicateKeySlot("main")) { try store.write { try $0.insert(main) } }
        var changed = host
        changed.kdfSalt = [9]
        changed.publicKey = nil
        changed.secretKeySealed = nil
        changed.changedAt = t0.addingTimeInterval(99)
        try store.write { try $0.update(changed) }
        #expect(try store.write { try $0.keySlots() } == [main, early, changed])
        #expect(throws: StoreError.noSuchKeySlot("ghost")) { try store.write { try $0.update(sampleSlot("ghost")) } }
        try store.write { try $0.deleteKeySlot(named: "host-a") }
        #expect(try store.keySlots().map(\.name) == ["main", "host-b"])
        #expect(throws: StoreError.noSuchKeySlot("host-a")) {
            try store.write { try $0.deleteKeySlot(named: "host-a") }
        }
        try store.write { try $0.deleteAllKeySlots() }
        #expect(try store.keySlots().isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func notificationsAreRecordedAndCleared(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create()
        defer { try? store.close() }
        try store.write { w in
            try w.setNotified(account: "alice", event: "needs-reauth", at: t0)
            try w.setNotified(account: "bob", event: "refresh-lapsing", at: t0)
        }
        try store.write { try $0.setNotified(account: "alice", event: "refresh-failing", at: t0.addingTimeInterval(1)) }
        #expect(try store.notifiedEvents() == ["alice": "refresh-failing", "bob": "refresh-lapsing"])
        try store.write { try $0.setNotified(account: "bob", event: nil, at: t0) }
        #expect(try store.notifiedEvents() == ["alice": "refresh-failing"])
        #expect(
            try store.snapshot().notifications == [
                NotificationRecord(account: "alice", event: "refresh-failing", at: t0.addingTimeInterval(1))
            ])
    }

    /// snapshot → restore into a new store of either kind gives an equal snapshot.
    @Test(arguments: StoreKind.allCases, StoreKind.allCases)
    func aSnapshotRestoresIntoEitherStore(_ from: StoreKind, _ to: StoreKind) async throws {
        let source = try await StorePlace(from).create(auditHeadMAC: headMAC(0, []))
        defer { try? source.close() }
        try fill(source)
        let snapshot = try source.snapshot()
        #expect(snapshot.accounts.count == 3 && snapshot.auditEntries.count == 5 && snapshot.keySlots.count == 2)
        let copy = try await StorePlace(to).create(header: snapshot.header, auditHeadMAC: nil)
        defer { try? copy.close() }
        try copy.write { try $0.restore(snapshot) }
        #expect(try copy.snapshot() == snapshot)
        #expect(try chainProblems(copy).isEmpty)
        // And the copy goes on: the next append chains onto the copied head.
        try append(copy, draft("carol"))
        #expect(try chainProblems(copy).isEmpty)
    }

    @Test func sqliteToPostgreSQLToSQLiteKeepsEverything() async throws {
        let first = try await StorePlace(.sqlite).create(auditHeadMAC: headMAC(0, []))
        try fill(first)
        let original = try first.snapshot()
        var current = original
        for kind in [StoreKind.postgresql, .sqlite] {
            let next = try await StorePlace(kind).create(header: current.header)
            try next.write { [current] in try $0.restore(current) }
            current = try next.snapshot()
            try next.close()
        }
        #expect(current == original)
        try first.close()
    }

    /// One refresh at a time per account across store instances (processes, hosts): `timeout: 0` is one try and
    /// then lockBusy at once; a wait ends in lockBusy after the timeout; release() frees it; another account is
    /// never blocked.
    @Test(arguments: StoreKind.allCases)
    func refreshLocksAreExclusiveAcrossStores(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let a = try place.create()
        let b = try place.open()
        defer {
            try? a.close()
            try? b.close()
        }
        let integration = sampleIntegration()
        let alice = Account(name: "alice", integrationId: integration.id, createdAt: t0, updatedAt: t0)
        let bob = Account(name: "bob", integrationId: integration.id, createdAt: t0, updatedAt: t0)
        let noSleep: @Sendable (Double) async throws -> Void = { _ in }
        try a.checkRefreshLocks()
        let held = try await a.lockForRefresh(alice, timeout: 0, sleep: noSleep)
        // b's lock connection is opened here, so that what is timed below is the one try.
        try await b.lockForRefresh(bob, timeout: 0, sleep: noSleep).release()

        var started = Date()
        await #expect(throws: StoreError.self) { _ = try await b.lockForRefresh(alice, timeout: 0, sleep: noSleep) }
        // Bounded loosely: under a full parallel test run one statement off the pool has taken 2.6 s (twice, with the
        // connection already open); a `timeout: 0` taken as "the default wait" would wait 300 s.
        #expect(Date().timeIntervalSince(started) < 15, "timeout 0 waited")
        // The same store, a second refresh of the same account (another task): busy too.
        await #expect(throws: StoreError.self) { _ = try await a.lockForRefresh(alice, timeout: 0, sleep: noSleep) }
        started = Date()
        do {
            _ = try await b.lockForRefresh(alice, timeout: 0.3, sleep: noSleep)
            Issue.record("b took a held lock")
        } catch let error as StoreError {
            guard case .lockBusy = error else {
                Issue.record("not lockBusy: \(error)")
                return
            }
        }
        #expect(Date().timeIntervalSince(started) >= 0.3)
        let other = try await b.lockForRefresh(bob, timeout: 0, sleep: noSleep)
        other.release()

        #expect(await held.isStillHeld())
        held.release()
        let taken = try await b.lockForRefresh(alice, timeout: 0, sleep: noSleep)
        await #expect(throws: StoreError.self) { _ = try await a.lockForRefresh(alice, timeout: 0, sleep: noSleep) }
        taken.release()
        try await a.lockForRefresh(alice, timeout: 0, sleep: noSleep).release()
    }

    /// The in-memory vault's locks (unit tests of the layers above) answer `timeout: 0` the same way.
    @Test func inMemoryRefreshLocksTryOnceForTimeoutZero() async throws {
        let store = try SQLiteVault.inMemory(header: sampleHeader())
        let alice = Account(name: "alice", integrationId: UUID().uuidString.lowercased(), createdAt: t0, updatedAt: t0)
        let held = try await store.lockForRefresh(alice, timeout: 0, sleep: { _ in })
        let started = Date()
        await #expect(throws: StoreError.self) {
            _ = try await store.lockForRefresh(alice, timeout: 0, sleep: { _ in })
        }
        #expect(Date().timeIntervalSince(started) < 15, "timeout 0 waited")
        held.release()
        try await store.lockForRefresh(alice, timeout: 0, sleep: { _ in }).release()
    }

    /// A holder that dies (SIGKILL) frees the lock: the kernel closes its flock, the server ends its session.
    @Test(arguments: StoreKind.allCases)
    func aRefreshLockIsFreedWhenItsHolderDies(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create()
        defer { try? store.close() }
        let alice = Account(name: "alice", integrationId: UUID().uuidString.lowercased(), createdAt: t0, updatedAt: t0)
        let noSleep: @Sendable (Double) async throws -> Void = { _ in }
        // A child process takes the lock the way the store does, and keeps it.
        let holder: SpawnedChild
        switch kind {
        case .sqlite:
            try await store.lockForRefresh(alice, timeout: 0, sleep: noSleep).release()  // makes the lock file
            let file = FileAccountLock.directory(forVault: place.location) + "/\(alice.id).lock"
            holder = try spawnChild(
                "/usr/bin/flock", ["--exclusive", "--no-fork", file, "/bin/sleep", "60"],
                environment: ["PATH": "/usr/bin:/bin"])
        case .postgresql:
            let server = try await PostgresServer.sharedOffPool()
            // psql takes the lock and then waits, idle, for its next line, as a tokenvault process's lock
            // connection waits while its refresh talks to the provider.
            holder = try spawnChild(
                server.psqlPath,
                [
                    "--no-psqlrc", "--quiet", "--host=" + server.socketDirectory, "--port=\(server.port)",
                    "--dbname=" + place.database!,
                ],
                environment: ["PATH": "/usr/bin:/bin"], discardStdout: true, discardStderr: true)
            writeAll(
                holder.stdinFD, "SELECT pg_advisory_lock(\(PostgresRefreshLocks.namespace), hashtext('\(alice.id)'));\n"
            )
        }
        defer {
            kill(holder.pid, SIGKILL)
            if holder.stdinFD >= 0 { close(holder.stdinFD) }
            var s: Int32 = 0
            waitpid(holder.pid, &s, 0)
        }
        // Until the child holds it, a try may still succeed: wait for the first refusal.
        let deadline = Date().addingTimeInterval(20)
        var refused = false
        while !refused && Date() < deadline {
            do {
                try await store.lockForRefresh(alice, timeout: 0, sleep: noSleep).release()
                try await Task.sleep(for: .milliseconds(20))
            } catch { refused = true }
        }
        #expect(refused, "the child never held the lock")
        kill(holder.pid, SIGKILL)
        // Freed once the holder is gone (the server notices the closed connection at once).
        let lock = try await store.lockForRefresh(alice, timeout: 10, sleep: noSleep)
        lock.release()
    }

    /// Writers on several store instances (processes, hosts) append at once: one chain, no gap, no fork, every
    /// entry once.
    @Test(arguments: StoreKind.allCases)
    func concurrentAppendsFromManyStoresKeepOneChain(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        try place.create(auditHeadMAC: headMAC(0, [])).close()
        let writers = 4
        let each = 20
        let stores = try (0..<writers).map { _ in try place.open() }
        defer { for store in stores { try? store.close() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (w, store) in stores.enumerated() {
                group.addTask {
                    for i in 0..<each {
                        let d = draft("writer\(w)", detail: "\(w)-\(i)")
                        try await store.writeAsync { try $0.appendAudit(d, mac: chainMAC, headMAC: headMAC) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let check = try place.open()
        defer { try? check.close() }
        #expect(try chainProblems(check) == [])
        let details = try check.auditEntries().compactMap(\.draft.detail)
        #expect(details.count == writers * each)
        #expect(Set(details).count == writers * each)
    }
}
