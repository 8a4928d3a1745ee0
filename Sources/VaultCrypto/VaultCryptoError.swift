import Foundation

/// Everything that can go wrong in the crypto module.
///
/// Messages are written for the person at the terminal: they say what happened and what to try,
/// and never include key material, passphrases or plaintext.
public enum VaultCryptoError: Error, Equatable, LocalizedError {
    /// `sodium_init` failed; nothing in this module can be used safely.
    case sodiumUnavailable
    /// Stored KDF parameters were refused before running the KDF, so a hostile vault file cannot
    /// make us allocate huge memory or spin for hours. The string says which parameter and why.
    case unsafeKDFParameters(String)
    /// `crypto_pwhash` returned non-zero, which in practice means it could not get its memory.
    case kdfFailed
    /// A sealed value did not verify: wrong key, tampered bytes, or a value moved to another place.
    case authenticationFailed
    /// A sealed value is not in a format we know (too short, unknown version byte).
    case malformed(String)

    public var errorDescription: String? {
        switch self {
        case .sodiumUnavailable:
            return "The cryptography library (libsodium) could not be initialised; check the libsodium installation."
        case .unsafeKDFParameters(let why):
            return
                "The vault's key-derivation settings were refused before use: \(why). The vault file may be damaged or tampered with."
        case .kdfFailed:
            return
                "Deriving the key from the passphrase failed, most likely for lack of memory. Close other programs and try again."
        case .authenticationFailed:
            return "A stored value could not be decrypted: the passphrase or key is wrong, or the vault was altered."
        case .malformed(let why):
            return "A stored value is malformed: \(why). The vault may be damaged, or written by a newer tokenvault."
        }
    }
}
