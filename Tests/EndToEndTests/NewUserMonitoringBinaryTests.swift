import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

/// What a new user met following the README (monitoring figures, `revoke` of one person's second account,
/// where an integration's secret goes, `refresh-all` for some accounts only), through the built binary.
extension OAuthBinaryTests {
    @Suite struct NewUserMonitoringAndSelection {
        // MARK: list --format prometheus

        /// Every metric against what its HELP line claims, on the figures `list --json` and `audit --json` give;
        /// `tokenvault_last_stored_seconds` in particular must not move when refresh-all only marks an account
        /// needs-reauth. The binary reads the wall clock, so the pair's age is made by waiting 3 s.
        static func checkPrometheus(_ s: SandboxWorkspace) async throws {
            let pairs = try await s.importAccounts(["frank", "gina"])
            try await Task.sleep(for: .seconds(3))
            try await s.sandbox.revokeRefreshToken(pairs["frank"]!.refresh)
            let run = try await s.run(["refresh-all", "--skip-recent", "0"])
            #expect(run.code == 5, "\(run.err)")
            let prom = try await s.run(["list", "--format", "prometheus"])
            #expect(prom.code == 0, "\(prom.err)")
            let listed = try await s.listed()
            #expect(listed["frank"]?["state"] as? String == "needs-reauth")

            // name -> account -> value, and the HELP line of each name.
            var samples: [String: [String: Int]] = [:]
            var states: [String: [String]] = [:]
            var help: [String: String] = [:]
            for line in prom.out.split(separator: "\n").map(String.init) {
                if line.hasPrefix("# HELP ") {
                    let rest = line.dropFirst("# HELP ".count)
                    help[String(rest.prefix { $0 != " " })] = String(rest.drop { $0 != " " }.dropFirst())
                    continue
                }
                if line.hasPrefix("#") { continue }
                let name = String(line.prefix { $0 != "{" })
                let labels = line.drop { $0 != "{" }.prefix { $0 != "}" }
                guard
                    let account = labels.range(of: #"account=""#).map({
                        String(labels[$0.upperBound...].prefix { $0 != "\"" })
                    }),
                    let value = Int(line.split(separator: " ").last ?? "")
                else {
                    Issue.record("a line that is not a sample: \(line)")
                    continue
                }
                if name == "tokenvault_account_state" {
                    if let r = labels.range(of: #"state=""#) {
                        states[account, default: []].append(String(labels[r.upperBound...].prefix { $0 != "\"" }))
                    }
                    #expect(value == 1, "\(line)")
                } else {
                    samples[name, default: [:]][account] = value
                }
            }
            #expect(
                Set(help.keys) == [
                    "tokenvault_access_token_expiry_seconds", "tokenvault_refresh_token_expiry_seconds",
                    "tokenvault_last_stored_seconds", "tokenvault_account_state",
                ], "\(prom.out)")
            for account in ["frank", "gina"] {
                let row = listed[account] ?? [:]
                // "Seconds until the account's access token lapses": list --json's figure, a second or two apart.
                let access = row["access_expires_in_seconds"] as? Int
                #expect(
                    access != nil
                        && abs((samples["tokenvault_access_token_expiry_seconds"]?[account] ?? .min / 2) - access!)
                            <= 2,
                    "\(account): \(prom.out)")
                let refresh = row["refresh_expires_in_seconds"] as? Int
                #expect(
                    refresh != nil
                        && abs((samples["tokenvault_refresh_token_expiry_seconds"]?[account] ?? .min / 2) - refresh!)
                            <= 2,
                    "\(account): \(prom.out)")
                // "The account's state (1 for the state it is in)": exactly one, list's.
                #expect(states[account] == [row["state"] as? String ?? "?"], "\(account): \(prom.out)")
                // "Seconds since the account's token pair was last stored": its newest entry that stored a pair.
                let stored = try await s.auditEvents(account).filter {
                    ["imported", "authorized", "refreshed"].contains($0["event"] as? String ?? "")
                }
                let at = (stored.last?["at"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
                let age = at.map { Int(Date().timeIntervalSince($0).rounded()) }
                let shown = samples["tokenvault_last_stored_seconds"]?[account]
                #expect(
                    age != nil && shown != nil && abs(shown! - age!) <= 2,
                    "\(account): shown \(String(describing: shown)), stored \(String(describing: age)) s ago")
            }
            // frank's pair is the imported one, 3 s old, though refresh-all just marked his row.
            #expect((samples["tokenvault_last_stored_seconds"]?["frank"] ?? 0) >= 2, "\(prom.out)")
            #expect((samples["tokenvault_last_stored_seconds"]?["gina"] ?? 99) <= 1, "\(prom.out)")
            s.expectNoSecrets(prom.out, also: [pairs["frank"]!.access, pairs["gina"]!.refresh])

            // The exposition format itself, checked by Prometheus's own tool.
            guard
                let promtool = requireTool(
                    MachineTools.find("promtool"), "promtool (Debian package prometheus; make deps installs it)")
            else { return }
            let checked = try runProcess(
                promtool, ["check", "metrics"], environment: ["PATH": "/usr/bin:/bin"], stdin: prom.out)
            #expect(checked.code == 0, "promtool: \(checked.out)\(checked.err)")
        }

        @Test func prometheusMetricsMeanWhatTheirHelpSays() async throws {
            try await SandboxWorkspace.with { s in try await Self.checkPrometheus(s) }
        }

        @Test func prometheusMetricsMeanWhatTheirHelpSaysOnPostgreSQL() async throws {
            try await VaultBinaryTests.PostgreSQL.with { s, _, _ in
                try await s.expectOK(["init", "--kdf", "interactive"])
                try await s.addIntegration()
                try await Self.checkPrometheus(s)
            }
        }

        // MARK: revoke, Webex: the person's other accounts on the integration

        @Test func revokeNamesAndMarksTheSamePersonsOtherAccounts() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["r1", "r2", "r3"])
                // whoami records who r1 and r2 are (the same sandbox person); r3's person stays unknown.
                try await s.expectOK(["whoami", "r1"])
                try await s.expectOK(["whoami", "r2"])
                let revoked = try await s.run(["revoke", "r1"])
                #expect(revoked.code == 0, "\(revoked.err)")
                #expect(revoked.err.contains("Revoked the tokens of 'r1'"), "\(revoked.err)")
                #expect(
                    revoked.err.contains("those of 'r2' are revoked too, and marked needs-reauth"), "\(revoked.err)")
                #expect(
                    revoked.err.contains("warning: 'r3' of integration 'webex' may have lost their tokens too"),
                    "\(revoked.err)")
                s.expectNoSecrets(revoked.err, also: [pairs["r1"]!.access, pairs["r2"]!.access])
                // Webex did revoke r2's tokens; tokenvault says so now rather than at the next refresh.
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["r2"]!.refresh) == 0)
                let rows = try await s.listed()
                #expect(rows["r1"] == nil)
                #expect(rows["r2"]?["state"] as? String == "needs-reauth", "\(rows)")
                #expect(rows["r3"]?["state"] as? String == "ok", "\(rows)")
                let r2 = try await s.auditEvents("r2")
                #expect(r2.last?["event"] as? String == "revoked", "\(r2)")
                #expect((r2.last?["outcome"] as? String)?.contains("needs re-authorization") == true, "\(r2)")
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.out)\(verify.err)")
                let check = try await s.run(["check", "r2"])
                #expect(check.code == 5 && check.out.hasPrefix("r2 (webex): needs-reauth"), "\(check.out)\(check.err)")
            }
        }

        // MARK: integrations: where the secret and the tokens go

        @Test func integrationsShowEveryEndpointOfEachPreset() throws {
            let ws = Workspace()
            try ws.expectOK(["init", "--kdf", "interactive"])
            let secret = "cs-" + generatedToken()
            let expected: [(provider: String, extra: [String], endpoints: [String: String])] = [
                (
                    "google", [],
                    [
                        "authorize": "https://accounts.google.com/o/oauth2/v2/auth",
                        "token": "https://oauth2.googleapis.com/token",
                        "revocation": "https://oauth2.googleapis.com/revoke",
                        "userinfo": "https://openidconnect.googleapis.com/v1/userinfo",
                    ]
                ),
                (
                    "github", [],
                    [
                        "authorize": "https://github.com/login/oauth/authorize",
                        "token": "https://github.com/login/oauth/access_token",
                        "userinfo": "https://api.github.com/user",
                    ]
                ),
                (
                    "slack", ["--scopes", "channels:read"],
                    [
                        "token": "https://slack.com/api/oauth.v2.access",
                        "revocation": "https://slack.com/api/auth.revoke",
                    ]
                ),
                (
                    "microsoft", ["--tenant", "contoso.example"],
                    [
                        "token": "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token",
                        "userinfo": "https://graph.microsoft.com/oidc/userinfo",
                    ]
                ),
            ]
            for (provider, extra, endpoints) in expected {
                let added = try ws.tokenvault(
                    [
                        "add", "my-\(provider)", "--provider", provider, "--client-id", "client-\(provider)",
                        "--redirect-uri", "http://127.0.0.1:8765/callback", "--client-secret-stdin",
                    ] + extra, stdin: secret)
                #expect(added.code == 0, "\(added.err)")
                // add says where the secret and the tokens will go.
                #expect(
                    added.err.contains(
                        "client secret, authorization codes and refresh tokens will be sent to \(endpoints["token"]!)"),
                    "\(added.err)")
                #expect(!added.err.contains(secret) && !added.out.contains(secret))
            }
            let listed = try ws.tokenvault(["integrations", "--json"], environment: ["TOKENVAULT_PASSPHRASE": nil])
            #expect(listed.code == 0, "\(listed.err)")
            let objects = Dictionary(
                uniqueKeysWithValues: jsonObjects(listed.out).map { ($0["name"] as? String ?? "?", $0) })
            for (provider, _, endpoints) in expected {
                let shown = objects["my-\(provider)"]?["endpoints"] as? [String: Any] ?? [:]
                for (key, url) in endpoints { #expect(shown[key] as? String == url, "\(provider) \(key): \(shown)") }
                #expect(shown["authorize"] is String && shown["token"] is String, "\(provider): \(shown)")
            }
            // Microsoft has no revocation endpoint: null, not a made-up URL.
            #expect((objects["my-microsoft"]?["endpoints"] as? [String: Any])?["revocation"] is NSNull)
            // The table names the token endpoint; the detail view every one.
            let table = try ws.tokenvault(["integration", "list"], environment: ["TOKENVAULT_PASSPHRASE": nil])
            #expect(
                table.out.contains("TOKEN ENDPOINT") && table.out.contains("https://oauth2.googleapis.com/token"),
                "\(table.out)")
            let detail = try ws.tokenvault(
                ["integration", "show", "my-google"], environment: ["TOKENVAULT_PASSPHRASE": nil])
            #expect(detail.code == 0, "\(detail.err)")
            for line in ["authorize:", "token:", "revocation:", "userinfo:"] {
                #expect(detail.out.split(separator: "\n").contains { $0.hasPrefix(line) }, "\(detail.out)")
            }
            #expect(
                detail.out.contains("https://oauth2.googleapis.com/token (receives the client secret"), "\(detail.out)")
            #expect(!(listed.out + table.out + detail.out).contains(secret))
        }

        // MARK: refresh-all, check and list for some accounts only

        @Test func refreshAllCheckAndListTakeIntegrationsAndAccountNames() async throws {
            // A second integration, `other`, with a client of its own on the same sandbox.
            let otherClient = "C" + String(generatedToken().prefix(24))
            let otherSecret = "cs-" + generatedToken()
            let otherRedirect = "http://127.0.0.1:\(freePort())/callback"
            try await SandboxWorkspace.with(configure: {
                $0.clients.append(
                    .init(
                        clientId: otherClient, clientSecret: otherSecret, redirectURIs: [otherRedirect],
                        scopes: SandboxWorkspace.scopes))
            }) { s in
                try await s.expectOK(
                    [
                        "add", "other", "--client-id", otherClient, "--redirect-uri", otherRedirect,
                        "--scopes", SandboxWorkspace.scopes.joined(separator: " "), "--api-base", s.base.absoluteString,
                        "--client-secret-stdin",
                    ], stdin: otherSecret)
                let pairs = try await s.importAccounts(["a1", "a2"])
                let other = try await s.sandbox.issueTokenPair(clientId: otherClient, userId: s.user.id)
                try await s.expectOK(
                    ["import", "b1", "--integration", "other"],
                    stdin: tokenJSON(access: other.accessToken, refresh: other.refreshToken))

                func refreshed(_ arguments: [String]) async throws -> [String] {
                    let result = try await s.run(["refresh-all", "--json", "--skip-recent", "0"] + arguments)
                    #expect(result.code == 0, "\(arguments): \(result.err)")
                    return (jsonObject(result.out)["accounts"] as? [[String: Any]] ?? []).compactMap {
                        $0["account"] as? String
                    }.sorted()
                }
                #expect(try await refreshed(["--integration", "other"]) == ["b1"])
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["a1"]!.refresh) == 0)
                #expect(try await refreshed(["a2"]) == ["a2"])
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["a1"]!.refresh) == 0)
                #expect(try await refreshed(["a1", "--integration", "other"]) == ["a1", "b1"])
                #expect(
                    try await refreshed(["--integration", "webex", "--integration", "other"]) == ["a1", "a2", "b1"])

                // A name the vault does not have is an error (exit 4), never an empty run that succeeds.
                let ghost = try await s.run(["refresh-all", "ghost"])
                #expect(ghost.code == 4 && ghost.err.contains("no account named 'ghost'"), "\(ghost.err)")
                let nope = try await s.run(["refresh-all", "--integration", "nope"])
                #expect(nope.code == 4 && nope.err.contains("no integration named 'nope'"), "\(nope.err)")

                // list and check take the same selection.
                let listed = jsonObjects(try await s.run(["list", "--json", "--integration", "other"]).out)
                #expect(listed.compactMap { $0["account"] as? String } == ["b1"])
                let some = jsonObjects(try await s.run(["status", "--json", "a2", "b1"]).out)
                #expect(some.compactMap { $0["account"] as? String }.sorted() == ["a2", "b1"])
                // b1's client loses its authorization: b1 needs a person, a1 and a2 do not.
                await s.sandbox.revokeAuthorizations(clientId: otherClient, userId: s.user.id)
                #expect(try await s.run(["refresh", "b1"]).code == 5)
                #expect(try await s.run(["check", "--integration", "webex"]).code == 0)
                #expect(try await s.run(["check", "a1", "a2"]).code == 0)
                let checkB = try await s.run(["check", "--integration", "other"])
                #expect(checkB.code == 5 && checkB.out.hasPrefix("b1 (other): needs-reauth"), "\(checkB.out)")
                #expect(try await s.run(["check", "ghost"]).code == 4)
                // --notify tells b1 once; a check of other accounts does not make it forget that it told.
                let log = s.ws.dir + "/notified.log"
                let command = #"printf '%s %s\n' "$TOKENVAULT_ACCOUNT" "$TOKENVAULT_EVENT" >> "# + log
                _ = try await s.run(["check", "--notify", command, "--integration", "other"])
                _ = try await s.run(["check", "--notify", command, "--integration", "webex"])
                _ = try await s.run(["check", "--notify", command])
                #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "") == "b1 needs-reauth\n")
            }
        }
    }
}
