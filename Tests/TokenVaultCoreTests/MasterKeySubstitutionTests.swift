import Foundation
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultStore

@testable import TokenVaultCore

/// Whoever can write the store but knows no passphrase (the file's writer, the database's administrator) tries to
/// make the members' passphrases open a master key of theirs. A key slot's wrap is an anonymous sealed box, which
/// anyone can make for the slot's public key; what stops them is the signing key each slot pins under its own
/// passphrase. Every attempt must fail at the unlock, before the key seals or opens anything.
@Suite struct MasterKeySubstitutionTests {
    static let alice = KeySlotTests.alice
    static let bob = KeySlotTests.bob

    func unlock(_ v: CoreVault, _ passphrase: SecretBytes, slot: String? = nil) throws -> (
        vault: UnlockedVault, opened: OpenedSlot
    ) {
        try UnlockedVault.unlockSlot(
            v.database, kdfParameters: CoreVault.kdf, attempts: 1, console: CapturingConsole(),
            keySlot: slot
        ) { passphrase }
    }

    func withBob(_ v: CoreVault) throws {
        let opened = try unlock(v, Self.alice).opened
        try v.vault.addKeySlot(
            named: "bob", passphrase: Self.bob, parameters: CoreVault.kdf(.interactive), opened: opened, now: v.now)
    }

    func slot(_ v: CoreVault, _ name: String) throws -> KeySlot {
        try #require(try v.database.keySlots().first { $0.name == name })
    }

