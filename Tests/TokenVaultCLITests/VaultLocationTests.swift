import Foundation
import Testing
import VaultStore

@testable import TokenVaultCLI

/// `--vault` and `TOKENVAULT_VAULT`: a file path is made absolute, a PostgreSQL location passes through unchanged
/// (made "absolute" it would become a file named `postgresql:` in the current directory).
@Suite struct VaultLocationTests {
    @Test func postgreSQLLocationsPassThroughUnchanged() {
        for location in [
            "postgresql:///team?host=/run/postgresql&port=5432", "postgres://db.example/vault?sslmode=verify-full",
            "service=tokenvault", "host=db.example dbname=vault",
        ] {
            #expect(VaultLocation.path(option: location, environment: [:]) == location)
            #expect(VaultLocation.path(option: nil, environment: ["TOKENVAULT_VAULT": location]) == location)
        }
        let cwd = FileManager.default.currentDirectoryPath
        #expect(VaultLocation.path(option: "vault.db", environment: [:]) == cwd + "/vault.db")
        #expect(
            VaultLocation.path(option: nil, environment: ["TOKENVAULT_VAULT": "postgresql.db"]) == cwd
                + "/postgresql.db")
    }
}
