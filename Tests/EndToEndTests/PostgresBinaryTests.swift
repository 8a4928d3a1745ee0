import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

extension VaultBinaryTests {
    /// The built binary on a PostgreSQL vault (a fresh database on the test process's throwaway server), against
    /// the in-process sandbox: `TOKENVAULT_VAULT=postgresql:///DB?host=SOCKETDIR&port=PORT`.
    @Suite struct PostgreSQL {
        /// Runs `body` with a sandbox workspace whose vault is a new database; stops the sandbox whatever happens.
        static func with(
            configure: (inout SandboxConfiguration) -> Void = { _ in },
            _ body: (SandboxWorkspace, PostgresServer, String) async throws -> Void
        ) async throws {
            let server = try await PostgresServer.sharedOffPool()
            let database = try server.createDatabase(prefix: "e2e")
            let clientId = "C" + String(generatedToken().prefix(24))
            let secret = "cs-" + generatedToken()
            let redirect = "http://127.0.0.1:\(freePort())/callback"
            var configuration = SandboxConfiguration(clients: [
                .init(
                    clientId: clientId, clientSecret: secret, redirectURIs: [redirect], scopes: SandboxWorkspace.scopes)
            ])
            configure(&configuration)
            let sandbox = ProviderSandbox(configuration: configuration)
            let base = try await sandbox.start()
            let s = SandboxWorkspace(
                sandbox: sandbox, base: base, clientId: clientId, clientSecret: secret, redirect: redirect)
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
                try await s.expectOK(
                    ["import", "alice", "--integration", "webex"],
                    stdin: tokenJSON(access: single.accessToken, refresh: single.refreshToken))
                var pairs = try await s.importAccounts(["bob", "carol", "dave"])
                pairs["alice"] = (single.accessToken, single.refreshToken)

                // The vault is in the database, not in a file named after the location.
                #expect(
                    try server.psql(database, "SELECT string_agg(name, ',' ORDER BY name) FROM account")
                        == "alice,bob,carol,dave")
                #expect(
                    try FileManager.default.contentsOfDirectory(atPath: s.ws.dir).allSatisfy {
                        !$0.contains("postgres")
                    })

                let listed = try await s.listed()
                #expect(listed.keys.sorted() == ["alice", "bob", "carol", "dave"])
                let env = try await s.run(["env", "alice"])
                #expect(env.code == 0, "\(env.err)")
                #expect(env.out == "export WEBEX_ACCESS_TOKEN='\(single.accessToken)'\n")

