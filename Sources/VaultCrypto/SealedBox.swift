import CSodium

/// An X25519 key pair (`crypto_box_keypair`): a key slot's own pair, so that a new master key can be wrapped for
/// the slot (to its public key) by someone who does not know its passphrase. The secret half lives in guarded memory.
public struct BoxKeyPair: Sendable {
    public static let publicKeyBytes = Int(crypto_box_publickeybytes())
    public static let secretKeyBytes = Int(crypto_box_secretkeybytes())

    public let publicKey: [UInt8]
    public let secretKey: SecretBytes

    /// A fresh random key pair.
    public static func generate() throws -> BoxKeyPair {
        try Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: publicKeyBytes)
        let secretKey = SecretBytes(count: secretKeyBytes)
        let status = secretKey.withUnsafeMutableBytes { sk in
            crypto_box_keypair(&publicKey, sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(status == 0, "crypto_box_keypair failed")  // it cannot, short of a broken libsodium
        return BoxKeyPair(publicKey: publicKey, secretKey: secretKey)
    }

    /// The public key that belongs to `secretKey` (`crypto_scalarmult_base`).
    public static func publicKey(of secretKey: SecretBytes) throws -> [UInt8] {
        try Sodium.ensureInitialized()
        precondition(secretKey.count == secretKeyBytes, "an X25519 secret key is \(secretKeyBytes) bytes")
        var publicKey = [UInt8](repeating: 0, count: publicKeyBytes)
        let status = secretKey.withUnsafeBytes { sk in
            crypto_scalarmult_base(&publicKey, sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard status == 0 else { throw VaultCryptoError.malformed("the secret key gives no public key") }
        return publicKey
    }
}

/// Anonymous public-key encryption with `crypto_box_seal` (an ephemeral X25519 key, XSalsa20-Poly1305): anyone
/// with the public key can seal, only the secret key opens. How a new master key is wrapped for every key slot
/// without their passphrases (`keys rotate`).
///
/// Sealed format: `0x01` (version) || the 48 + n bytes of `crypto_box_seal` (ephemeral public key, tag, ciphertext).
/// There is no associated data: the recipient's public key is already bound into the nonce, so a value sealed to one
/// key pair opens with no other. The ephemeral key is random, so there is no nonce for a caller to choose.
public enum SealedBox {
    static let version: UInt8 = 0x01

    /// Bytes a sealed value adds to its plaintext: 1 + 32 + 16.
    public static let overhead = 1 + Int(crypto_box_sealbytes())

    /// Seals `plaintext` to `publicKey`.
    public static func seal(_ plaintext: SecretBytes, to publicKey: [UInt8]) throws -> [UInt8] {
        try Sodium.ensureInitialized()
        guard publicKey.count == BoxKeyPair.publicKeyBytes else {
            throw VaultCryptoError.malformed(
                "a public key is \(BoxKeyPair.publicKeyBytes) bytes, this one \(publicKey.count)")
        }
        var sealed = [UInt8](repeating: 0, count: overhead + plaintext.count)
        sealed[0] = version
        let status = sealed.withUnsafeMutableBufferPointer { out in
            plaintext.withUnsafeBytes { message in
                crypto_box_seal(
                    out.baseAddress! + 1, message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    UInt64(message.count), publicKey)
            }
        }
        // Fails only for a public key of small order (all zeros, say): not one crypto_box_keypair makes.
        guard status == 0 else { throw VaultCryptoError.malformed("the public key cannot be sealed to") }
        return sealed
    }

    /// Opens a value sealed to the pair (`publicKey`, `secretKey`) into guarded memory. Throws `.malformed` when it is
    /// too short or of an unknown version, `.authenticationFailed` for another key pair or any altered byte.
    public static func open(_ sealed: [UInt8], publicKey: [UInt8], secretKey: SecretBytes) throws -> SecretBytes {
        try Sodium.ensureInitialized()
        precondition(
            secretKey.count == BoxKeyPair.secretKeyBytes, "an X25519 secret key is \(BoxKeyPair.secretKeyBytes) bytes")
        guard publicKey.count == BoxKeyPair.publicKeyBytes else {
            throw VaultCryptoError.malformed(
                "a public key is \(BoxKeyPair.publicKeyBytes) bytes, this one \(publicKey.count)")
        }
        guard sealed.count >= overhead else {
            throw VaultCryptoError.malformed(
                "sealed value is \(sealed.count) bytes, shorter than the minimum \(overhead)")
        }
        guard sealed[0] == version else {
            throw VaultCryptoError.malformed(
                "unknown format version \(sealed[0]) (this build reads version \(version))")
        }
        let plaintext = SecretBytes(count: sealed.count - overhead)
        let status = plaintext.withUnsafeMutableBytes { out in
            sealed.withUnsafeBufferPointer { input in
                secretKey.withUnsafeBytes { sk in
                    crypto_box_seal_open(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self), input.baseAddress! + 1,
                        UInt64(input.count - 1), publicKey, sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard status == 0 else { throw VaultCryptoError.authenticationFailed }
        return plaintext
    }
}
