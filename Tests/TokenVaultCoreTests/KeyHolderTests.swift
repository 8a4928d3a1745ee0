import Foundation
import Testing
import VaultCrypto
import VaultStore

@testable import TokenVaultCore

/// A key holder that forwards to another and records the labels it was asked for: the core must do everything
/// through the interface (seal, open, MAC under a label), never with the master key itself, so that an agent in
/// another process can hold the key (the unlock agent, docs/agent.md).
final class RecordingKeyHolder: KeyHolder, @unchecked Sendable {
    let inner: any KeyHolder
    private let lock = NSLock()
    private var calls: [String] = []
    init(_ inner: any KeyHolder) { self.inner = inner }
    var log: [String] { lock.withLock { calls } }
    private func note(_ s: String) { lock.withLock { calls.append(s) } }
    func seal(_ plaintext: SecretBytes, label: String) throws -> [UInt8] {
        note("seal " + label)
        return try inner.seal(plaintext, label: label)
    }
    func open(_ sealed: [UInt8], label: String) throws -> SecretBytes {
        note("open " + label)
        return try inner.open(sealed, label: label)
    }
    func mac(_ message: [UInt8], label: String) throws -> [UInt8] {
        note("mac " + label)
        return try inner.mac(message, label: label)
    }
    func wrapMasterKey(under passphraseKey: SecretBytes) throws -> [UInt8] {
        note("wrap")
        return try inner.wrapMasterKey(under: passphraseKey)
    }
    func wrapMasterKey(toPublicKey publicKey: [UInt8]) throws -> [UInt8] {
        note("wrap to key")
        return try inner.wrapMasterKey(toPublicKey: publicKey)
    }
}

@Suite struct KeyHolderTests {
    @Test func theCoreSealsOpensAndChainsOnlyThroughTheKeyHolder() throws {
        let v = try CoreVault()
        defer { v.remove() }
        let holder = RecordingKeyHolder(v.vault.keys)
        let vault = UnlockedVault(database: v.database, keys: holder)
        let sealed = try vault.seal("value", label: "account/x")
        #expect(try vault.open(sealed, label: "account/x", what: "x").copyToString() == "value")
        // Another label opens nothing: the label is part of the key.
        #expect(throws: VaultError.self) { try vault.open(sealed, label: "account/y", what: "y") }
        try v.database.write { w in
            try vault.appendAudit(
                AuditDraft(at: v.now, account: "a", integration: nil, event: .imported, trigger: "t", outcome: "ok"),
                in: w)
        }
        #expect(try vault.verifyAudit().problems.isEmpty)
        // The vault opened with the passphrase (the in-process holder) sees the same chain.
        #expect(try v.vault.verifyAudit().problems.isEmpty)
        let log = holder.log
        #expect(log.prefix(3) == ["seal account/x", "open account/x", "open account/y"])
        // Appending checks first, through the holder too, that its key is still the vault's (a key slot's public
        // key bound under it), once per holder.
        let binding = "mac " + SealLabel.keySlotPublicKey(KeySlots.firstName)
        #expect(log.dropFirst(3).allSatisfy { $0 == "mac " + SealLabel.audit || $0 == binding })
        #expect(log.filter { $0 == binding }.count == 1)
        #expect(log.count >= 5)
    }

    @Test func aDifferentMasterKeyOpensNothingAndMACsDiffer() throws {
        let a = InProcessKeyHolder.generate()
        let b = InProcessKeyHolder.generate()
        let sealed = try a.seal(SecretBytes(copying: Array("s".utf8)), label: "l")
        #expect(throws: VaultCryptoError.self) { try b.open(sealed, label: "l") }
        #expect(try a.mac([1, 2, 3], label: "l") == a.mac([1, 2, 3], label: "l"))
        #expect(try a.mac([1, 2, 3], label: "l") != a.mac([1, 2, 3], label: "m"))
        #expect(try a.mac([1, 2, 3], label: "l") != b.mac([1, 2, 3], label: "l"))
    }
}