    /// The attack as a database administrator or file writer carries it out: a key K of theirs sealed to every box
    /// slot's public key (in `format`), each public key re-MAC'd under K, and the audit chain and its head re-MAC'd
    /// under K, so that nothing MAC'd under the vault's key is left to betray the swap.
    @discardableResult
    static func substituteMasterKey(
        in database: any VaultStorage, certificates: (KeySlot) -> [MasterKeyWrap.Certificate]? = { _ in nil }
    ) throws -> InProcessKeyHolder {
        let theirs = InProcessKeyHolder.generate()
        try database.write { w in
            for var slot in try w.keySlots() where slot.form == .box {
                let publicKey = try #require(slot.boxPublicKey)
                let sealed = try theirs.wrapMasterKey(toPublicKey: publicKey)
                slot.masterKeySealed =
                    certificates(slot).map { MasterKeyWrap(sealed: sealed, certificates: $0).bytes } ?? sealed
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

    func expectSubstitutionRefused(
        _ v: CoreVault, _ passphrase: SecretBytes, _ fragment: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let error = #expect(throws: VaultError.self, sourceLocation: sourceLocation) { try unlock(v, passphrase) }
        guard case .integrity(let what, let hint)? = error else {
            Issue.record(
                "not an integrity error (exit 7): \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(what.contains(fragment), "\(what)", sourceLocation: sourceLocation)
        #expect(hint?.contains("enter no secret into this vault") == true, sourceLocation: sourceLocation)
    }

    @Test func aMasterKeySealedToTheSlotsByTheStoreIsRefusedForEveryMember() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try withBob(v)
        // The swap is complete: the chain verifies under the attacker's key, as `audit --verify` would have said.
        let theirs = try Self.substituteMasterKey(in: v.database)
        #expect(try UnlockedVault(database: v.database, keys: theirs).verifyAudit().problems.isEmpty)
        expectSubstitutionRefused(
            v, Self.alice, "key slot 'main': the master key sealed in it is not the one its passphrase vouches for")
        expectSubstitutionRefused(
            v, Self.bob, "key slot 'bob': the master key sealed in it is not the one its passphrase vouches for")
    }

    @Test func aCertificateTheAttackerSignedThemselvesIsRefused() throws {
        let v = try CoreVault()
        defer { v.remove() }
        // Signed by a key of theirs, certifying their own key: the slot's pin signed nothing of the sort.
        let forger = try SigningKeyPair(seed: SecretBytes(copying: Random.bytes(32)))
        try Self.substituteMasterKey(in: v.database) { _ in
            let message = VaultSigning.certificateMessage(from: forger.publicKey, to: forger.publicKey)
            return [MasterKeyWrap.Certificate(publicKey: forger.publicKey, signature: forger.sign(message))]
        }
        expectSubstitutionRefused(v, Self.alice, "a certificate of its master key is not signed by the key before it")
    }

    /// `keys rotate` needs no other member's passphrase: bob's slot accepts the new key through the certificate the
    /// old key signed, twice over while bob is away, and his pin then follows (his row loses its certificates).
    @Test func rotationsCertifyTheNewKeyAndAnAbsentMemberFollowsThem() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try withBob(v)
        let sealed = try v.vault.seal("a secret", label: "account/x")
        let first = try unlock(v, Self.alice)
        _ = try first.vault.rotateMasterKey(opened: first.opened, now: v.now)
        let second = try unlock(v, Self.alice)
        let resealed = try second.vault.seal("a secret", label: "account/x")
        let twice = try second.vault.rotateMasterKey(opened: second.opened, now: v.now)
        #expect(try MasterKeyWrap.parse(try slot(v, "bob").masterKeySealed).certificates.count == 2)
        let byBob = try unlock(v, Self.bob)
        #expect(throws: VaultError.self) { try byBob.vault.open(sealed, label: "account/x", what: "x") }
        #expect(throws: VaultError.self) { try byBob.vault.open(resealed, label: "account/x", what: "x") }
        let now = try twice.vault.seal("new", label: "account/y")
        #expect(try byBob.vault.open(now, label: "account/y", what: "y").copyToString() == "new")
        // Bob's slot now pins the current key itself.
        #expect(try MasterKeyWrap.parse(try slot(v, "bob").masterKeySealed).certificates.isEmpty)
        #expect(try unlock(v, Self.bob).opened.name == "bob")
    }

    /// A replay of bob's own genuine row from before a rotation (the old master key, which a removed member may
    /// know) is refused once bob has opened the vault since: his pin has moved on.
    @Test func anOlderGenuineWrapPutBackIsRefusedOnceTheSlotFollowedTheRotation() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try withBob(v)
        let before = try slot(v, "bob")
        let opened = try unlock(v, Self.alice)
        _ = try opened.vault.rotateMasterKey(opened: opened.opened, now: v.now)
        _ = try unlock(v, Self.bob)  // follows the certificate, pins the new key
        try v.database.write { w in
            var old = try #require(try w.keySlots().first { $0.name == "bob" })
            old.masterKeySealed = before.masterKeySealed
            try w.update(old)
        }
        expectSubstitutionRefused(v, Self.bob, "the master key sealed in it is not the one its passphrase vouches for")
    }

    /// A slot made before slots pinned a key (its sealed secret key alone, its wrap a bare sealed box) still opens,
    /// and pins the key it opened from then on.
    @Test func aSlotFromBeforePinsTheKeyAtItsFirstOpening() throws {
        let v = try CoreVault()
        defer { v.remove() }
        let opened = try unlock(v, Self.alice)
        let pair = try BoxKeyPair.generate()
        let slotKey = VaultKeys.subkey(of: opened.opened.passphraseKey, label: SealLabel.keySlotSecretKey("main"))
        try v.database.write { w in
            var old = try #require(try w.keySlots().first)
            old.secretKeySealed = try SecretBox.seal(pair.secretKey, key: slotKey)
            old.masterKeySealed = try opened.vault.keys.wrapMasterKey(toPublicKey: pair.publicKey)
            old.publicKey =
                pair.publicKey + (try opened.vault.keys.mac(pair.publicKey, label: SealLabel.keySlotPublicKey("main")))
            try w.update(old)
        }
        #expect(try slot(v, "main").secretKeySealed?.count == 73)
        _ = try unlock(v, Self.alice)
        #expect(try slot(v, "main").secretKeySealed?.count == 105, "pinned at its first opening")
        try Self.substituteMasterKey(in: v.database)
        expectSubstitutionRefused(v, Self.alice, "not the one its passphrase vouches for")
    }

    @Test func aWrapWithCertificatesCutShortIsDamageNotAWrongPassphrase() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try v.database.write { w in
            var s = try #require(try w.keySlots().first)
            s.masterKeySealed = Array(s.masterKeySealed.dropLast(1))
            try w.update(s)
        }
        let error = #expect(throws: VaultError.self) { try unlock(v, Self.alice) }
        #expect(
            error?.localizedDescription.contains("its wrapped master key is malformed") == true,
            "\(String(describing: error))")
    }
}
