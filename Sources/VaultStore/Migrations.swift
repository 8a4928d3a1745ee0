import Foundation
import GRDB

/// The schema, one embedded `.sql` file per version from `Migrations/`, applied in order, each once.
/// A migration is never edited once it has shipped; a new version adds a file and a line here.
public enum VaultMigrations {
    /// (identifier, SQL) in order. The identifier is the file name without `.sql`.
    public static let all: [(identifier: String, sql: String)] = [
        ("v001_initial", text(PackageResources.v001_initial_sql)),
        ("v002_provider_options", text(PackageResources.v002_provider_options_sql)),
        ("v003_notifications", text(PackageResources.v003_notifications_sql)),
        ("v004_key_slots", text(PackageResources.v004_key_slots_sql)),
        ("v005_pair_binding", text(PackageResources.v005_pair_binding_sql)),
    ]

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    typealias Migration = (identifier: String, sql: String)

    static func migrator(_ migrations: [Migration] = all) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in migrations {
            migrator.registerMigration(migration.identifier) { db in
                try db.execute(sql: migration.sql)
            }
        }
        return migrator
    }
}
