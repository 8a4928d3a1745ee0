import CSodium

/// An Ed25519 key pair (`crypto_sign_seed_keypair`) made from a 32-byte seed: the vault's signing key, derived from
/// the master key, whose public half each key slot keeps under its own passphrase. A master key is accepted through
/// a slot only when its signing key is the one the slot keeps, or is certified by it (signed, one rotation after the
/// other): the master key of a slot arrives in an anonymous sealed box, which anyone who can write the store can make.
public struct SigningKeyPair: Sendable {
    public static let publicKeyBytes = Int(crypto_sign_publickeybytes())
    public static let signatureBytes = Int(crypto_sign_bytes())
    static let seedBytes = Int(crypto_sign_seedbytes())

    public let publicKey: [UInt8]
    private let secretKey: SecretBytes

    /// The pair `seed` determines: the same seed, the same pair.
    public init(seed: SecretBytes) throws {
        try Sodium.ensureInitialized()
        guard seed.count == Self.seedBytes else {
            throw VaultCryptoError.malformed("a signing seed is \(Self.seedBytes) bytes, this one \(seed.count)")
        }
        var publicKey = [UInt8](repeating: 0, count: Self.publicKeyBytes)
        let secretKey = SecretBytes(count: Int(crypto_sign_secretkeybytes()))
        let status = secretKey.withUnsafeMutableBytes { sk in
            seed.withUnsafeBytes { s in
                crypto_sign_seed_keypair(
                    &publicKey, sk.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    s.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(status == 0, "crypto_sign_seed_keypair failed")  // it cannot, short of a broken libsodium
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A detached signature of `message` (`crypto_sign_detached`).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Self.signatureBytes)
        let status = secretKey.withUnsafeBytes { sk in
            crypto_sign_detached(
                &signature, nil, message, UInt64(message.count),
                sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(status == 0, "crypto_sign_detached failed")
        return signature
    }

    /// Whether `signature` is `publicKey`'s signature of `message` (`crypto_sign_verify_detached`).
    public static func verify(_ signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard (try? Sodium.ensureInitialized()) != nil, signature.count == signatureBytes,
            publicKey.count == publicKeyBytes
        else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }
}
