import Foundation
import TokenVaultCore
import VaultCrypto

/// A copied vault file can be attacked offline at the KDF's pace: a short passphrase is the weak point.
enum PassphraseStrength {
    static let minimum = 8
    static let recommended = 12

    /// Refuses fewer than `minimum` characters (unless `allowWeak`) and warns below `recommended`.
    static func check(_ passphrase: SecretBytes, allowWeak: Bool, context: Context) throws {
        let length = characters(passphrase)
        if length < minimum && !allowWeak { throw CLIError.weakPassphrase(characters: length, minimum: minimum) }
        if length < recommended {
            context.console.warn(
                "the passphrase has only \(length) character\(length == 1 ? "" : "s"); \(recommended) or more (a few random words) make a copied vault file much harder to open"
            )
        }
    }

    /// UTF-8 characters, counted without turning the secret into a String: every byte that does not continue one.
    static func characters(_ passphrase: SecretBytes) -> Int {
        passphrase.withUnsafeBytes { raw in raw.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) } }
    }
}
