import Foundation
import TokenVaultCore
import VaultCrypto
import VaultStore

/// Where the vault is: `--vault`, else `TOKENVAULT_VAULT`, else `$XDG_DATA_HOME/tokenvault/vault.db`
/// (`~/.local/share/tokenvault/vault.db`). A file path is made absolute; a PostgreSQL location (a
/// `postgresql://` URI or a libpq connection string, see ``PostgresLocation``) is passed on unchanged.
enum VaultLocation {
    static func path(option: String?, context: Context) -> String {
        path(option: option, environment: context.environment)
    }

    static func path(option: String?, environment: [String: String]) -> String {
        if let option, !option.isEmpty { return absolute(option) }
        if let env = environment["TOKENVAULT_VAULT"], !env.isEmpty { return absolute(env) }
        let dataHome: String
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") {
            dataHome = xdg
        } else {
            dataHome = (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share"
        }
        return dataHome + "/tokenvault/vault.db"
    }

    /// Whether the location names a PostgreSQL database rather than a file (nothing beside it on disk).
    static func isPostgreSQL(_ location: String) -> Bool { PostgresLocation.isPostgreSQL(location) }

    private static func absolute(_ path: String) -> String {
        if isPostgreSQL(path) { return path }
        return path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}

/// `--verbose`: one line when secret memory could not be locked into RAM (for example under `ulimit -l 0`).
enum MemoryLockReport {
    static func print(context: Context, verbose: Bool) {
        guard verbose, let reason = MemoryLocking.takeUnreportedFailure() else { return }
        context.console.err("tokenvault: warning: could not lock secret memory into RAM (mlock: \(reason)); keys and tokens may be written to swap. Raise the limit ('ulimit -l') to keep them out\n")
    }
}
