import Foundation
import VaultCrypto
import VaultOAuth
import VaultStore

/// tokenvault's exit codes, the same for every command (README "Exit codes").
public enum ExitCode: Int32, Sendable {
    case ok = 0
    case other = 1
    case usage = 2
    case passphrase = 3
    case notFound = 4
    case needsReauthorization = 5
    case provider = 6
    case integrity = 7
}

/// The CLI layer's own errors. Messages name the account and what to do; they never contain a secret.
public enum CLIError: Error, LocalizedError, Equatable {
    case usage(String, hint: String? = nil)
    case noPassphraseSource
    case wrongPassphrase
    case emptyPassphrase
    case passphraseMismatch
    case passphraseFileUnsafe(path: String, reason: String)
    case passphraseSource(String)
    case integrity(String, hint: String? = nil)
    case accessTokenExpired(account: String, at: Date)
    case needsReauthorization(account: String, reason: String)
    case noTokens(account: String)
    case unsupportedKDF(String)
    case provider(String, hint: String? = nil)
    case busy(String, hint: String? = nil)
    /// The per-account lock directory or file is not safely ours (another user's, a symlink, writable by others).
    case unsafeLockPath(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .usage(let message, _): message
        case .noPassphraseSource: "a passphrase is needed and there is no terminal to ask on"
        case .wrongPassphrase: "wrong passphrase"
        case .emptyPassphrase: "the passphrase is empty"
        case .passphraseMismatch: "the two passphrases differ"
        case .passphraseFileUnsafe(let path, let reason): "refusing passphrase file \(path): \(reason)"
        case .passphraseSource(let message): message
        case .integrity(let message, _): message
        case .accessTokenExpired(let account, let at):
            "the access token of '\(account)' expired at \(Format.timestamp(at))"
        case .needsReauthorization(let account, let reason): "account '\(account)' needs re-authorization: \(reason)"
        case .noTokens(let account): "account '\(account)' holds no token pair"
        case .unsupportedKDF(let name): "the vault uses key derivation '\(name)', which this tokenvault does not know"
        case .provider(let message, _), .busy(let message, _): message
        case .unsafeLockPath(let path, let reason): "refusing the lock \(path): \(reason)"
        }
    }

    var hint: String? {
        switch self {
        case .usage(_, let hint): hint
        case .noPassphraseSource:
            "give it with --passphrase-fd N, TOKENVAULT_PASSPHRASE_FILE (a 0600 file) or TOKENVAULT_PASSPHRASE, or run on a terminal"
        case .wrongPassphrase: "try again; the vault was not changed"
        case .emptyPassphrase: "choose a non-empty passphrase"
        case .passphraseMismatch: "type the same passphrase twice"
        case .passphraseFileUnsafe: "chmod 600 the file, owned by you"
        case .integrity(_, let hint): hint
        case .accessTokenExpired(let account, _):
            "run 'tokenvault refresh \(account)', or import a new token pair with 'tokenvault import \(account) --replace'"
        case .needsReauthorization(let account, _): "run 'tokenvault authorize \(account)'"
        case .noTokens(let account): "run 'tokenvault authorize \(account)' or 'tokenvault import \(account) --integration NAME'"
        case .provider(_, let hint), .busy(_, let hint): hint
        case .unsafeLockPath(let path, _):
            "another user may be able to block or redirect tokenvault's locks; check who made \(path), remove it (rm -r) and run again: tokenvault recreates it private to you"
        default: nil
        }
    }
}

/// The one place that turns any error into the words and exit code a user sees.
enum ErrorReport {
    static func describe(_ error: any Error) -> (message: String, hint: String?, code: ExitCode) {
        switch error {
        case let e as CLIError:
            let code: ExitCode = switch e {
            case .usage: .usage
            case .noPassphraseSource, .wrongPassphrase, .emptyPassphrase, .passphraseMismatch,
                 .passphraseFileUnsafe, .passphraseSource: .passphrase
            case .integrity, .unsupportedKDF: .integrity
            case .accessTokenExpired, .needsReauthorization, .noTokens: .needsReauthorization
            case .provider: .provider
            case .busy, .unsafeLockPath: .other
            }
            return (e.localizedDescription, e.hint, code)
        case let e as StoreError:
            let code: ExitCode = switch e {
            case .vaultMissing, .noSuchAccount, .noSuchIntegration, .notAVault: .notFound
            case .damaged, .invalidRecord: .integrity
            case .duplicateAccount, .duplicateIntegration, .integrationInUse, .vaultExists: .usage
            default: .other
            }
            return (e.localizedDescription, e.hint, code)
        case let e as OAuthError:
            let code: ExitCode
            switch e {
            case _ where e.isInvalidGrant: code = .needsReauthorization
            case .portInUse, .listenerFailed: code = .other
            case .invalidPaste, .invalidRedirectURI: code = .usage
            default: code = .provider
            }
            return (e.localizedDescription, nil, code)
        case let e as VaultCryptoError:
            switch e {
            case .unsafeKDFParameters:
                return (e.localizedDescription, "the vault file looks damaged or tampered with; restore it from a backup", .integrity)
            default:
                return (e.localizedDescription, nil, .integrity)
            }
        default:
            return (error.localizedDescription, nil, .other)
        }
    }
}
