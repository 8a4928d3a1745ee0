import GRDBSQLite

extension VaultStores {
    /// The version of the SQLite library this process runs with (the shared library loaded, not the header built
    /// against), e.g. "3.40.1". Opens no database.
    public static var sqliteLibraryVersion: String { String(cString: sqlite3_libversion()) }
}
