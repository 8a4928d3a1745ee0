import Foundation

/// Everything that can go wrong in the store, in words a user can act on. Never carries a secret.
public enum StoreError: Error, Equatable, LocalizedError {
    case vaultMissing(path: String)
    case vaultExists(path: String)
    case notAVault(path: String, reason: String)
    case damaged(path: String, reason: String)
    case newerSchema(path: String, unknown: [String])
    case fileSystem(path: String, reason: String)
    case duplicateIntegration(String)
    case duplicateAccount(String)
    case duplicateKeySlot(String)
    case noSuchKeySlot(String)
    case noSuchIntegration(String)
    case noSuchAccount(String)
    case integrationInUse(String, accounts: Int)
    case database(String)
    /// A row whose plain fields are not what tokenvault writes (an id that is not a UUID): an edited file.
    case invalidRecord(String)
    /// A refresh lock that another user could hold or redirect (not ours, a symlink, writable by others).
    case unsafeLockPath(path: String, reason: String)
    /// Another process held an account's refresh lock for longer than the wait allowed.
    case lockBusy(String, hint: String?)
    case lockFailed(String)
    /// A PostgreSQL vault's connection or server said no (libpq missing, a refused connection, a password in the
    /// location, a lost connection): the server's words, never a connection secret, and what to do.
    case postgres(String, hint: String?)

    public var errorDescription: String? {
        switch self {
        case .vaultMissing(let path): "no vault at \(path)"
        case .vaultExists(let path): "a vault already exists at \(path)"
        case .notAVault(let path, let reason): "\(path) is not a tokenvault vault (\(reason))"
        case .damaged(let path, let reason): "the vault \(path) is damaged (\(reason))"
        case .newerSchema(let path, let unknown):
            "\(path) was written by a newer tokenvault (schema \(unknown.joined(separator: ", "))); it was not modified"
        case .fileSystem(let path, let reason): "\(path): \(reason)"
        case .duplicateIntegration(let name): "an integration named '\(name)' already exists"
        case .duplicateAccount(let name): "an account named '\(name)' already exists"
        case .duplicateKeySlot(let name): "a key slot named '\(name)' already exists"
        case .noSuchKeySlot(let name): "no key slot named '\(name)'"
        case .noSuchIntegration(let name): "no integration named '\(name)'"
        case .noSuchAccount(let name): "no account named '\(name)'"
        case .integrationInUse(let name, let n): "integration '\(name)' is used by \(n) account\(n == 1 ? "" : "s")"
        case .database(let message): "database error: \(message)"
        case .invalidRecord(let what): "the vault was tampered with: \(what)"
        case .unsafeLockPath(let path, let reason): "refusing the lock \(path): \(reason)"
        case .lockBusy(let message, _), .lockFailed(let message): message
        case .postgres(let message, _): message
        }
    }

    /// What the user can do next, printed as a `hint:` line.
    public var hint: String? {
        switch self {
        case .vaultMissing:
            "create one with 'tokenvault init', or point --vault / TOKENVAULT_VAULT at an existing vault"
        case .vaultExists: "use it as it is, or give another location with --vault"
        case .notAVault: "check the --vault path or TOKENVAULT_VAULT; restore the vault from a backup if it was damaged"
        case .damaged: "restore the vault from a backup; 'sqlite3 VAULT \"PRAGMA integrity_check\"' shows the damage"
        case .newerSchema: "use the newer tokenvault that wrote this vault"
        case .duplicateIntegration: "pick another name, or remove the old one with 'tokenvault remove-integration NAME'"
        case .duplicateAccount: "pick another name, or pass --replace to overwrite the stored token pair"
        case .noSuchIntegration: "'tokenvault integrations' lists them; 'tokenvault add' registers one"
        case .noSuchAccount: "'tokenvault list' shows the accounts"
        case .duplicateKeySlot: "pick another name; 'tokenvault keys list' shows them"
        case .noSuchKeySlot: "'tokenvault keys list' shows the key slots"
        case .integrationInUse: "revoke those accounts first, or pass --force to remove them with the integration"
        case .invalidRecord: "the vault file was edited or damaged; restore it from a backup (nothing was used)"
        case .unsafeLockPath(let path, _):
            "another user may be able to block or redirect tokenvault's locks; check who made \(path), remove it (rm -r) and run again: tokenvault recreates it private to you"
        case .lockBusy(_, let hint): hint
        case .postgres(_, let hint): hint
        default: nil
        }
    }
}
