import CSodium

/// Argon2id parameters stored with the vault, so a later version can raise the cost and re-wrap.
public struct KDFParameters: Sendable, Equatable {
    /// The algorithm these parameters are for, named explicitly because libsodium's default
    /// (`crypto_pwhash_ALG_DEFAULT`) may change between versions. Store it with the vault.
    public static let algorithmName = "argon2id13"

    /// libsodium's cost presets for Argon2id.
    /// Measured on the target machine: interactive (2, 64 MiB) ~0.15 s; moderate (3, 256 MiB) ~1 s;
    /// sensitive (4, 1 GiB) ~9 s.
    public enum Level: String, CaseIterable, Sendable {
        case interactive, moderate, sensitive
    }

    /// Argon2 passes (t).
    public var opsLimit: UInt64
    /// Memory in bytes (m); Argon2 rounds it down to whole KiB.
    public var memLimit: UInt64
    /// `crypto_pwhash_SALTBYTES` (16) random bytes.
    public var salt: [UInt8]

    public init(opsLimit: UInt64, memLimit: UInt64, salt: [UInt8]) {
        self.opsLimit = opsLimit
        self.memLimit = memLimit
        self.salt = salt
    }

    /// Salt length Argon2id in libsodium requires.
    public static let saltBytes = Int(crypto_pwhash_argon2id_saltbytes())

    // Caps on what we will run: the sensitive preset (4, 1 GiB) plus a small margin. tokenvault only ever
    // writes the presets, so nothing honest is above them; a hostile vault file cannot make us allocate
    // more than 1.25 GiB or spin for more than one sensitive run before the passphrase is even checked.
    static let opsLimitMin = UInt64(crypto_pwhash_argon2id_opslimit_min())
    static let opsLimitMax: UInt64 = 5
    static let memLimitMin = UInt64(crypto_pwhash_argon2id_memlimit_min())
    static let memLimitMax: UInt64 = (1 << 30) + (256 << 20)  // 1 GiB + 256 MiB

    /// New parameters at a libsodium preset with a fresh random salt.
    public static func fresh(_ level: Level) -> KDFParameters {
        let ops: Int
        let mem: Int
        switch level {
        case .interactive:
            (ops, mem) = (crypto_pwhash_argon2id_opslimit_interactive(), crypto_pwhash_argon2id_memlimit_interactive())
        case .moderate:
            (ops, mem) = (crypto_pwhash_argon2id_opslimit_moderate(), crypto_pwhash_argon2id_memlimit_moderate())
        case .sensitive:
            (ops, mem) = (crypto_pwhash_argon2id_opslimit_sensitive(), crypto_pwhash_argon2id_memlimit_sensitive())
        }
        return KDFParameters(opsLimit: UInt64(ops), memLimit: UInt64(mem), salt: Random.bytes(saltBytes))
    }

    /// Whether these are the same cost (passes and memory) as `other`; the salt is not compared.
    public func sameCost(as other: KDFParameters) -> Bool {
        opsLimit == other.opsLimit && memLimit == other.memLimit
    }

    /// Refuses parameters that are malformed or beyond our caps. Cheap; runs no KDF.
    /// Throws `.unsafeKDFParameters` with a description of the offending value.
    public func validate() throws {
        guard salt.count == Self.saltBytes else {
            throw VaultCryptoError.unsafeKDFParameters("salt is \(salt.count) bytes, expected \(Self.saltBytes)")
        }
        guard (Self.opsLimitMin...Self.opsLimitMax).contains(opsLimit) else {
            throw VaultCryptoError.unsafeKDFParameters(
                "opsLimit \(opsLimit) is outside the accepted range \(Self.opsLimitMin)...\(Self.opsLimitMax)")
        }
        guard (Self.memLimitMin...Self.memLimitMax).contains(memLimit) else {
            throw VaultCryptoError.unsafeKDFParameters(
                "memLimit \(memLimit) bytes is outside the accepted range \(Self.memLimitMin) bytes...1.25 GiB")
        }
    }
}
