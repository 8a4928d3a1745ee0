import CSodium

/// Authenticated encryption of one value with `crypto_secretbox_easy` (XSalsa20-Poly1305).
///
/// Sealed format: `0x01` (version) || 24-byte random nonce || ciphertext with its 16-byte tag.
/// Random nonces are safe at 24 bytes. There is no associated data: to bind a value to its
/// place, seal it under `VaultKeys.subkey(of:label:)` for that place.
public enum SecretBox {
    static let version: UInt8 = 0x01
    static let nonceBytes = Int(crypto_secretbox_noncebytes())
    static let macBytes = Int(crypto_secretbox_macbytes())
    static let keyBytes = Int(crypto_secretbox_keybytes())

    /// Bytes a sealed value adds to its plaintext: 1 + 24 + 16.
    public static let overhead: Int = 1 + nonceBytes + macBytes

    /// Seals a secret under a 32-byte key with a fresh random nonce.
    public static func seal(_ plaintext: SecretBytes, key: SecretBytes) throws -> [UInt8] {
        try Sodium.ensureInitialized()
        let nonce = Random.bytes(nonceBytes)
        return plaintext.withUnsafeBytes { seal($0, key: key, nonce: nonce) }
    }

    /// Seals non-secret-memory bytes (for example the master key's wrapped form, or test data).
    public static func seal(_ plaintext: [UInt8], key: SecretBytes) throws -> [UInt8] {
        try Sodium.ensureInitialized()
        let nonce = Random.bytes(nonceBytes)
        return plaintext.withUnsafeBytes { seal($0, key: key, nonce: nonce) }
    }

    /// Known-answer tests only. Internal on purpose: callers must never choose nonces.
    static func seal(_ plaintext: [UInt8], key: SecretBytes, nonce: [UInt8]) throws -> [UInt8] {
        try Sodium.ensureInitialized()
        return plaintext.withUnsafeBytes { seal($0, key: key, nonce: nonce) }
    }

    private static func seal(_ plaintext: UnsafeRawBufferPointer, key: SecretBytes, nonce: [UInt8]) -> [UInt8] {
        // A wrong-length key or nonce is a programming error, not bad input: our keys are made here.
        precondition(key.count == keyBytes, "secretbox key must be \(keyBytes) bytes")
        precondition(nonce.count == nonceBytes, "secretbox nonce must be \(nonceBytes) bytes")
        let cipherLength = macBytes + plaintext.count
        var sealed = [UInt8](repeating: 0, count: 1 + nonceBytes + cipherLength)
        sealed[0] = version
        sealed.replaceSubrange(1..<(1 + nonceBytes), with: nonce)
        let status = sealed.withUnsafeMutableBufferPointer { out in
            key.withUnsafeBytes { k in
                crypto_secretbox_easy(
                    out.baseAddress! + 1 + nonceBytes,
                    plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
                    out.baseAddress! + 1,
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(status == 0, "crypto_secretbox_easy failed")  // only fails on absurd lengths
        return sealed
    }

    /// Opens a sealed value into secure memory.
    /// Throws `.malformed` if it is too short or has an unknown version byte, and
    /// `.authenticationFailed` for a wrong key, any altered byte, or a value sealed for another place.
    public static func open(_ sealed: [UInt8], key: SecretBytes) throws -> SecretBytes {
        try Sodium.ensureInitialized()
        precondition(key.count == keyBytes, "secretbox key must be \(keyBytes) bytes")
        guard sealed.count >= overhead else {
            throw VaultCryptoError.malformed(
                "sealed value is \(sealed.count) bytes, shorter than the minimum \(overhead)")
        }
        guard sealed[0] == version else {
            throw VaultCryptoError.malformed(
                "unknown format version \(sealed[0]) (this build reads version \(version))")
        }
        let plaintext = SecretBytes(count: sealed.count - overhead)
        // crypto_secretbox_open_easy checks the tag before decrypting, so nothing is written on failure.
        let status = plaintext.withUnsafeMutableBytes { out in
            sealed.withUnsafeBufferPointer { input in
                key.withUnsafeBytes { k in
                    crypto_secretbox_open_easy(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        input.baseAddress! + 1 + nonceBytes, UInt64(input.count - 1 - nonceBytes),
                        input.baseAddress! + 1,
                        k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard status == 0 else { throw VaultCryptoError.authenticationFailed }
        return plaintext
    }
}
