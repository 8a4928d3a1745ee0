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
        VaultHeader(kdfAlgorithm: "key_slot", kdfSalt: [], kdfOpsLimit: 0, kdfMemLimit: 0, masterKeySealed: [],
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
    /// the passphrase's key (through the slot's own subkey), the master key sealed to its public key, and the public
    /// key bound to the slot by a MAC under the master key.
    public static func make(named name: String, keys: any KeyHolder, passphraseKey: SecretBytes,
                            parameters: KDFParameters, createdAt: Date, changedAt: Date) throws -> KeySlot {
        let pair = try BoxKeyPair.generate()
        let slotKey = VaultKeys.subkey(of: passphraseKey, label: SealLabel.keySlotSecretKey(name))
        var slot = KeySlot(
            name: name, kdfAlgorithm: KDFParameters.algorithmName, kdfSalt: parameters.salt,
            kdfOpsLimit: parameters.opsLimit, kdfMemLimit: parameters.memLimit,
            secretKeySealed: try SecretBox.seal(pair.secretKey, key: slotKey), masterKeySealed: [],
            createdAt: createdAt, changedAt: changedAt)
        try wrap(&slot, publicKey: pair.publicKey, keys: keys)
        return slot
    }

    /// Wraps the master key `keys` holds for a box-form slot's public key, and binds that key to the slot under it.
    static func wrap(_ slot: inout KeySlot, publicKey: [UInt8], keys: any KeyHolder) throws {
        slot.masterKeySealed = try keys.wrapMasterKey(toPublicKey: publicKey)
        slot.publicKey = publicKey + (try keys.mac(publicKey, label: SealLabel.keySlotPublicKey(slot.name)))
    }

    /// Whether a box-form slot's public key is bound to it under the master key `keys` holds.
    static func isBound(_ slot: KeySlot, keys: any KeyHolder) throws -> Bool {
        guard let publicKey = slot.boxPublicKey, let mac = slot.boxPublicKeyMAC else { return false }
        return MAC.constantTimeEqual(try keys.mac(publicKey, label: SealLabel.keySlotPublicKey(slot.name)), mac)
    }

    /// Opens the master key through `slot` with the key its passphrase derived; nil when that is the wrong
    /// passphrase. Once the passphrase is known to be right, anything else that fails is damage or an edit (exit 7),
    /// never "wrong passphrase".
    static func open(_ slot: KeySlot, passphraseKey: SecretBytes) throws -> InProcessKeyHolder? {
        switch slot.form {
        case .legacy:
            guard let master = try passphraseLayer(slot, passphraseKey: passphraseKey) else { return nil }
            guard master.count == VaultKeys.keyBytes else { throw damaged(slot, "its master key has the wrong length") }
            return InProcessKeyHolder(masterKey: master)
        case .box:
            guard let secretKey = try passphraseLayer(slot, passphraseKey: passphraseKey) else { return nil }
            guard let publicKey = slot.boxPublicKey, secretKey.count == BoxKeyPair.secretKeyBytes,
                  try BoxKeyPair.publicKey(of: secretKey) == publicKey else {
                throw damaged(slot, "its public key does not belong to its secret key")
            }
            let master: SecretBytes
            do {
                master = try SealedBox.open(slot.masterKeySealed, publicKey: publicKey, secretKey: secretKey)
            } catch let error as VaultCryptoError {
                throw damaged(slot, "its sealed master key failed its check (\(error.localizedDescription))")
            }
            guard master.count == VaultKeys.keyBytes else { throw damaged(slot, "its master key has the wrong length") }
            let keys = InProcessKeyHolder(masterKey: master)
            guard try isBound(slot, keys: keys) else { throw damaged(slot, "its public key is not bound to it under the vault's key") }
            return keys
        }
    }

    /// Whether the passphrase's key opens the slot's first layer (the master key of a legacy slot, the secret key of
    /// a box slot): how a raised KDF level is told from a wrong passphrase.
    static func passphraseKeyOpens(_ slot: KeySlot, passphraseKey: SecretBytes) -> Bool {
        (try? passphraseLayer(slot, passphraseKey: passphraseKey)) != nil
    }

    /// What the passphrase's key opens directly; nil for a wrong passphrase.
    private static func passphraseLayer(_ slot: KeySlot, passphraseKey: SecretBytes) throws -> SecretBytes? {
        let sealed: [UInt8], key: SecretBytes
        switch slot.form {
        case .legacy:
            (sealed, key) = (slot.masterKeySealed, passphraseKey)
        case .box:
            guard let secretKeySealed = slot.secretKeySealed, slot.boxPublicKey != nil else {
                throw damaged(slot, "it has a public key but its other half is missing or malformed")
            }
            (sealed, key) = (secretKeySealed, VaultKeys.subkey(of: passphraseKey, label: SealLabel.keySlotSecretKey(slot.name)))
        }
        do {
            return try SecretBox.open(sealed, key: key)
        } catch VaultCryptoError.authenticationFailed {
            return nil
        } catch VaultCryptoError.malformed(let why) {
            throw damaged(slot, "its sealed \(slot.form == .legacy ? "master" : "secret") key is malformed (\(why))")
        }
    }

    private static func damaged(_ slot: KeySlot, _ what: String) -> VaultError {
        .integrity("key slot '\(slot.name)': \(what)",
                   hint: "the vault file was edited or damaged; open it with another key slot's passphrase and run \(Format.command("tokenvault passwd --slot \(slot.name)")) to make this one again, or restore the vault from a backup")
    }
}
