import CSodium

// The sandbox verifies PKCE S256 challenges with libsodium's SHA-256: an implementation independent of the
// client's own (VaultOAuth/SHA256.swift), so a bug in one cannot hide in the other.

/// SHA-256 digest of `message`.
func sha256(_ message: some Collection<UInt8>) -> [UInt8] {
    let bytes = Array(message)
    var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
    _ = crypto_hash_sha256(&digest, bytes, UInt64(bytes.count))
    return digest
}
