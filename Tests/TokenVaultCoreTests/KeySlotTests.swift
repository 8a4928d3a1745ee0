import Foundation
import GRDB
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultStore

@testable import TokenVaultCore

/// Key slots over a real vault file and real libsodium (docs/key-slots.md): unlocking through slots, adding and
/// removing them, and replacing the master key in one transaction.
@Suite struct KeySlotTests {
    static let alice = SecretBytes(copying: Array("core test passphrase".utf8))  // CoreVault's, slot `main`
    static let bob = SecretBytes(copying: Array("bob's own passphrase".utf8))

    func unlock(
        _ v: CoreVault, _ passphrase: SecretBytes, slot: String? = nil,
        kdf: @escaping (KDFParameters.Level) -> KDFParameters = CoreVault.kdf
    ) throws -> (vault: UnlockedVault, opened: OpenedSlot) {
        try UnlockedVault.unlockSlot(
            v.database, kdfParameters: kdf, attempts: 1, console: CapturingConsole(), keySlot: slot
        ) { passphrase }
    }

    func withBob(_ v: CoreVault) throws {
        let opened = try unlock(v, Self.alice).opened
        try v.vault.addKeySlot(
            named: "bob", passphrase: Self.bob, parameters: CoreVault.kdf(.interactive), opened: opened, now: v.now)
    }

    func tamper(_ v: CoreVault, _ sql: String, _ arguments: StatementArguments = []) throws {
        let queue = try DatabaseQueue(path: v.path)
        defer { try? queue.close() }
        try queue.write { try $0.execute(sql: sql, arguments: arguments) }
    }

    @Test func aNewVaultHasOneBoxSlotAndAHeaderThatHoldsNoKey() throws {
        let v = try CoreVault()
        defer { v.remove() }
        let slots = try v.database.keySlots()
        #expect(slots.map(\.name) == ["main"])
        // The secret key sealed with the signing public key it pins (32 + 32 + secretbox's 41), and the master key's
        // wrap: version, length, the sealed box, and a count of no certificates.
        #expect(slots[0].form == .box && slots[0].publicKey?.count == 64 && slots[0].secretKeySealed?.count == 105)
        #expect(slots[0].masterKeySealed.count == 3 + 32 + SealedBox.overhead + 2)
        let header = try v.database.header()
        #expect(header.kdfAlgorithm == "key_slot" && header.masterKeySealed.isEmpty && header.kdfSalt.isEmpty)
        #expect(v.vault.keySlot == "main")
    }

