import Foundation
import GRDB
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport
import VaultCrypto
import VaultStore

@testable import TokenVaultCore

/// The store's writer without a passphrase (whoever can write the vault file, or administers its PostgreSQL
/// database), against the built binary, on both stores.
@Suite struct UntrustedStoreBinaryTests {
    enum Store: String, CaseIterable, Sendable { case sqlite, postgresql }

    /// A sandbox workspace whose vault is a file, or a new database on the tests' PostgreSQL server; `body` gets the
    /// location the attacker writes to.
    static func with(_ store: Store, _ body: (SandboxWorkspace, String) async throws -> Void) async throws {
        try await with(store) { s, location, _ in try await body(s, location) }
    }

    /// The same, with a way to run SQL as the attacker: on the file with its triggers dropped, on PostgreSQL as the
    /// superuser with triggers off (`session_replication_role = replica`).
    static func with(
        _ store: Store, _ body: (SandboxWorkspace, String, @escaping (String) throws -> Void) async throws -> Void
    ) async throws {
        switch store {
        case .sqlite:
            try await SandboxWorkspace.with { s in
                try await body(s, s.ws.vault) { sql in
                    let queue = try DatabaseQueue(path: s.ws.vault)
                    defer { try? queue.close() }
                    try queue.write { db in
                        for trigger in try String.fetchAll(
                            db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger'")
                        {
                            try db.execute(sql: "DROP TRIGGER \(trigger)")
                        }
                        try db.execute(sql: sql)
                    }
                }
            }
        case .postgresql:
            try await VaultBinaryTests.PostgreSQL.with { s, server, database in
                try await s.expectOK(["init", "--kdf", "interactive"])
                try await s.addIntegration()
                try await body(s, server.location(database: database)) { sql in
                    _ = try server.psql(database, "SET session_replication_role = replica; " + sql)
                }
            }
        }
    }

    /// The master-key substitution: a master key K of the attacker's sealed to every box-form slot's public key (the key is in
    /// the row, and a sealed box needs nothing else), each slot's public-key MAC and the whole audit chain with its
    /// head re-MAC'd under K. Before the fix every member's passphrase opened K, `audit --verify` passed, and all
    /// that was sealed afterwards was the attacker's to read.
    static func substituteMasterKey(at location: String) throws -> InProcessKeyHolder {
        let theirs = InProcessKeyHolder.generate()
        let store = try VaultStores.open(location)
        defer { try? store.close() }
        try store.write { w in
            for var slot in try w.keySlots() where slot.publicKey != nil {
                let publicKey = Array(slot.publicKey!.prefix(BoxKeyPair.publicKeyBytes))
                slot.masterKeySealed = try theirs.wrapMasterKey(toPublicKey: publicKey)
                slot.publicKey = publicKey + (try theirs.mac(publicKey, label: SealLabel.keySlotPublicKey(slot.name)))
                try w.update(slot)
            }
            let snapshot = try w.snapshot()
            // The chain made again under their key, as `keys rotate` makes it under a new one.
            let (macs, head) = try UnlockedVault.chainMACs(
                snapshot.auditEntries, headSeq: snapshot.auditHeadSeq, keys: theirs)
            try w.rewriteAuditMACs(macs, headMAC: head)
        }
        return theirs
    }

    @Test(arguments: Store.allCases)
    func aMasterKeySubstitutedByTheStoreIsExit7BeforeAnythingIsSealed(_ store: Store) async throws {
        try await Self.with(store) { s, location in
            let pairs = try await s.importAccounts(["alice"])
            let theirs = try Self.substituteMasterKey(at: location)
            // The swap was thorough: under K the audit chain verifies.
            let probe = try VaultStores.open(location)
            #expect(try UnlockedVault(database: probe, keys: theirs).verifyAudit().problems.isEmpty)
            try probe.close()

            let newSecret = "cs-" + generatedToken()
            let fresh = tokenJSON(access: generatedToken(), refresh: generatedToken())
            let attempts: [([String], String)] = [
                (
                    [
                        "add", "lured", "--client-id", "C2", "--redirect-uri", s.redirect, "--scopes",
                        "spark:people_read",
                        "--api-base", s.base.absoluteString, "--client-secret-stdin",
                    ], newSecret
                ),
                (["integration", "edit", "webex", "--client-secret-stdin"], newSecret),
                (["import", "bob", "--integration", "webex"], fresh),
                (["token", "alice"], ""), (["refresh-all", "--skip-recent", "0"], ""), (["audit", "--verify"], ""),
            ]
            for (arguments, stdin) in attempts {
                let result = try await s.run(arguments, stdin: stdin)
                #expect(result.code == 7, "\(store) \(arguments): \(result.code) \(result.err)")
                #expect(
                    result.err.contains("the master key sealed in it is not the one its passphrase vouches for"),
                    "\(result.err)")
                #expect(!result.out.contains(pairs["alice"]!.access))
                s.expectNoSecrets(result.out + result.err, also: [newSecret])
            }
            // (`list` and `keys list` read plain fields only and open no key: they still answer.)
            // Nothing was sealed under K: the store holds what it held before the attack, no more.
            let after = try VaultStores.open(location)
            defer { try? after.close() }
            #expect(try after.integrations().map(\.name) == ["webex"])
            #expect(try after.accounts().map(\.name) == ["alice"])
            let integration = try #require(try after.integrations().first)
            #expect(throws: (any Error).self) {
                try theirs.open(integration.clientSecretSealed, label: SealLabel.clientSecret(integration))
            }
        }
    }

    /// One account's row written back from an older copy after a refresh, and another's put back after its
    /// revocation. Before the fix `token` handed out the old access token with exit 0 and `audit --verify
    /// --expect-head` said intact.
    @Test(arguments: Store.allCases)
    func aRolledBackOrRestoredAccountRowIsExit7AndNamedByVerify(_ store: Store) async throws {
        try await Self.with(store) { s, location in
            let pairs = try await s.importAccounts(["alice", "bob", "carol"])
            func row(_ name: String) throws -> Account {
                let db = try VaultStores.open(location)
                defer { try? db.close() }
                return try db.account(named: name)
            }
            func putBack(_ account: Account, insert: Bool = false) throws {
                let db = try VaultStores.open(location)
                defer { try? db.close() }
                try db.write { w in if insert { try w.insert(account) } else { try w.update(account) } }
            }
            let aliceBefore = try row("alice")
            let bobBefore = try row("bob")
            let refreshed = try await s.run(["refresh-all", "--skip-recent", "0", "--json"])
            #expect(refreshed.code == 0, "\(refreshed.err)")
            let head = try #require(jsonObject(refreshed.out)["audit_head"] as? String)
            let revoked = try await s.run(["revoke", "bob", "--local"])
            #expect(revoked.code == 0, "\(revoked.err)")
            let verifiedHead = try await s.run(["audit", "--verify", "--json"])
            let head2 = (jsonObject(verifiedHead.out)["head"] as? String) ?? head

            try putBack(aliceBefore)
            try putBack(bobBefore, insert: true)
            for (name, why) in [
                ("alice", "its row does not hold the pair audit entry"),
                ("bob", "its row was put back after audit entry"),
            ] {
                for command in [["token", name], ["env", name], ["refresh", name]] {
                    let result = try await s.run(command)
                    #expect(result.code == 7, "\(store) \(command): \(result.code) \(result.err)")
                    #expect(result.err.contains(why), "\(result.err)")
                    #expect(!result.out.contains(pairs[name]!.access))
                }
            }
            let verify = try await s.run(["audit", "--verify", "--expect-head", head2])
            #expect(verify.code == 7, "\(verify.out)\(verify.err)")
            let said = verify.out + verify.err
            #expect(said.contains("account 'alice': its row does not hold the pair entry"), "\(said)")
            #expect(said.contains("account 'bob': its row was put back after entry"), "\(said)")
            #expect(!said.contains("account 'carol'"))
            // Carol, untouched, still works.
            #expect(try await s.run(["token", "carol"]).code == 0)
        }
    }

    /// The attacks that already held before, now on both stores: each one is exit 7, before anything is sent or
    /// printed, or named by `audit --verify`.
    @Test(arguments: Store.allCases)
    func swappedRowsEditedEndpointsKDFCostsAndAuditDeletionsAreCaught(_ store: Store) async throws {
        try await Self.with(store) { s, _, sql in
            _ = try await s.importAccounts(["alice", "bob"])
            // Each attack on the same vault, undone before the next one (as the attacker had it).
            func attack(
                _ title: String, _ edit: String, undo: String, command: [String], expect code: Int32 = 7,
                saying words: String, sourceLocation: SourceLocation = #_sourceLocation
            ) async throws {
                try sql(edit)
                let result = try await s.run(command)
                #expect(
                    result.code == code, "\(store) \(title): \(result.code) \(result.err)\(result.out)",
                    sourceLocation: sourceLocation)
                #expect(
                    (result.err + result.out).contains(words), "\(store) \(title): \(result.err)\(result.out)",
                    sourceLocation: sourceLocation)
                s.expectNoSecrets(result.out + result.err, sourceLocation: sourceLocation)
                try sql(undo)
            }
            let requestsBefore = await s.sandbox.counters.refreshGrants
            try await attack(
                "access tokens swapped between accounts",
                "UPDATE account SET access_token_sealed = (SELECT access_token_sealed FROM account WHERE name = 'bob') WHERE name = 'alice'",
                undo: "SELECT 1", command: ["token", "alice"],
                saying: "the access token of account 'alice' failed its integrity check")
            try await attack(
                "a whole row's tokens moved to another account",
                "UPDATE account SET refresh_token_sealed = (SELECT refresh_token_sealed FROM account WHERE name = 'alice'), pair = (SELECT pair FROM account WHERE name = 'alice') WHERE name = 'bob'",
                undo: "SELECT 1", command: ["refresh", "bob"], saying: "'bob'")
            try await attack(
                "the integration pointed at another API base",
                "UPDATE integration SET api_base = 'http://127.0.0.1:9/v1'",
                undo: "UPDATE integration SET api_base = '\(s.base.absoluteString)'",
                command: ["refresh", "alice"],
                saying: "the client secret of integration 'webex' failed its integrity check")
            #expect(await s.sandbox.counters.refreshGrants == requestsBefore, "a tampered vault sent a request")
            try await attack(
                "a KDF cost tokenvault never writes", "UPDATE key_slot SET kdf_opslimit = 4, kdf_memlimit = 1024",
                undo: "SELECT 1", command: ["token", "alice"], saying: "key-derivation settings were refused before use"
            )
        }
    }

    @Test(arguments: Store.allCases)
    func auditEntriesDeletedOrTruncatedAreNamedByVerify(_ store: Store) async throws {
        for (title, edit, words) in [
            ("an entry deleted from the middle", "DELETE FROM audit_entry WHERE seq = 2", "entry 2 is missing"),
            ("the log truncated", "DELETE FROM audit_entry", "the newest entries were removed"),
        ] {
            try await Self.with(store) { s, _, sql in
                _ = try await s.importAccounts(["alice", "bob", "carol"])
                try sql(edit)
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 7, "\(store) \(title): \(verify.out)\(verify.err)")
                #expect((verify.out + verify.err).contains(words), "\(store) \(title): \(verify.out)\(verify.err)")
            }
        }
    }

    /// A removed member's slot row put back after `keys rotate`: it opens only the old master key, whose signing
    /// key the rotated vault's rows no longer follow; nothing opens or is sealed under it.
    @Test(arguments: Store.allCases)
    func aRemovedMembersSlotPutBackAfterARotationOpensNothing(_ store: Store) async throws {
        try await Self.with(store) { s, location, _ in
            let pairs = try await s.importAccounts(["alice"])
            #expect(try await OAuthBinaryTests.KeySlots.addBob(s).code == 0)
            let db = try VaultStores.open(location)
            defer { try? db.close() }
            let bobsRow = try #require(try db.keySlots().first { $0.name == "bob" })
            try await s.expectOK(["keys", "remove", "bob"])
            try await s.expectOK(["keys", "rotate"])
            try db.write { try $0.insert(bobsRow) }
            let asBob: [String: String?] = ["TOKENVAULT_PASSPHRASE": OAuthBinaryTests.KeySlots.bob]
            let token = try await s.run(["token", "alice"], environment: asBob)
            #expect(token.code == 7, "\(store): \(token.code) \(token.err)")
            #expect(!token.out.contains(pairs["alice"]!.access))
            let secret = "cs-" + generatedToken()
            let add = try await s.run(
                [
                    "add", "lured", "--client-id", "C2", "--redirect-uri", s.redirect, "--scopes", "spark:people_read",
                    "--api-base", s.base.absoluteString, "--client-secret-stdin",
                ], stdin: secret, environment: asBob)
            #expect(add.code != 0, "\(store): \(add.err)")
            #expect(try db.integrations().map(\.name) == ["webex"], "nothing was added under the old key")
            // The members' own passphrase still opens the rotated vault.
            #expect(try await s.token("alice") == pairs["alice"]!.access)
        }
    }
}
