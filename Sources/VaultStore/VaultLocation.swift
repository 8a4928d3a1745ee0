import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where a vault is: a file (the SQLite store, ``SQLiteVault``) or a PostgreSQL database (``PostgresVault``).
///
/// The one place that decides which a location names, how messages name it, which spellings are one vault, and
/// where the state kept on this machine for it goes (refresh locks, the agent's socket, the refresh journal).
/// ``VaultStores`` opens the store a location names.
///
/// A location is a PostgreSQL one when it is a URI (`postgresql://…`, `postgres://…`, any case) or a libpq
/// connection string that starts with `service=`, `host=` or `dbname=`; anything else is a file path.
///
/// Two locations are equal when they are spelled alike (a file path as given, so callers make it absolute first,
/// as ``resolve(option:environment:currentDirectory:)`` does). ``isSameVault(as:)`` goes further for a file: two
/// paths to one real file (through symbolic links) are one vault, and share its locks and journal.
public enum VaultLocation: Hashable, Sendable, CustomStringConvertible {
    /// A file path.
    case file(String)
    /// A PostgreSQL URI or libpq connection string, which tokenvault requires to carry no password
    /// (``PostgresLocation``).
    case postgres(String)

    /// Classifies a location as given (`--vault`, `TOKENVAULT_VAULT`, a store's ``VaultStorage/location``). A
    /// relative file path stays relative.
    public init(_ text: String) {
        self = Self.namesPostgreSQL(text) ? .postgres(text) : .file(text)
    }

    /// Whether `text` names a PostgreSQL database rather than a file.
    static func namesPostgreSQL(_ text: String) -> Bool {
        let lowered = text.lowercased()
        return lowered.hasPrefix("postgresql://") || lowered.hasPrefix("postgres://")
            || ["service=", "host=", "dbname="].contains { text.hasPrefix($0) }
    }

    /// The vault a command works on: `option` (`--vault`), else `TOKENVAULT_VAULT`, else
    /// `$XDG_DATA_HOME/tokenvault/vault.db` (`~/.local/share/tokenvault/vault.db`). A file path is made absolute
    /// against `currentDirectory`; a PostgreSQL location is taken unchanged (made "absolute" it would become a
    /// file named `postgresql:` in the current directory).
    public static func resolve(
        option: String?, environment: [String: String],
        currentDirectory: String = FileManager.default.currentDirectoryPath
    ) -> VaultLocation {
        if let option, !option.isEmpty { return VaultLocation(option).absolute(in: currentDirectory) }
        if let env = environment["TOKENVAULT_VAULT"], !env.isEmpty {
            return VaultLocation(env).absolute(in: currentDirectory)
        }
        let dataHome: String
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") {
            dataHome = xdg
        } else {
            dataHome = (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share"
        }
        return .file(dataHome + "/tokenvault/vault.db")
    }

    /// A relative file path made absolute against `directory` (by joining, not resolving); anything else as it is.
    public func absolute(in directory: String) -> VaultLocation {
        guard case .file(let path) = self, !path.hasPrefix("/") else { return self }
        return .file(directory + "/" + path)
    }

    /// The location as a store is opened with it: the path, or the URI or connection string.
    public var text: String {
        switch self {
        case .file(let path): path
        case .postgres(let conninfo): conninfo
        }
    }

    /// The location as messages name it: a file path as it is; a PostgreSQL location without its password
    /// (which tokenvault refuses, but a message that names the location before opening it must not repeat).
    public var name: String {
        switch self {
        case .file(let path): path
        case .postgres(let conninfo): PostgresLocation.withoutSecrets(conninfo)
        }
    }

    public var description: String { name }

    public var isPostgreSQL: Bool {
        if case .postgres = self { return true }
        return false
    }

    /// The same vault under the one spelling the state kept per vault is named by: a file's real path (every
    /// symbolic link resolved) when the file exists, else the path as given; a PostgreSQL location as it is.
    public var canonical: VaultLocation {
        switch self {
        case .file(let path): .file(Self.realPath(path) ?? path)
        case .postgres: self
        }
    }

    /// Whether both name one vault: the same real file, or the same PostgreSQL location.
    public func isSameVault(as other: VaultLocation) -> Bool { canonical == other.canonical }

    // MARK: State kept on this machine

    /// The directory of the per-account refresh lock files (``FileAccountLock``): beside the file's real path, so
    /// two paths to one vault share it. Nil for PostgreSQL, whose refresh locks are advisory locks on the server.
    public var lockDirectory: String? {
        switch self {
        case .file: canonical.text + ".locks"
        case .postgres: nil
        }
    }

    /// The text a vault's refresh journal directory is named by (a digest of it): the ``canonical`` spelling, so
    /// two paths to one file share a journal.
    public var journalKey: String { canonical.text }

    /// What names the vault's agent socket, read now: for a file, the device and inode of the real file, so an
    /// agent serves exactly one vault (two paths to one file share an agent; a file replaced under the same path
    /// is another vault), nil when there is no file; for a database, a digest of the location (one agent per
    /// location; a client still checks the agent's key against the vault's audit head before using it).
    public func agentIdentity() -> String? {
        switch self {
        case .file(let path):
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            return "\(UInt64(info.st_dev))-\(UInt64(info.st_ino))"
        case .postgres(let conninfo):
            // FNV-1a, 64 bits: a name for the socket, not a secret or a check (the socket's directory is ours alone).
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in conninfo.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            return "db-" + String(hash, radix: 16)
        }
    }

    /// The directory the vault file is in (where files that belong beside it go); nil for a database, of which
    /// nothing is on this machine.
    public var fileDirectory: String? {
        switch self {
        case .file(let path): URL(fileURLWithPath: path).deletingLastPathComponent().path
        case .postgres: nil
        }
    }

    /// The path with every symlink resolved, or nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = Glibc.realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
