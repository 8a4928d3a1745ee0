/// The PostgreSQL vault's schema, one embedded `.sql` file per version from `Migrations/postgresql/`, in order.
/// A migration is never edited once it has shipped; a new version adds a file, a resource line in Package.swift
/// and a line here.
public enum PostgresSchema {
    /// (identifier, SQL) in order. The identifier is the file name without `.sql`, as in the SQLite vault.
    public static let migrations: [(identifier: String, sql: String)] = [
        ("v001_initial", text(PackageResources.v001_initial_sql)),
        ("v002_provider_options", text(PackageResources.v002_provider_options_sql)),
        ("v003_notifications", text(PackageResources.v003_notifications_sql)),
        ("v004_key_slots", text(PackageResources.v004_key_slots_sql)),
        ("v005_pair_binding", text(PackageResources.v005_pair_binding_sql)),
    ]

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}
