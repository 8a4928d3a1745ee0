import CSodium

/// Where the vault's keys come from: the passphrase key (Argon2id), the random master key it
/// wraps, and per-place subkeys derived from the master.
public enum VaultKeys {
    /// Length of every key this module makes (`crypto_secretbox_KEYBYTES`).
    public static let keyBytes = 32

    /// Derives the 32-byte key that wraps the master key, with `crypto_pwhash` and
    /// `crypto_pwhash_ALG_ARGON2ID13`. The parameters are validated first, so refused parameters
    /// throw `.unsafeKDFParameters` without any memory being allocated for the KDF.
    public static func derivePassphraseKey(_ passphrase: SecretBytes, parameters: KDFParameters) throws -> SecretBytes {
        try argon2id(passphrase, parameters: parameters, outputLength: keyBytes)
    }

    /// Argon2id with a chosen output length. Internal so known-answer tests can use libsodium's
    /// vectors (which have long outputs); production always asks for `keyBytes`.
    static func argon2id(_ passphrase: SecretBytes, parameters: KDFParameters, outputLength: Int) throws -> SecretBytes
    {
        try Sodium.ensureInitialized()
        try parameters.validate()  // must stay before crypto_pwhash: the caps are the point
        let output = SecretBytes(count: outputLength)
        let status = output.withUnsafeMutableBytes { out in
            passphrase.withUnsafeBytes { pass in
                parameters.salt.withUnsafeBufferPointer { salt in
                    crypto_pwhash(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(outputLength),
                        pass.baseAddress!.assumingMemoryBound(to: CChar.self), UInt64(pass.count),
                        salt.baseAddress!,
                        parameters.opsLimit, Int(parameters.memLimit),  // validated <= 1.25 GiB, fits
                        crypto_pwhash_alg_argon2id13())
                }
            }
        }
        guard status == 0 else { throw VaultCryptoError.kdfFailed }
        return output
    }

    /// A fresh random 32-byte key (`randombytes_buf`), used as the master key.
    public static func randomKey() -> SecretBytes {
        let key = SecretBytes(count: keyBytes)
        key.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        return key
    }

    /// A per-place key: keyed BLAKE2b (`crypto_generichash`, key = master,
    /// message = `"tokenvault/v1/" + label`), 32 bytes.
    ///
    /// secretbox has no associated data, so binding happens through the key: a label such as
    /// `"account/<uuid>/access_token"` names the row and column, and a value sealed there does
    /// not open anywhere else. The `v1` prefix separates these keys from any future scheme.
    public static func subkey(of master: SecretBytes, label: String) -> SecretBytes {
        keyedHash(key: master, message: Array(("tokenvault/v1/" + label).utf8))
    }

    /// Keyed BLAKE2b with a 32-byte output; separate from `subkey` so the primitive can be checked
    /// against libsodium's own vectors.
    static func keyedHash(key: SecretBytes, message: [UInt8]) -> SecretBytes {
        let output = SecretBytes(count: keyBytes)
        keyedHash(key: key, message: message, into: output)
        return output
    }

    /// ``subkey(of:label:)`` into a buffer the caller owns (and reuses): no guarded allocation per key.
    public static func subkey(of master: SecretBytes, label: String, into output: SecretBytes) {
        keyedHash(key: master, message: Array(("tokenvault/v1/" + label).utf8), into: output)
    }

    static func keyedHash(key: SecretBytes, message: [UInt8], into output: SecretBytes) {
        precondition(key.count == keyBytes, "master key must be \(keyBytes) bytes")
        precondition(output.count == keyBytes, "a subkey is \(keyBytes) bytes")
        let status = output.withUnsafeMutableBytes { out in
            key.withUnsafeBytes { k in
                message.withUnsafeBufferPointer { m in
                    crypto_generichash(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count,
                        m.baseAddress, UInt64(m.count),
                        k.baseAddress!.assumingMemoryBound(to: UInt8.self), k.count)
                }
            }
        }
        // Only fails for out-of-range lengths, which the precondition and constants rule out.
        precondition(status == 0, "crypto_generichash failed")
    }
}
