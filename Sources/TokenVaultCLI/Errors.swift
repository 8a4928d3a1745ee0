import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

/// tokenvault's exit codes, the same for every command (README "Exit codes").
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case other = 1
    case usage = 2
    case passphrase = 3
    case notFound = 4
    case needsReauthorization = 5
    case provider = 6
    case integrity = 7
    /// `exec`: the command was found but cannot be run (not executable, a directory), as shells report it.
    case cannotExecute = 126
    /// `exec`: no such command, as shells report it.
    case commandNotFound = 127
}

/// The CLI layer's own errors. Messages name the account and what to do; they never contain a secret.
public enum CLIError: Error, LocalizedError, Equatable {
    case usage(String, hint: String? = nil)
    case noPassphraseSource
    /// `init`: a passphrase shorter than the minimum, without --allow-weak-passphrase.
    case weakPassphrase(characters: Int, minimum: Int)
    case passphraseMismatch
    case passphraseFileUnsafe(path: String, reason: String)
    case passphraseSource(String, hint: String? = nil)
    /// `exec`: the command is not on PATH, or its path does not exist.
    case commandNotFound(String)
    /// `exec`: the command exists but cannot be run.
    case cannotExecute(String, reason: String)
    /// The provider refused the authorization code (`invalid_grant` at the code exchange); `pasted` when the
    /// user pasted it (a typo or an old code), not when the browser brought it to the listener.
    case authorizationCodeRefused(account: String, said: String?, pasted: Bool)
    /// `revoke`: the pair was removed from the vault, but the provider did not revoke the tokens.
    case revokeFailed(account: String, reason: String, hint: String)
    /// One of the core's errors, raised by a command itself (same words, same exit code).
    case vault(VaultError)

    static func integrity(_ message: String, hint: String? = nil) -> CLIError {
        .vault(.integrity(message, hint: hint))
    }
    static func needsReauthorization(account: String, reason: String) -> CLIError {
        .vault(.needsReauthorization(account: account, reason: reason))
    }
    static func provider(_ message: String, hint: String? = nil) -> CLIError { .vault(.provider(message, hint: hint)) }
    static func busy(_ message: String, hint: String? = nil) -> CLIError { .vault(.busy(message, hint: hint)) }

    public var errorDescription: String? {
        switch self {
        case .usage(let message, _): message
        case .noPassphraseSource: "a passphrase is needed and there is no terminal to ask on"
        case .weakPassphrase(let n, let minimum):
            "the passphrase has only \(n) character\(n == 1 ? "" : "s"); a new passphrase needs at least \(minimum)"
        case .passphraseMismatch: "the two passphrases differ"
        case .passphraseFileUnsafe(let path, let reason): "refusing passphrase file \(path): \(reason)"
        case .passphraseSource(let message, _): message
        case .commandNotFound(let program): "cannot find the command \(Format.quoted(program))"
        case .cannotExecute(let program, let reason): "cannot run \(Format.quoted(program)): \(reason)"
        case .authorizationCodeRefused(_, let said, _):
            "the authorization code was refused\(said.map { " by the provider (\($0))" } ?? " by the provider")"
        case .revokeFailed(let account, let reason, _):
            "the tokens of '\(account)' were removed from the vault but not revoked at the provider (\(reason)); they stay valid there until they expire"
        case .vault(let error): error.errorDescription
        }
    }

    var hint: String? {
        switch self {
        case .usage(_, let hint): hint
        case .noPassphraseSource:
            "give it with --passphrase-fd N, TOKENVAULT_PASSPHRASE_FILE (a 0600 file) or TOKENVAULT_PASSPHRASE, or run on a terminal"
        case .weakPassphrase:
            "choose a longer one (12 or more characters, a few random words work well), or pass --allow-weak-passphrase to keep it"
        case .passphraseMismatch: "type the same passphrase twice"
        case .passphraseFileUnsafe: "chmod 600 the file, owned by you"
        case .passphraseSource(_, let hint): hint
        case .commandNotFound: "check the name and PATH, or give the command's full path"
        case .cannotExecute: "check that it is a program and that its mode lets you run it (chmod +x)"
        case .authorizationCodeRefused(let account, _, let pasted):
            pasted
                ? "a code works once and only for a few minutes, and only with the authorization it came from; run \(Format.command("tokenvault authorize \(account)")) again and paste the URL the browser lands on right away"
                : "run \(Format.command("tokenvault authorize \(account)")) again"
        case .vault(let error): error.hint
        case .revokeFailed(_, _, let hint): hint
        }
    }
}

/// The one place that turns any error into the words and exit code a user sees.
enum ErrorReport {
    static func describe(_ error: any Error) -> (message: String, hint: String?, code: ExitStatus) {
        switch error {
        case let e as CLIError:
            let code: ExitStatus =
                switch e {
                case .usage: .usage
                case .noPassphraseSource, .weakPassphrase, .passphraseMismatch, .passphraseFileUnsafe,
                    .passphraseSource:
                    .passphrase
                case .commandNotFound: .commandNotFound
                case .cannotExecute: .cannotExecute
                case .authorizationCodeRefused(_, _, let pasted): pasted ? .usage : .provider
                case .revokeFailed: .provider
                case .vault(let error): describe(error).code
                }
            return (e.localizedDescription, e.hint, code)
        case let e as VaultError:
            let code: ExitStatus =
                switch e {
                case .wrongPassphrase, .emptyPassphrase: .passphrase
                case .integrity, .unsupportedKDF: .integrity
                case .accessTokenExpired, .needsReauthorization, .noTokens: .needsReauthorization
                case .provider: .provider
                case .busy, .storeFailed: .other
                case .invalid: .usage
                }
            return (e.localizedDescription, e.hint, code)
        case let e as StoreError:
            let code: ExitStatus =
                switch e {
                case .vaultMissing, .noSuchAccount, .noSuchIntegration, .noSuchKeySlot, .notAVault: .notFound
                case .damaged, .invalidRecord: .integrity
                case .duplicateAccount, .duplicateIntegration, .duplicateKeySlot, .integrationInUse, .vaultExists:
                    .usage
                default: .other
                }
            return (e.localizedDescription, e.hint, code)
        case let e as OAuthError:
            let code: ExitStatus
            switch e {
            case _ where e.isInvalidGrant: code = .needsReauthorization
            case .portInUse, .listenerFailed, .transport(.missingLibrary, _): code = .other
            case .invalidPaste, .invalidRedirectURI: code = .usage
            default: code = .provider
            }
            return (e.localizedDescription, nil, code)
        case let e as VaultCryptoError:
            switch e {
            case .unsafeKDFParameters:
                return (
                    e.localizedDescription, "the vault file looks damaged or tampered with; restore it from a backup",
                    .integrity
                )
            default:
                return (e.localizedDescription, nil, .integrity)
            }
        default:
            return (error.localizedDescription, nil, .other)
        }
    }
}

extension RefreshOutcome {
    /// What to do about the failure (the error's hint), when there is one.
    var hint: String? { failure.flatMap { ErrorReport.describe($0).hint } }
    /// The exit code the failure maps to (6 provider, 7 integrity, …); nil when it did not fail.
    var failureCode: ExitStatus? { failure.map { ErrorReport.describe($0).code } }
}
