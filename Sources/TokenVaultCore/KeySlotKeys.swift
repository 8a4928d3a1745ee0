import Foundation
import VaultCrypto
import VaultStore

extension SealLabel {
    /// The subkey of a slot's passphrase key that seals the slot's X25519 secret key (box form): the slot's name is
    /// in it, so a sealed secret key copied to another slot's row opens nowhere.
    public static func keySlotSecretKey(_ name: String) -> String { "key-slot/" + encode([name, "secret_key"]) }

    /// The MAC label, under the master key, that binds a slot's public key to the slot: `keys rotate` wraps its new
    /// master key only for public keys the old master key vouches for, so a public key put into the file by someone
    /// who can write it (another slot's row, or a whole new one) never receives the new key.
    public static func keySlotPublicKey(_ name: String) -> String { "key-slot/" + encode([name, "public_key"]) }
}

/// The two forms of a key slot (see ``KeySlot``).
public enum KeySlotForm: String, Sendable {
    /// The slot's own X25519 key pair: the master key sealed to its public key, its secret key sealed under the
    /// passphrase's key. `keys rotate` can wrap a new master key for it without its passphrase.
    case box
    /// The master key sealed under the passphrase's key, as in v1-v3 vaults. Converted to `box` by `keys add`,
    /// `keys remove`, `keys rotate` and `passwd` when it is the slot they were opened with.
    case legacy
}

extension KeySlot {
    public var form: KeySlotForm { publicKey == nil ? .legacy : .box }

    /// The X25519 public key: the first 32 bytes of the stored `public_key`, which the MAC binding it follows.
    var boxPublicKey: [UInt8]? {
        guard let stored = publicKey, stored.count == KeySlots.storedPublicKeyBytes else { return nil }
        return Array(stored.prefix(BoxKeyPair.publicKeyBytes))
    }

    var boxPublicKeyMAC: [UInt8]? {
        guard let stored = publicKey, stored.count == KeySlots.storedPublicKeyBytes else { return nil }
        return Array(stored.suffix(from: BoxKeyPair.publicKeyBytes))
    }
}

extension VaultHeader {
    /// What the header's own key columns hold once key slots exist (schema v4): no salt, no cost, no sealed key.
    /// The columns are NOT NULL, so they are filled, with values no tokenvault reads: a v4 vault opens only through
    /// its `key_slot` rows. A v1-v3 vault keeps its old header (the slot `main` was copied from it) until the first
    /// command that writes a key slot replaces it with this, so that the old passphrase's envelope does not outlive
    /// a `passwd`, `keys remove` or `keys rotate`.
    public static func keySlotsOnly(createdAt: Date, now: Date) -> VaultHeader {
        VaultHeader(
            kdfAlgorithm: "key_slot", kdfSalt: [], kdfOpsLimit: 0, kdfMemLimit: 0, masterKeySealed: [],
            createdAt: createdAt, passphraseChangedAt: now)
    }
}

/// The key slot a passphrase opened, and the key that passphrase derived for it: kept for the one command that may
/// convert that slot from the v1-v3 form (which needs the passphrase's key) and then dropped.
public struct OpenedSlot: Sendable {
    /// The slot as it was read when it opened.
    public let slot: KeySlot
    let passphraseKey: SecretBytes

    public var name: String { slot.name }
}

/// Making and opening key slots: one passphrase's way to the master key.
public enum KeySlots {
    /// The slot `init` makes, and the one v1-v3 vaults' header became.
    public static let firstName = "main"
    /// The stored `public_key` of a box-form slot: the 32-byte X25519 public key and its 32-byte MAC.
    static let storedPublicKeyBytes = BoxKeyPair.publicKeyBytes + 32

    /// A new slot in the box form for the master key `keys` holds: a fresh key pair, its secret key sealed under
    /// the passphrase's key (through the slot's own subkey) together with the vault's signing public key (the pin),
    /// the master key sealed to its public key, and the public key bound to the slot by a MAC under the master key.
    public static func make(
        named name: String, keys: any KeyHolder, passphraseKey: SecretBytes,
        parameters: KDFParameters, createdAt: Date, changedAt: Date
    ) throws -> KeySlot {
        let pair = try BoxKeyPair.generate()
        var slot = KeySlot(
            name: name, kdfAlgorithm: KDFParameters.algorithmName, kdfSalt: parameters.salt,
            kdfOpsLimit: parameters.opsLimit, kdfMemLimit: parameters.memLimit,
            secretKeySealed: try sealSecretKey(
                pair.secretKey, pin: try VaultSigning.pair(keys).publicKey,
                slot: name, passphraseKey: passphraseKey),
            masterKeySealed: [], createdAt: createdAt, changedAt: changedAt)
        try wrap(&slot, publicKey: pair.publicKey, keys: keys, certificates: [])
        return slot
    }

