import Foundation
import VaultOAuth

/// The core's own errors: what went wrong with the vault, an account or the provider, in the words a user reads,
/// with what to do next (`hint`). They name the account, never a secret. The CLI maps them to exit codes.
public enum VaultError: Error, LocalizedError, Equatable {
    case wrongPassphrase
    case emptyPassphrase
    case integrity(String, hint: String? = nil)
    case unsupportedKDF(String)
    case accessTokenExpired(account: String, at: Date)
    case needsReauthorization(account: String, reason: String)
    case noTokens(account: String)
    case provider(String, hint: String? = nil)
    case busy(String, hint: String? = nil)
    /// The per-account lock directory or file is not safely ours (another user's, a symlink, writable by others).
    /// Something stored or given cannot be used as it is (an unknown provider, an invalid API base, a lock file
    /// that cannot be opened).
    case invalid(String, hint: String? = nil)
    /// The vault's store could not be written (a server down, a full or read-only disk): a refresh was not tried,
    /// or its new pair waits in the local journal, or (both failing) could not be kept.
    case storeFailed(String, hint: String? = nil)

    public var errorDescription: String? {
        switch self {
        case .wrongPassphrase: "wrong passphrase"
        case .emptyPassphrase: "the passphrase is empty"
        case .integrity(let message, _): message
        case .unsupportedKDF(let name): "the vault uses key derivation '\(name)', which this tokenvault does not know"
        case .accessTokenExpired(let account, let at):
            "the access token of '\(account)' expired at \(Format.timestamp(at))"
        // The hint says what to run, naming the account: the reason's own general advice would say it twice.
        case .needsReauthorization(let account, let reason):
            "account '\(account)' needs re-authorization: \(reason.replacingOccurrences(of: "; run 'tokenvault authorize' for this account", with: ""))"
        case .noTokens(let account): "account '\(account)' holds no token pair"
        case .provider(let message, _), .busy(let message, _), .invalid(let message, _), .storeFailed(let message, _):
            message
        }
    }

    /// What the user can do about it.
    public var hint: String? {
        switch self {
        case .wrongPassphrase: "try again; the vault was not changed"
        case .emptyPassphrase: "choose a non-empty passphrase"
        case .integrity(_, let hint), .provider(_, let hint), .busy(_, let hint), .invalid(_, let hint),
            .storeFailed(_, let hint):
            hint
        case .accessTokenExpired(let account, _):
            "run \(Format.command("tokenvault refresh \(account)")), or import a new token pair with \(Format.command("tokenvault import \(account) --replace"))"
        case .needsReauthorization(let account, _): "run \(Format.command("tokenvault authorize \(account)"))"
        case .noTokens(let account):
            "run \(Format.command("tokenvault authorize \(account)")) or \(Format.command("tokenvault import \(account) --integration NAME"))"
        case .unsupportedKDF: nil
        }
    }

    /// Whether `error` means the account needs a browser again (a refused refresh token, no pair, an expired one).
    public static func meansReauthorization(_ error: any Error) -> Bool {
        switch error {
        case let e as VaultError:
            switch e {
            case .accessTokenExpired, .needsReauthorization, .noTokens: true
            default: false
            }
        case let e as OAuthError: e.isInvalidGrant
        default: false
        }
    }
}
