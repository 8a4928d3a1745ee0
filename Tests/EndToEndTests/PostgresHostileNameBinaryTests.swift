import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension VaultBinaryTests.PostgreSQL {
    /// The database's administrator (no passphrase) renames an account to a terminal escape and a command
    /// substitution: `list` and `check` are exit 7 naming the row by id, and print none of it, as on a file.
    @Test func anAdministratorsHostileAccountNameIsExit7() async throws {
        try await Self.with { s, server, database in
            try await s.expectOK(["init", "--kdf", "interactive"])
            try await s.addIntegration()
            try await s.importAccounts(["alice"])
            let id = try server.psql(database, "SELECT id FROM account WHERE name = 'alice'")
            _ = try server.psql(
                database,
                """
                UPDATE account SET state = 'needs-reauth',
                    name = 'x' || chr(27) || ']52;c;aGk=' || chr(7) || '$(touch /tmp/tokenvault-pwned)' || chr(10) || 'y'
                WHERE id = '\(id)'
                """)
            for command in [["list"], ["check"], ["refresh-all"]] {
                let result = try await s.run(command)
                #expect(result.code == 7, "\(command): \(result.code) \(result.out)\(result.err)")
                #expect(
                    result.err.contains("account \(id) has a name tokenvault does not create"),
                    "\(command): \(result.err)")
                let printed = result.out + result.err
                #expect(
                    !printed.contains("\u{1b}") && !printed.contains("\u{07}") && !printed.contains("$(touch"),
                    "\(command): \(printed)")
            }
        }
    }
}