    /// The slot's secret key and the signing public key it pins, sealed under the passphrase's key: only someone
    /// who knows the passphrase can change which master key the slot accepts.
    static func sealSecretKey(
        _ secretKey: SecretBytes, pin: [UInt8], slot name: String,
        passphraseKey: SecretBytes
    ) throws -> [UInt8] {
        let plaintext = SecretBytes(count: secretKey.count + pin.count)
        plaintext.withUnsafeMutableBytes { out in
            secretKey.withUnsafeBytes { out.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            pin.withUnsafeBytes {
                (out.baseAddress! + secretKey.count).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
            }
        }
        return try SecretBox.seal(
            plaintext, key: VaultKeys.subkey(of: passphraseKey, label: SealLabel.keySlotSecretKey(name)))
    }

    /// Wraps the master key `keys` holds for a box-form slot's public key with the certificates that lead from the
    /// slot's pin to that key, and binds the public key to the slot under it.
    static func wrap(
        _ slot: inout KeySlot, publicKey: [UInt8], keys: any KeyHolder,
        certificates: [MasterKeyWrap.Certificate]
    ) throws {
        slot.masterKeySealed =
            MasterKeyWrap(
                sealed: try keys.wrapMasterKey(toPublicKey: publicKey),
                certificates: certificates
            ).bytes
        slot.publicKey = publicKey + (try keys.mac(publicKey, label: SealLabel.keySlotPublicKey(slot.name)))
    }

    /// `keys rotate`: the slot's wrap of the new master key `newKeys`, its certificates those it had (which must
    /// lead to the current key, `keys`) and one more, the current signing key's signature of the new one. Nobody's
    /// passphrase is needed: the slot accepts the new key because its pin leads there.
    static func rewrap(_ slot: inout KeySlot, publicKey: [UInt8], keys: any KeyHolder, newKeys: any KeyHolder) throws {
        let current = try VaultSigning.pair(keys)
        let next = try VaultSigning.pair(newKeys).publicKey
        var certificates = try MasterKeyWrap.parse(slot.masterKeySealed).certificates
        if let last = certificates.last, last.publicKey != current.publicKey {
            throw damaged(slot, "its master key's certificates do not lead to the vault's current key")
        }
        certificates.append(
            .init(
                publicKey: next,
                signature: current.sign(VaultSigning.certificateMessage(from: current.publicKey, to: next))))
        try wrap(&slot, publicKey: publicKey, keys: newKeys, certificates: certificates)
    }

    /// Whether a box-form slot's public key is bound to it under the master key `keys` holds.
    static func isBound(_ slot: KeySlot, keys: any KeyHolder) throws -> Bool {
        guard let publicKey = slot.boxPublicKey, let mac = slot.boxPublicKeyMAC else { return false }
        return MAC.constantTimeEqual(try keys.mac(publicKey, label: SealLabel.keySlotPublicKey(slot.name)), mac)
    }

    /// What opening a slot gave: the master key, and the slot as it should be stored from now on when its pin
    /// should follow the key (certificates were followed, or the slot had no pin yet).
    struct Opened {
        var keys: InProcessKeyHolder
        var repinned: KeySlot?
    }

    /// Opens the master key through `slot` with the key its passphrase derived; nil when that is the wrong
    /// passphrase. Once the passphrase is known to be right, anything else that fails is damage or an edit (exit 7),
    /// never "wrong passphrase": a box-form slot accepts only the master key whose signing key it pins, or one its
    /// pin certifies through the wrap's certificates (one per `keys rotate`), checked before the key is used.
    static func open(_ slot: KeySlot, passphraseKey: SecretBytes) throws -> Opened? {
        switch slot.form {
        case .legacy:
            guard let master = try passphraseLayer(slot, passphraseKey: passphraseKey) else { return nil }
            guard master.count == VaultKeys.keyBytes else { throw damaged(slot, "its master key has the wrong length") }
            return Opened(keys: InProcessKeyHolder(masterKey: master), repinned: nil)
        case .box:
            guard let inner = try passphraseLayer(slot, passphraseKey: passphraseKey) else { return nil }
            let pinned = inner.count == BoxKeyPair.secretKeyBytes + SigningKeyPair.publicKeyBytes
            guard pinned || inner.count == BoxKeyPair.secretKeyBytes else {
                throw damaged(slot, "its sealed secret key has the wrong length")
            }
            let secretKey = SecretBytes(count: BoxKeyPair.secretKeyBytes)
            var pin: [UInt8] = []
            inner.withUnsafeBytes { raw in
                secretKey.withUnsafeMutableBytes {
                    $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw.prefix(BoxKeyPair.secretKeyBytes)))
                }
                pin = Array(raw.suffix(from: BoxKeyPair.secretKeyBytes))
            }
            guard let publicKey = slot.boxPublicKey, try BoxKeyPair.publicKey(of: secretKey) == publicKey else {
                throw damaged(slot, "its public key does not belong to its secret key")
            }
            let wrap: MasterKeyWrap
            do {
                wrap = try MasterKeyWrap.parse(slot.masterKeySealed)
            } catch let error as VaultCryptoError {
                throw damaged(slot, "its wrapped master key is malformed (\(error.localizedDescription))")
            }
            let master: SecretBytes
            do {
                master = try SealedBox.open(wrap.sealed, publicKey: publicKey, secretKey: secretKey)
            } catch let error as VaultCryptoError {
                throw damaged(slot, "its sealed master key failed its check (\(error.localizedDescription))")
            }
            guard master.count == VaultKeys.keyBytes else { throw damaged(slot, "its master key has the wrong length") }
            let keys = InProcessKeyHolder(masterKey: master)
            let signing = try VaultSigning.pair(keys).publicKey
            if pinned {
                // Follow the certificates from the pin: each must be signed by the key before it.
                var current = pin
                for certificate in wrap.certificates {
                    guard
                        SigningKeyPair.verify(
                            certificate.signature,
                            of: VaultSigning.certificateMessage(from: current, to: certificate.publicKey),
                            publicKey: current)
                    else {
                        throw substituted(slot, "a certificate of its master key is not signed by the key before it")
                    }
                    current = certificate.publicKey
                }
                guard current == signing else {
                    throw substituted(slot, "the master key sealed in it is not the one its passphrase vouches for")
                }
            } else if !wrap.certificates.isEmpty {
                throw substituted(slot, "its wrapped master key has certificates but the slot pins no key")
            }
            guard try isBound(slot, keys: keys) else {
                throw damaged(slot, "its public key is not bound to it under the vault's key")
            }
            var repinned: KeySlot?
            if !pinned || !wrap.certificates.isEmpty {
                var updated = slot
                updated.secretKeySealed = try sealSecretKey(
                    secretKey, pin: signing, slot: slot.name, passphraseKey: passphraseKey)
                updated.masterKeySealed = MasterKeyWrap(sealed: wrap.sealed, certificates: []).bytes
                repinned = updated
            }
            return Opened(keys: keys, repinned: repinned)
        }
    }

    /// Whether the passphrase's key opens the slot's first layer (the master key of a legacy slot, the secret key of
    /// a box slot): how a raised KDF level is told from a wrong passphrase.
    static func passphraseKeyOpens(_ slot: KeySlot, passphraseKey: SecretBytes) -> Bool {
        (try? passphraseLayer(slot, passphraseKey: passphraseKey)) != nil
    }

    /// What the passphrase's key opens directly; nil for a wrong passphrase.
    private static func passphraseLayer(_ slot: KeySlot, passphraseKey: SecretBytes) throws -> SecretBytes? {
        let sealed: [UInt8]
        let key: SecretBytes
        switch slot.form {
        case .legacy:
            (sealed, key) = (slot.masterKeySealed, passphraseKey)
        case .box:
            guard let secretKeySealed = slot.secretKeySealed, slot.boxPublicKey != nil else {
                throw damaged(slot, "it has a public key but its other half is missing or malformed")
            }
            (sealed, key) = (
                secretKeySealed, VaultKeys.subkey(of: passphraseKey, label: SealLabel.keySlotSecretKey(slot.name))
            )
        }
        do {
            return try SecretBox.open(sealed, key: key)
        } catch VaultCryptoError.authenticationFailed {
            return nil
        } catch VaultCryptoError.malformed(let why) {
            throw damaged(slot, "its sealed \(slot.form == .legacy ? "master" : "secret") key is malformed (\(why))")
        }
    }

    /// A master key the slot's passphrase does not vouch for: put there by someone who could write the store but
    /// knows no passphrase (the wrap is an anonymous sealed box), or an older wrap put back. Refused before the key
    /// seals, opens or sends anything.
    private static func substituted(_ slot: KeySlot, _ what: String) -> VaultError {
        .integrity(
            "key slot '\(slot.name)': \(what); the vault was not opened",
            hint:
                "someone who can write the vault's store replaced or rolled back its master key: enter no secret into this vault; restore it from a backup you trust, or create a new vault, and tell whoever administers the store"
        )
    }

    static func damaged(_ slot: KeySlot, _ what: String) -> VaultError {
        .integrity(
            "key slot '\(slot.name)': \(what)",
            hint:
                "the vault file was edited or damaged; open it with another key slot's passphrase and run \(Format.command("tokenvault passwd --slot \(slot.name)")) to make this one again, or restore the vault from a backup"
        )
    }
}