                let refreshed = try await s.run(["refresh-all", "--json", "--skip-recent", "0"])
                #expect(refreshed.code == 0, "\(refreshed.err)")
                let rows = (try requireJSON(refreshed.out)["accounts"] as? [[String: Any]]) ?? []
                #expect(
                    rows.count == 4 && rows.allSatisfy { $0["status"] as? String == "refreshed" }, "\(refreshed.out)")
                #expect(await s.refreshTokensNotUsedOnce(pairs).isEmpty)
                #expect(try await s.token("alice") != single.accessToken)

                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.out)\(verify.err)")
                let entries = Int(try server.psql(database, "SELECT count(*) FROM audit_entry")) ?? 0
                #expect(entries == 8, "4 imported + 4 refreshed")
                s.expectNoSecrets(env.err + refreshed.out + refreshed.err + verify.out + verify.err)
            }
        }

        /// Three refresh-all processes ("hosts") at once on one PostgreSQL vault, under strict rotation
        /// (a refresh token sent twice kills the pair): each account is refreshed exactly once, by one of them, the
        /// work is split between them, and the audit chain they appended to together verifies.
        @Test func threeHostsSplitRefreshAllAndRefreshEachAccountOnce() async throws {
            try await Self.with(configure: {
                $0.rotation = .on
                $0.latency = 0.005
            }) { s, server, database in
                try await s.expectOK(["init", "--kdf", "interactive"])
                try await s.addIntegration()
                let n = 240
                let pairs = try await s.importAccounts((0..<n).map { "u\($0)" })
                // As cron starts them on three hosts, with the default --skip-recent (10 minutes): a run that starts
                // late leaves what the others refreshed. The pairs are made an hour old (plain metadata) so all are due.
                try server.psql(database, "UPDATE account SET updated_at = updated_at - 3600")
                let arguments = ["refresh-all", "--json", "--concurrency", "8"]
                let hosts = try (0..<3).map { _ in try s.start(arguments) }
                var reports: [[String: Any]] = []
                for host in hosts {
                    let result = try await offPool { try host.wait(timeout: 120) }
                    #expect(result.code == 0, "\(result.err)")
                    reports.append(jsonObject(result.out))
                }
                let refreshed = reports.map { $0["refreshed"] as? Int ?? -1 }
                #expect(refreshed.reduce(0, +) == n, "refreshed per host: \(refreshed)")
                #expect(refreshed.filter { $0 > 0 }.count >= 2, "the work was not split: \(refreshed)")
                #expect(await s.refreshTokensNotUsedOnce(pairs).isEmpty)
                #expect(await s.sandbox.counters.successfulRefreshes == n)
                let states = try await s.listed().values.compactMap { $0["state"] as? String }
                #expect(states.count == n && !states.contains("needs-reauth"))
                #expect(
                    try server.psql(database, "SELECT count(*) FROM audit_entry WHERE event = 'refreshed'") == String(n)
                )
                #expect(
                    try server.psql(database, "SELECT count(*) FROM audit_entry WHERE event = 'tamper-detected'") == "0"
                )
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.out)\(verify.err)")
                print("three hosts over \(n) accounts: \(refreshed) refreshed")
            }
        }

        /// `unlock` on a PostgreSQL vault: an agent serves it (named by its location) until `lock`.
        @Test func theAgentServesAPostgreSQLVault() async throws {
            try await Self.with { s, _, _ in
                try await s.expectOK(["init", "--kdf", "interactive"])
                try await s.addIntegration()
                let pairs = try await s.importAccounts(["alice"])
                let runtime = s.ws.dir + "/run"
                try FileManager.default.createDirectory(
                    atPath: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                let noPassphrase: [String: String?] = ["TOKENVAULT_PASSPHRASE": nil, "XDG_RUNTIME_DIR": runtime]
                #expect(try await s.run(["token", "alice"], environment: noPassphrase).code == 3)
                let unlock = try await s.run(["unlock", "--for", "10m"], environment: ["XDG_RUNTIME_DIR": runtime])
                #expect(unlock.code == 0, "\(unlock.err)")
                let token = try await s.run(["token", "alice"], environment: noPassphrase)
                #expect(token.code == 0 && token.out == pairs["alice"]!.access + "\n", "\(token.err)")
                let status = try await s.run(["agent", "status", "--json"], environment: noPassphrase)
                #expect(
                    jsonObject(status.out)["vault"] as? String == s.ws.environment["TOKENVAULT_VAULT"], "\(status.out)")
                #expect(try await s.run(["lock"], environment: noPassphrase).code == 0)
                #expect(try await s.run(["token", "alice"], environment: noPassphrase).code == 3)
            }
        }

        /// `copy --to` both ways: SQLite to PostgreSQL and back, without a passphrase; each copy verifies and works,
        /// and the round trip gives back the same rows.
        @Test func copyFromSQLiteToPostgreSQLAndBack() async throws {
            try await Self.with { s, server, database in
                let postgres = try #require(s.ws.environment["TOKENVAULT_VAULT"])
                let file = s.ws.dir + "/vault.db"
                let onFile: [String: String?] = ["TOKENVAULT_VAULT": file]
                #expect(try await s.run(["init", "--kdf", "interactive"], environment: onFile).code == 0)
                try await s.expectOK(
                    [
                        "add", "webex", "--vault", file, "--client-id", s.clientId, "--redirect-uri", s.redirect,
                        "--scopes", SandboxWorkspace.scopes.joined(separator: " "), "--api-base", s.base.absoluteString,
                        "--client-secret-stdin",
                    ], stdin: s.clientSecret)
                let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: s.user.id)
                #expect(
                    try await s.run(
                        ["import", "alice", "--integration", "webex"],
                        stdin: tokenJSON(access: pair.accessToken, refresh: pair.refreshToken), environment: onFile
                    ).code == 0)
                #expect(try await s.run(["refresh", "alice"], environment: onFile).code == 0)

                let there = try await s.run(
                    ["copy", "--to", postgres], environment: merged(onFile, ["TOKENVAULT_PASSPHRASE": nil]))
                #expect(there.code == 0, "\(there.err)")
                #expect(try server.psql(database, "SELECT count(*) FROM audit_entry") == "2")
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.out)\(verify.err)")
                let token = try await s.run(["token", "alice"])
                #expect(token.code == 0, "\(token.err)")
                #expect(try await s.run(["refresh", "alice"]).code == 0)

                let back = s.ws.dir + "/back.db"
                let home = try await s.run(["copy", "--to", back], environment: ["TOKENVAULT_PASSPHRASE": nil])
                #expect(home.code == 0, "\(home.err)")
                let verifyBack = try await s.run(["audit", "--verify"], environment: ["TOKENVAULT_VAULT": back])
                #expect(verifyBack.code == 0, "\(verifyBack.out)\(verifyBack.err)")
                #expect(
                    try await s.run(["token", "alice"], environment: ["TOKENVAULT_VAULT": back]).out
                        == s.run(["token", "alice"]).out)
                for table in ["integration", "key_slot"] {
                    let dump = "SELECT * FROM \(table) ORDER BY 1"
                    #expect(try sqlite(file, dump) == sqlite(back, dump), "\(table) differs after the round trip")
                }
                #expect(try sqlite(back, "SELECT count(*) FROM audit_entry") == "3")
            }
        }

        /// Key slots on PostgreSQL: a member's slot added, used, removed (then refused), and the master key rotated:
        /// every sealed value re-sealed in the database, the chain re-keyed and verifying, the tokens unchanged.
        @Test func keySlotsAddUseRemoveAndRotate() async throws {
            try await Self.with { s, server, database in
                try await s.expectOK(["init", "--kdf", "interactive"])
                try await s.addIntegration()
                let pairs = try await s.importAccounts(["alice"])
                let bob = OAuthBinaryTests.KeySlots.bob
                let asBob: [String: String?] = ["TOKENVAULT_PASSPHRASE": bob]
                let added = try await OAuthBinaryTests.KeySlots.addBob(s)
                #expect(added.code == 0, "\(added.err)")
                #expect(
                    try server.psql(database, "SELECT string_agg(name, ',' ORDER BY name) FROM key_slot") == "bob,main")
                let byBob = try await s.run(["token", "alice"], environment: asBob)
                #expect(byBob.code == 0 && byBob.out == pairs["alice"]!.access + "\n", "\(byBob.err)")

                let removed = try await s.run(["keys", "remove", "bob"])
                #expect(removed.code == 0, "\(removed.err)")
                #expect(try await s.run(["token", "alice"], environment: asBob).code == 3)
                #expect(try server.psql(database, "SELECT count(*) FROM key_slot") == "1")

                let sealed =
                    "SELECT encode(access_token_sealed, 'hex') || encode(refresh_token_sealed, 'hex') FROM account UNION ALL SELECT encode(client_secret_sealed, 'hex') FROM integration UNION ALL SELECT encode(mac, 'hex') FROM audit_entry"
                let before = Set(try server.psql(database, sealed).split(separator: "\n"))
                let rotated = try await s.run(["keys", "rotate"])
                #expect(rotated.code == 0, "\(rotated.err)")
                let after = Set(try server.psql(database, sealed).split(separator: "\n"))
                #expect(before.intersection(after).isEmpty, "sealed values or MACs left under the old key")
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.out)\(verify.err)")
                #expect(try await s.token("alice") == pairs["alice"]!.access)
                #expect(try await s.run(["refresh", "alice"]).code == 0)
                s.expectNoSecrets(added.err + removed.err + rotated.out + rotated.err, also: [bob])
            }
        }

        /// The README's team set-up, as a database administrator would run it: an owner role that creates the vault
        /// and a host role with row privileges only, which may append to the audit log but not rewrite it. A host
        /// uses the vault fully (list, token, refresh, revoke, audit --verify); `keys rotate` (which re-keys the
        /// log) works only as the owner.
        @Test func aHostRoleWithTheREADMEsGrantsUsesTheVaultButCannotRewriteTheLog() async throws {
            try await Self.with { s, server, _ in
                let tag = String(UUID().uuidString.prefix(8)).lowercased()
                let owner = "tv_owner_\(tag)"
                let host = "tv_host_\(tag)"
                let database = "team_\(tag)"
                try server.psql("postgres", "CREATE ROLE \(owner) LOGIN; CREATE ROLE \(host) LOGIN")
                try server.psql("postgres", "CREATE DATABASE \(database) OWNER \(owner)")
                try server.psql(
                    database,
                    "REVOKE ALL ON SCHEMA public FROM PUBLIC; GRANT ALL ON SCHEMA public TO \(owner); GRANT USAGE ON SCHEMA public TO \(host)"
                )
                let base = server.location(database: database)
                let asOwner: [String: String?] = ["TOKENVAULT_VAULT": base + "&user=\(owner)"]
                let asHost: [String: String?] = ["TOKENVAULT_VAULT": base + "&user=\(host)"]
                #expect(try await s.run(["init", "--kdf", "interactive"], environment: asOwner).code == 0)
                let added = try await s.run(
                    [
                        "add", "webex", "--client-id", s.clientId, "--redirect-uri", s.redirect,
                        "--scopes", SandboxWorkspace.scopes.joined(separator: " "), "--api-base", s.base.absoluteString,
                        "--client-secret-stdin",
                    ], stdin: s.clientSecret, environment: asOwner)
                #expect(added.code == 0, "\(added.err)")
                // Before the grants the host sees nothing.
                let denied = try await s.run(["list"], environment: asHost)
                #expect(denied.code != 0 && denied.err.contains("permission denied"), "\(denied.err)")
                try server.psql(
                    database,
                    """
                    GRANT SELECT, INSERT, UPDATE, DELETE ON vault_meta, integration, account, key_slot, notification TO \(host);
                    GRANT SELECT, INSERT ON audit_entry TO \(host);
                    GRANT SELECT ON tokenvault_migrations TO \(host)
                    """)
                for name in ["alice", "bob"] {
                    let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: s.user.id)
                    let imported = try await s.run(
                        ["import", name, "--integration", "webex"],
                        stdin: tokenJSON(access: pair.accessToken, refresh: pair.refreshToken), environment: asHost)
                    #expect(imported.code == 0, "\(imported.err)")
                }
                for arguments in [
                    ["list"], ["token", "alice"], ["refresh", "alice"], ["refresh-all", "--skip-recent", "0"],
                    ["revoke", "bob", "--local"], ["audit", "--verify"],
                ] {
                    let result = try await s.run(arguments, environment: asHost)
                    #expect(result.code == 0, "\(arguments) as the host role: \(result.err)")
                }
                let rotateAsHost = try await s.run(["keys", "rotate"], environment: asHost)
                #expect(
                    rotateAsHost.code == 1 && rotateAsHost.err.contains("permission denied for table audit_entry"),
                    "\(rotateAsHost.err)")
                // ... and says who runs it (it said "database error" and nothing else).
                #expect(
                    rotateAsHost.err.contains("tokenvault: hint: this location's role may not do that")
                        && rotateAsHost.err.contains("run as the vault's owner role"),
                    "\(rotateAsHost.err)")
                #expect(
                    try await s.run(["token", "alice"], environment: asHost).code == 0,
                    "a refused rotate changes nothing")
                let rotateAsOwner = try await s.run(["keys", "rotate"], environment: asOwner)
                #expect(rotateAsOwner.code == 0, "\(rotateAsOwner.err)")
                #expect(try await s.run(["audit", "--verify"], environment: asHost).code == 0)
                #expect(try await s.run(["token", "alice"], environment: asHost).code == 0)
            }
        }

        func merged(_ a: [String: String?], _ b: [String: String?]) -> [String: String?] { a.merging(b) { $1 } }

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
                #expect(
                    version.code == 0 && onSQLite.code == 0 && onPostgreSQL.code == 0, "\(onPostgreSQL.err.suffix(500))"
                )
                #expect(!version.err.contains("libpq"))
                #expect(!onSQLite.err.contains("libpq"))
                #expect(onPostgreSQL.err.contains("libpq.so.5"))
            }
        }
    }
}
