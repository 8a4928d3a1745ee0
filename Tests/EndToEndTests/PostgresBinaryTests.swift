import Foundation
import Testing
import TokenVaultLab
import WebexSandbox

extension VaultBinaryTests {
    /// The built binary on a PostgreSQL vault (a fresh database on the test process's throwaway server), against
    /// the in-process sandbox: `TOKENVAULT_VAULT=postgresql:///DB?host=SOCKETDIR&port=PORT`.
    @Suite struct PostgreSQL {
        /// Runs `body` with a sandbox workspace whose vault is a new database; stops the sandbox whatever happens.
        static func with(_ body: (SandboxWorkspace, PostgresServer, String) async throws -> Void) async throws {
            let server = try PostgresServer.shared()
            let database = try server.createDatabase(prefix: "e2e")
            let clientId = "C" + String(generatedToken().prefix(24))
            let secret = "cs-" + generatedToken()
            let redirect = "http://127.0.0.1:\(freePort())/callback"
            let sandbox = WebexSandbox(configuration: SandboxConfiguration(clients: [
                .init(clientId: clientId, clientSecret: secret, redirectURIs: [redirect], scopes: SandboxWorkspace.scopes),
            ]))
            let base = try await sandbox.start()
            let s = SandboxWorkspace(sandbox: sandbox, base: base, clientId: clientId, clientSecret: secret, redirect: redirect)
            s.ws.environment["TOKENVAULT_VAULT"] = server.location(database: database)
            do { try await body(s, server, database) } catch {
                await sandbox.stop()
                throw error
            }
            await sandbox.stop()
        }

        @Test func initAddImportListEnvRefreshAllAndVerify() async throws {
            try await Self.with { s, server, database in
                try await s.expectOK(["init", "--kdf", "interactive"])
                try await s.addIntegration()
                // One account on its own, three in a batch.
                let single = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: s.user.id)
                try await s.expectOK(["import", "alice", "--integration", "webex"],
                                     stdin: tokenJSON(access: single.accessToken, refresh: single.refreshToken))
                var pairs = try await s.importAccounts(["bob", "carol", "dave"])
                pairs["alice"] = (single.accessToken, single.refreshToken)

                // The vault is in the database, not in a file named after the location.
                #expect(try server.psql(database, "SELECT string_agg(name, ',' ORDER BY name) FROM account") == "alice,bob,carol,dave")
                #expect(try FileManager.default.contentsOfDirectory(atPath: s.ws.dir).allSatisfy { !$0.contains("postgres") })

                let listed = try await s.listed()
                #expect(listed.keys.sorted() == ["alice", "bob", "carol", "dave"])
                let env = try await s.run(["env", "alice"])
                #expect(env.code == 0, "\(env.err)")
                #expect(env.out == "export WEBEX_ACCESS_TOKEN='\(single.accessToken)'\n")

                let refreshed = try await s.run(["refresh-all", "--json", "--skip-recent", "0"])
                #expect(refreshed.code == 0, "\(refreshed.err)")
                let rows = (try requireJSON(refreshed.out)["accounts"] as? [[String: Any]]) ?? []
                #expect(rows.count == 4 && rows.allSatisfy { $0["status"] as? String == "refreshed" }, "\(refreshed.out)")
                #expect(await s.refreshTokensNotUsedOnce(pairs).isEmpty)
                #expect(try await s.token("alice") != single.accessToken)

                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.out)\(verify.err)")
                let entries = Int(try server.psql(database, "SELECT count(*) FROM audit_entry")) ?? 0
                #expect(entries == 8, "4 imported + 4 refreshed")
                s.expectNoSecrets(env.err + refreshed.out + refreshed.err + verify.out + verify.err)
            }
        }

        /// Starting tokenvault loads libpq only for a PostgreSQL vault: not for --version, not for a SQLite vault
        /// (the dynamic loader's own log, LD_DEBUG=libs, lists every library loaded, dlopen's included).
        @Test func libpqIsLoadedOnlyForAPostgreSQLVault() async throws {
            try await Self.with { s, _, _ in
                try await s.expectOK(["init", "--kdf", "interactive"])
                let sqlite = Workspace()
                try sqlite.expectOK(["init", "--kdf", "interactive"])
                let version = try sqlite.tokenvault(["--version"], environment: ["LD_DEBUG": "libs"])
                let onSQLite = try sqlite.tokenvault(["list"], environment: ["LD_DEBUG": "libs"])
                let onPostgreSQL = try await s.run(["list"], environment: ["LD_DEBUG": "libs"])
                #expect(version.code == 0 && onSQLite.code == 0 && onPostgreSQL.code == 0, "\(onPostgreSQL.err.suffix(500))")
                #expect(!version.err.contains("libpq"))
                #expect(!onSQLite.err.contains("libpq"))
                #expect(onPostgreSQL.err.contains("libpq.so.5"))
            }
        }
    }
}