/// The vault's Ed25519 signing key, derived from the master key (so whoever holds the master key holds it, and
/// nobody else): its public half is the pin each box-form key slot keeps under its passphrase, and its signature
/// certifies the next master key at `keys rotate`.
enum VaultSigning {
    static let label = "vault/signing-key"

    static func pair(_ keys: any KeyHolder) throws -> SigningKeyPair {
        try SigningKeyPair(seed: SecretBytes(copying: try keys.mac(Array("ed25519 seed".utf8), label: label)))
    }

    /// What the signing key of the old master key signs at `keys rotate`: the two public keys, old then new.
    static func certificateMessage(from old: [UInt8], to new: [UInt8]) -> [UInt8] {
        Array("tokenvault master key certificate v1\0".utf8) + old + new
    }
}

/// A box-form slot's `master_key_sealed`: the master key sealed to the slot's public key and the certificates that
/// lead from the slot's pin to that key.
///
/// Format: a bare ``SealedBox`` value (its first byte 0x01; no certificates: written before slots pinned a key), or
/// `0x02` || sealed length (2 bytes, big-endian) || sealed || count (2 bytes) || count × (public key 32 || signature 64).
struct MasterKeyWrap: Equatable {
    struct Certificate: Equatable {
        var publicKey: [UInt8]
        var signature: [UInt8]
    }

