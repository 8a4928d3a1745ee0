import Foundation
import Testing
@testable import TokenVaultCore
import TokenVaultLab
import VaultCrypto
import VaultStore
import WebexSandbox

/// The store's writer without a passphrase (whoever can write the vault file, or administers its PostgreSQL
/// database), against the built binary, on both stores.
@Suite struct UntrustedStoreBinaryTests {
    enum Store: String, CaseIterable, Sendable { case sqlite, postgresql }

    /// A sandbox workspace whose vault is a file, or a new database on the tests' PostgreSQL server; `body` gets the
    /// location the attacker writes to.
    static func with(_ store: Store, _ body: (SandboxWorkspace, String) async throws -> Void) async throws {
        switch store {
        case .sqlite:
            try await SandboxWorkspace.with { s in try await body(s, s.ws.vault) }
        case .postgresql:
            try await VaultBinaryTests.PostgreSQL.with { s, server, database in
                try await s.expectOK(["init", "--kdf", "interactive"])
                try await s.addIntegration()
                try await body(s, server.location(database: database))
            }
        }
    }

    /// §1 of the attack: a master key K of the attacker's sealed to every box-form slot's public key (the key is in
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
            var macs: [Int64: [UInt8]] = [:]
            var previous: [UInt8] = []
            for entry in snapshot.auditEntries {
                previous = try UnlockedVault.entryMAC(keys: theirs, seq: entry.seq, draft: entry.draft, previousMAC: previous)
                macs[entry.seq] = previous
            }
            try w.rewriteAuditMACs(macs, headMAC: try UnlockedVault.auditHeadMAC(keys: theirs, seq: snapshot.auditHeadSeq, entryMAC: previous))
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
                (["add", "lured", "--client-id", "C2", "--redirect-uri", s.redirect, "--scopes", "spark:people_read",
                  "--api-base", s.base.absoluteString, "--client-secret-stdin"], newSecret),
                (["integration", "edit", "webex", "--client-secret-stdin"], newSecret),
                (["import", "bob", "--integration", "webex"], fresh),
                (["token", "alice"], ""), (["refresh-all", "--skip-recent", "0"], ""), (["audit", "--verify"], ""),
            ]
            for (arguments, stdin) in attempts {
                let result = try await s.run(arguments, stdin: stdin)
                #expect(result.code == 7, "\(store) \(arguments): \(result.code) \(result.err)")
                #expect(result.err.contains("the master key sealed in it is not the one its passphrase vouches for"), "\(result.err)")
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

    /// §2: one account's row written back from an older copy after a refresh, and another's put back after its
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
            let aliceBefore = try row("alice"), bobBefore = try row("bob")
            let refreshed = try await s.run(["refresh-all", "--skip-recent", "0", "--json"])
            #expect(refreshed.code == 0, "\(refreshed.err)")
            let head = try #require(jsonObject(refreshed.out)["audit_head"] as? String)
            let revoked = try await s.run(["revoke", "bob", "--local"])
            #expect(revoked.code == 0, "\(revoked.err)")
            let verifiedHead = try await s.run(["audit", "--verify", "--json"])
            let head2 = (jsonObject(verifiedHead.out)["head"] as? String) ?? head

            try putBack(aliceBefore)
            try putBack(bobBefore, insert: true)
            for (name, why) in [("alice", "its row does not hold the pair audit entry"), ("bob", "its row was put back after audit entry")] {
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
}
