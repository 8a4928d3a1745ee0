import VaultCrypto
import VaultStore

/// What `tokenvault --version` prints, as `gh --version` and `age --version` do: the version (the top-level VERSION
/// file, through the BuildInfo plugin), the commit the binary was built from, and the libsodium and SQLite it runs
/// with. Nothing here loads a library that is not already loaded (libcurl and libpq are opened only when needed),
/// so `--version` stays the startup floor `make bench` measures.
enum VersionText {
    static var text: String {
        """
        tokenvault \(BuildInfo.version) (commit \(BuildInfo.commit))
        libsodium \(Sodium.libraryVersion), SQLite \(VaultStores.sqliteLibraryVersion)
        """
    }
}