    static let version: UInt8 = 0x02
    var sealed: [UInt8]
    var certificates: [Certificate]

    var bytes: [UInt8] {
        var out: [UInt8] = [Self.version, UInt8(sealed.count >> 8), UInt8(sealed.count & 0xff)]
        out += sealed
        out += [UInt8(certificates.count >> 8), UInt8(certificates.count & 0xff)]
        for certificate in certificates { out += certificate.publicKey + certificate.signature }
        return out
    }

    static func parse(_ bytes: [UInt8]) throws -> MasterKeyWrap {
        guard let first = bytes.first else { throw VaultCryptoError.malformed("it is empty") }
        if first != version { return MasterKeyWrap(sealed: bytes, certificates: []) }
        var at = 1
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, bytes.count - at >= n else { throw VaultCryptoError.malformed("it is cut short") }
            defer { at += n }
            return bytes[at..<at + n]
        }
        func length() throws -> Int {
            let b = try take(2)
            return Int(b.first!) << 8 | Int(b.last!)
        }
        let sealed = Array(try take(try length()))
        let count = try length()
        let size = SigningKeyPair.publicKeyBytes + SigningKeyPair.signatureBytes
        guard bytes.count - at == count * size else {
            throw VaultCryptoError.malformed(
                "it holds \(bytes.count - at) bytes of certificates for \(count) certificate\(count == 1 ? "" : "s")")
        }
        var certificates: [Certificate] = []
        for _ in 0..<count {
            certificates.append(
                Certificate(
                    publicKey: Array(try take(SigningKeyPair.publicKeyBytes)),
                    signature: Array(try take(SigningKeyPair.signatureBytes))))
        }
        return MasterKeyWrap(sealed: sealed, certificates: certificates)
    }
}