    @Test func eachSlotOpensTheSameVaultAndANamedSlotOnlyItself() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try withBob(v)
        let sealed = try v.vault.seal("a token", label: "account/x")
        let byAlice = try unlock(v, Self.alice)
        let byBob = try unlock(v, Self.bob)
        #expect(byAlice.opened.name == "main" && byBob.opened.name == "bob")
        #expect(try byBob.vault.open(sealed, label: "account/x", what: "x").copyToString() == "a token")
        #expect(try unlock(v, Self.bob, slot: "bob").opened.name == "bob")
        #expect(throws: VaultError.wrongPassphrase) { try unlock(v, Self.alice, slot: "bob") }
        #expect(throws: StoreError.noSuchKeySlot("carol")) { try unlock(v, Self.alice, slot: "carol") }
        #expect(throws: VaultError.wrongPassphrase) { try unlock(v, SecretBytes(copying: Array("neither".utf8))) }
        // The slot's secret key is bound to its name: copied to another row, it opens nothing there.
        let bobRow = try #require(try v.database.keySlots().first { $0.name == "bob" })
        try tamper(
            v, "UPDATE key_slot SET secret_key_sealed = ?, kdf_salt = ? WHERE name = 'main'",
            [Data(bobRow.secretKeySealed!), Data(bobRow.kdfSalt)])
        #expect(throws: VaultError.wrongPassphrase) { try unlock(v, Self.bob, slot: "main") }
    }

    /// Each slot keeps the KDF checks a single header had: a raised level on any slot is tampering, named.
    @Test func aLevelRaisedOnOneSlotIsReportedForThatSlot() throws {
        let levels: @Sendable (KDFParameters.Level) -> KDFParameters = { level in
            let (ops, mem): (UInt64, UInt64) =
                switch level {
                case .interactive: (1, 8192)
                case .moderate: (2, 8192)
                case .sensitive: (2, 16384)
                }
            return KDFParameters(opsLimit: ops, memLimit: mem, salt: Random.bytes(KDFParameters.saltBytes))
        }
        let v = try CoreVault()
        defer { v.remove() }
        try withBob(v)
        try tamper(v, "UPDATE key_slot SET kdf_opslimit = 2, kdf_memlimit = 16384 WHERE name = 'bob'")
        let error = #expect(throws: VaultError.self) { try unlock(v, Self.bob, kdf: levels) }
        #expect(
            error?.localizedDescription.contains(
                "key slot 'bob' opens with the interactive level, the file says sensitive") == true,
            "\(String(describing: error))")
        #expect(try unlock(v, Self.alice, kdf: levels).opened.name == "main", "main is intact and opens")
        try tamper(v, "UPDATE key_slot SET kdf_opslimit = 3, kdf_memlimit = 16384 WHERE name = 'bob'")
        let unknown = #expect(throws: VaultError.self) { try unlock(v, Self.alice, kdf: levels) }
        #expect(
            unknown?.localizedDescription.contains("key slot 'bob' has 3 passes") == true,
            "\(String(describing: unknown))")
        // Naming the intact slot skips the edited one's check.
        #expect(try unlock(v, Self.alice, slot: "main", kdf: levels).opened.name == "main")
    }

    @Test func theLastSlotStaysAndTheOpenedOneMayGoWhenAnotherRemains() throws {
        let v = try CoreVault()
        defer { v.remove() }
        let opened = try unlock(v, Self.alice).opened
        #expect(throws: VaultError.self) { try v.vault.removeKeySlot(named: "main", opened: opened, now: v.now) }
        #expect(throws: StoreError.noSuchKeySlot("bob")) {
            try v.vault.removeKeySlot(named: "bob", opened: opened, now: v.now)
        }
        try withBob(v)
        try v.vault.removeKeySlot(named: "main", opened: opened, now: v.now)
        #expect(try v.database.keySlots().map(\.name) == ["bob"])
        #expect(throws: VaultError.wrongPassphrase) { try unlock(v, Self.alice) }
        let events = try v.database.auditEntries().map(\.draft.event)
        #expect(events == [.keySlotAdded, .keySlotRemoved])
        #expect(try unlock(v, Self.bob).vault.verifyAudit().problems.isEmpty)
    }

    @Test func passwdChangesOneSlotAndKeepsTheMasterKey() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try withBob(v)
        let sealed = try v.vault.seal("kept", label: "account/x")
        let before = try v.database.keySlots().first { $0.name == "main" }!
        let opened = try unlock(v, Self.bob).opened
        // Bob gives slot `main` a new passphrase: he needs only his own.
        let carol = SecretBytes(copying: Array("carol's passphrase".utf8))
        try v.vault.changePassphrase(
            ofSlot: "main", to: carol, parameters: nil, opened: opened, now: v.now.addingTimeInterval(60))
        #expect(throws: VaultError.wrongPassphrase) { try unlock(v, Self.alice) }
        let byCarol = try unlock(v, carol)
        #expect(byCarol.opened.name == "main")
        #expect(try byCarol.vault.open(sealed, label: "account/x", what: "x").copyToString() == "kept")
        let after = try v.database.keySlots().first { $0.name == "main" }!
        #expect(after.createdAt == before.createdAt && after.changedAt == v.now.addingTimeInterval(60))
        #expect(after.kdfSalt != before.kdfSalt && after.publicKey != before.publicKey)
        #expect(
            try v.database.auditEntries().last?.draft.outcome
                == .keySlotChanged(slot: "main", change: "given a new passphrase"))
    }

    /// A v1-v3 slot (the master key sealed under the passphrase's key) opens, and is converted by the first change
    /// made through it; any other v1-v3 slot makes `rotate` refuse until it is opened itself.
    @Test func legacySlotsOpenAreConvertedAndBlockRotateUntilOpened() throws {
        let v = try CoreVault()
        defer { v.remove() }
        let old = SecretBytes(copying: Array("a v1 passphrase".utf8))
        let parameters = CoreVault.kdf(.interactive)
        let envelope = try v.vault.keys.wrapMasterKey(
            under: try VaultKeys.derivePassphraseKey(old, parameters: parameters))
        try v.database.write { w in
            try w.insert(
                KeySlot(
                    name: "old", kdfAlgorithm: KDFParameters.algorithmName, kdfSalt: parameters.salt,
                    kdfOpsLimit: parameters.opsLimit, kdfMemLimit: parameters.memLimit,
                    masterKeySealed: envelope, createdAt: v.now, changedAt: v.now))
        }
        let byOld = try unlock(v, old)
        #expect(byOld.opened.name == "old" && byOld.opened.slot.form == .legacy)
        let byAlice = try unlock(v, Self.alice)
        let refused = #expect(throws: VaultError.self) {
            try byAlice.vault.rotateMasterKey(opened: byAlice.opened, now: v.now)
        }
        guard case .invalid(let message, _)? = refused else {
            Issue.record("\(String(describing: refused))")
            return
        }
        #expect(message.contains("key slot 'old' is of the v1-v3 form"))
        #expect(try v.database.keySlots().first { $0.name == "old" }?.form == .legacy, "nothing changed")
        // Opened through it, rotate converts it and goes through.
        let rotation = try byOld.vault.rotateMasterKey(opened: byOld.opened, now: v.now)
        #expect(rotation.converted == "old")
        #expect(try v.database.keySlots().allSatisfy { $0.form == .box })
        #expect(try unlock(v, old).opened.name == "old" && (try unlock(v, Self.alice).opened.name == "main"))
    }

    /// The heart of `keys rotate`: after it, nothing sealed or MAC'd under the old key is left, the old key opens
    /// nothing new, every slot opens the new key, the chain verifies, and a process still holding the old key cannot
    /// write.
    @Test func rotateReSealsEverythingAndTheOldKeyOpensNothingNew() throws {
        let v = try CoreVault()
        defer { v.remove() }
        let (account, integration) = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(3600))
        try withBob(v)
        let before = try v.database.snapshot()
        let old = try unlock(v, Self.alice)
        let rotation = try old.vault.rotateMasterKey(opened: old.opened, now: v.now)
        #expect(
            rotation.clientSecrets == 1 && rotation.tokens == 2 && Set(rotation.slots) == ["main", "bob"]
                && rotation.converted == nil)
        let after = try v.database.snapshot()

        let rotatedAccount = try #require(after.accounts.first)
        let rotatedIntegration = try #require(after.integrations.first)
        #expect(rotatedAccount.accessTokenSealed != account.accessTokenSealed)
        #expect(rotatedAccount.refreshTokenSealed != account.refreshTokenSealed)
        #expect(rotatedIntegration.clientSecretSealed != integration.clientSecretSealed)
        #expect(rotatedAccount.updatedAt == account.updatedAt, "the pair was re-sealed, not refreshed")
        for (b, a) in zip(before.keySlots, after.keySlots) {
            #expect(b.masterKeySealed != a.masterKeySealed && b.publicKey != a.publicKey, "\(a.name)")
            #expect(b.secretKeySealed == a.secretKeySealed && b.kdfSalt == a.kdfSalt, "\(a.name) keeps its passphrase")
        }
        #expect(zip(before.auditEntries, after.auditEntries).allSatisfy { $0.mac != $1.mac })
        #expect(before.auditHeadMAC != after.auditHeadMAC)

        // The old key opens none of the new values; the new one, through either slot, opens all.
        let oldKeys = old.vault.keys
        #expect(throws: VaultCryptoError.self) {
            try oldKeys.open(rotatedAccount.accessTokenSealed!, label: SealLabel.accessToken(account))
        }
        #expect(throws: VaultCryptoError.self) {
            try oldKeys.open(rotatedAccount.refreshTokenSealed!, label: SealLabel.refreshToken(account))
        }
        #expect(throws: VaultCryptoError.self) {
            try oldKeys.open(rotatedIntegration.clientSecretSealed, label: SealLabel.clientSecret(integration))
        }
        for passphrase in [Self.alice, Self.bob] {
            let opened = try unlock(v, passphrase).vault
            #expect(try opened.accessToken(of: rotatedAccount).copyToString() == "AT_old")
            #expect(try opened.refreshToken(of: rotatedAccount).copyToString() == "RT_old")
            #expect(try opened.clientSecret(of: rotatedIntegration).copyToString() == "client secret")
            #expect(try opened.verifyAudit().problems.isEmpty)
        }
        #expect(try v.database.auditEntries().last?.draft.event == .masterKeyRotated)

        // A command that unlocked before the rotation cannot write with its dead key: nothing is stored.
        let count = try v.database.auditEntries().count
        let stale = #expect(throws: VaultError.self) {
            try v.database.write { w in
                var changed = try w.account(named: "alice")
                changed.accessTokenSealed = try old.vault.seal(
                    "sealed under the dead key", label: SealLabel.accessToken(changed))
                try w.update(changed)
                try old.vault.appendAudit(
                    AuditDraft(
                        at: v.now, account: "alice", integration: "webex", event: .refreshed,
                        trigger: .refresh, outcome: .ok), in: w)
            }
        }
        guard case .busy? = stale else {
            Issue.record("\(String(describing: stale))")
            return
        }
        #expect(try v.database.auditEntries().count == count)
        #expect(try v.database.account(named: "alice").accessTokenSealed == rotatedAccount.accessTokenSealed)
    }

    /// One transaction: a failure at its very end (after every value, slot and MAC was written) leaves the vault as
    /// it was, opening under the old key.
    @Test func aRotationThatFailsBeforeCommitChangesNothing() throws {
        struct Injected: Error {}
        let v = try CoreVault()
        defer { v.remove() }
        let (account, _) = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(3600))
        try withBob(v)
        let before = try v.database.snapshot()
        let old = try unlock(v, Self.bob)
        #expect(throws: Injected.self) {
            try old.vault.rotateMasterKey(opened: old.opened, now: v.now) { throw Injected() }
        }
        #expect(try v.database.snapshot() == before)
        let reopened = try unlock(v, Self.alice).vault
        #expect(try reopened.accessToken(of: try v.database.account(named: "alice")).copyToString() == "AT_old")
        #expect(try old.vault.refreshToken(of: account).copyToString() == "RT_old")
        #expect(try reopened.verifyAudit().problems.isEmpty)
    }

    /// A public key someone who can write the file put there (a whole new slot, or another slot's key replaced)
    /// must never receive the new master key: the current key does not vouch for it, and rotate refuses.
    @Test func rotateRefusesAPublicKeyTheVaultKeyDoesNotVouchFor() throws {
        let v = try CoreVault()
        defer { v.remove() }
        _ = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(3600))
        let mallory = try BoxKeyPair.generate()
        try v.database.write { w in
            try w.insert(
                KeySlot(
                    name: "mallory", kdfAlgorithm: KDFParameters.algorithmName,
                    kdfSalt: CoreVault.kdf(.interactive).salt,
                    kdfOpsLimit: 1, kdfMemLimit: 8192, publicKey: mallory.publicKey + Random.bytes(32),
                    secretKeySealed: Random.bytes(73), masterKeySealed: Random.bytes(81),
                    createdAt: v.now.addingTimeInterval(1), changedAt: v.now))
        }
        let before = try v.database.snapshot()
        let old = try unlock(v, Self.alice)
        let error = #expect(throws: VaultError.self) { try old.vault.rotateMasterKey(opened: old.opened, now: v.now) }
        #expect(error?.localizedDescription.contains("key slot 'mallory'") == true, "\(String(describing: error))")
        #expect(try v.database.snapshot() == before)
    }

    /// The chain is verified under the old key before it is re-keyed: an edited entry is not blessed.
    @Test func rotateRefusesAnAuditLogThatDoesNotVerify() throws {
        let v = try CoreVault()
        defer { v.remove() }
        _ = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(3600))
        try v.database.write { w in
            try v.vault.appendAudit(
                AuditDraft(
                    at: v.now, account: "alice", integration: "webex", event: .imported,
                    trigger: .import, outcome: .ok), in: w)
        }
        try tamper(v, "DROP TRIGGER audit_entry_no_update; UPDATE audit_entry SET outcome = 'edited' WHERE seq = 1")
        let before = try v.database.snapshot()
        let old = try unlock(v, Self.alice)
        let error = #expect(throws: VaultError.self) { try old.vault.rotateMasterKey(opened: old.opened, now: v.now) }
        #expect(
            error?.localizedDescription.contains("the audit log does not verify") == true,
            "\(String(describing: error))")
        #expect(try v.database.snapshot() == before)
    }
}
