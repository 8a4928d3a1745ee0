import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

/// The non-Webex shapes, each reached by its preset (the OIDC shape by the generic preset through discovery).
let providerShapes: [ProviderShape] = [.google, .microsoft, .github, .slack, .oidc]

extension ProviderShape {
    /// The scopes `add` stores when given none (Slack has no default: the tests pass the registered ones).
    var defaultScopes: [String] {
        switch self {
        case .webex: []
        case .google: ["openid", "email", "profile"]
        case .microsoft: ["offline_access", "openid", "profile", "email", "User.Read"]
        case .github: []
        case .slack: ["users:read", "chat:write"]
        case .oidc: ["openid"]
        }
    }

    /// Whether a refresh, with the shape's own rotation, hands out a new refresh token.
    var rotatesByDefault: Bool { [.microsoft, .github, .slack].contains(self) }

    /// The request `revoke` makes, nil where the preset revokes locally only.
    var revokeRoute: String? {
        switch self {
        case .webex: "DELETE /v1/authorizations"
        case .google, .oidc: "POST /revoke"
        case .microsoft: nil
        case .github: "DELETE /applications/{client_id}/token"
        case .slack: "POST /api/auth.revoke"
        }
    }

    /// `whoami --json` for an account `person` authorized, as the preset maps the provider's identity answer
    /// (userinfo, GitHub's /user, Slack's auth.test).
    func identity(of person: SandboxConfiguration.User, account: String) -> [String: String] {
        let login = String(person.email.prefix { $0 != "@" })
        var shown = ["account": account]
        switch self {
        case .webex, .google:
            shown.merge([
                "id": person.id, "email": person.email, "display_name": person.displayName, "org_id": person.orgId,
            ]) { $1 }
        case .microsoft, .oidc:
            shown.merge(["id": person.id, "email": person.email, "display_name": person.displayName]) { $1 }
        case .github:
            // GitHub's numeric id (the sandbox takes the digits of the person's id).
            shown.merge([
                "id": String(person.id.filter(\.isNumber)), "email": person.email, "display_name": person.displayName,
            ]) { $1 }
        case .slack:
            shown.merge(["id": person.id, "display_name": login, "org_id": person.orgId]) { $1 }
        }
        return shown
    }

    /// How `authorize` names the person: the email (Slack gives none: the id) and the display name.
    func authorizedAs(_ person: SandboxConfiguration.User) -> String {
        self == .slack
            ? "\(person.id) (\(person.email.prefix { $0 != "@" }))" : "\(person.email) (\(person.displayName))"
    }
}

extension OAuthBinaryTests {
    /// Every preset from the built binary against the sandbox shape of its provider, offline: `add` with the
    /// preset's defaults, `authorize` in the browser and by device grant, identity, `token`/`env`/`exec`, refreshing
    /// under the provider's rotation, a refused refresh token, `revoke`; and concurrent `refresh-all` runs under
    /// strict rotation.
    @Suite(
        .enabled(
            if: python3 != nil || MachineTools.isCI,
            "python3 plays the browser and edits the vault (under CI=true its absence fails each test)"))
    struct Providers {
        @Test(arguments: providerShapes)
        func theWholeLifeOfAnAccount(shape: ProviderShape) async throws {
            // Real time in the sandbox: the device grant's polls really wait (one second apart).
            try await SandboxWorkspace.withProvider(
                shape, clockFollowsRealTime: true, configure: { $0.devicePollInterval = 1 }
            ) { s in
                let origin = s.base.absoluteString
                var outputs = ""

                // 1. add, with the preset's defaults.
                let integration = try await s.integrationShown()
                #expect(integration["name"] as? String == shape.integration)
                #expect(integration["provider"] as? String == shape.integration)
                #expect(integration["scopes"] as? [String] == shape.defaultScopes)
                #expect(integration["env_var"] as? String == shape.environmentVariable)
                #expect(integration["client_id"] as? String == s.clientId)
                #expect(integration["redirect_uri"] as? String == s.redirect)
                if shape == .oidc {
                    #expect(
                        integration["provider_options"] as? [String: String] == [
                            "issuer": origin, "authorize_url": origin + "/authorize", "token_url": origin + "/token",
                            "device_url": origin + "/device_authorization", "revoke_url": origin + "/revoke",
                            "userinfo_url": origin + "/userinfo", "client_auth": "basic",
                        ])
                } else {
                    #expect(integration["api_base"] as? String == origin)
                }

                // 2. authorize in the browser (alice) and by device grant (bob, another person).
                let alice = try await s.authorize("alice")
                outputs += alice.err + alice.out
                #expect(alice.code == 0, "\(alice.err)\nbrowser: \(s.ws.browserLog)")
                #expect(alice.err.contains("Authorized 'alice' as \(shape.authorizedAs(.sample)):"), "\(alice.err)")
                #expect(s.ws.browserLog.contains("follow callback 200"), "\(s.ws.browserLog)")
                #expect(await s.sandbox.counters.codesRedeemed == 1)
                if shape.hasDeviceGrant {
                    let (bob, shown) = try await s.authorizeByDevice("bob", as: .second)
                    outputs += bob.err + bob.out
                    #expect(bob.code == 0, "\(bob.err)\nbrowser: \(s.ws.browserLog)")
                    #expect(shown == origin + "/sandbox/device/verify")
                    #expect(bob.err.contains("Authorized 'bob' as \(shape.authorizedAs(.second)):"), "\(bob.err)")
                    #expect(try await s.auditEvents("bob").last?["trigger"] as? String == "authorize --device")
                } else {
                    let refused = try await s.run(["authorize", "bob", "--device", "--timeout", "10"])
                    #expect(refused.code == 6, "\(refused.err)")
                    #expect(
                        refused.err.contains(
                            "tokenvault: error: Slack does not support the device grant; authorize in a browser instead"
                        ), "\(refused.err)")
                    await s.sandbox.updateConfiguration { $0.currentUserId = SandboxConfiguration.User.second.id }
                    let bob = try await s.authorize("bob")
                    await s.sandbox.updateConfiguration { $0.currentUserId = nil }
                    #expect(bob.code == 0, "\(bob.err)")
                }
                #expect(try await s.whoami("alice") == shape.identity(of: .sample, account: "alice"))
                #expect(try await s.whoami("bob") == shape.identity(of: .second, account: "bob"))
                let rows = try await s.listed()
                #expect(Set(rows.keys) == ["alice", "bob"])
                for name in ["alice", "bob"] {
                    #expect(rows[name]?["provider"] as? String == shape.integration)
                    #expect(rows[name]?["integration"] as? String == shape.integration)
                    // Every shape's access tokens live hours, not days: "expiring" (README: lapses within a day).
                    #expect(rows[name]?["state"] as? String == "expiring")
                }
                let table = try await s.run(["list"])
                let header = table.out.split(separator: "\n").first.map(String.init) ?? ""
                #expect(header.split(separator: " ").contains("PROVIDER"), "\(table.out)")
                let aliceLine = table.out.split(separator: "\n").first { $0.hasPrefix("alice ") }.map(String.init) ?? ""
                #expect(
                    aliceLine.split(separator: " ").prefix(3) == [
                        "alice", Substring(shape.integration), Substring(shape.integration),
                    ], "\(table.out)")

                // 3. token, env, exec; refresh under the provider's rotation.
                let first = try #require(try await s.token("alice"))
                #expect(await s.sandbox.isAccessTokenValid(first))
                let env = try await s.run(["env", "alice"])
                #expect(env.code == 0, "\(env.err)")
                #expect(env.out == "export \(shape.environmentVariable)='\(first)'\n")
                let exec = try await s.run([
                    "exec", "alice", "--", "/bin/sh", "-c", "printf %s \"$\(shape.environmentVariable)\"",
                ])
                #expect(exec.code == 0, "\(exec.err)")
                #expect(exec.out == first)

                let refreshed = try await s.run(["refresh", "alice"])
                outputs += refreshed.err
                #expect(refreshed.code == 0, "\(refreshed.err)")
                #expect(
                    refreshed.err.contains(shape.rotatesByDefault ? "(new refresh token)" : "(same refresh token)"),
                    "\(refreshed.err)")
                let second = try #require(try await s.token("alice"))
                #expect(second != first)
                #expect(await s.sandbox.isAccessTokenValid(second))
                // GitHub's strict rotation kills the access token issued with the refresh token it replaces.
                #expect(await s.sandbox.isAccessTokenValid(first) == (shape != .github))
                let again = try await s.run(["refresh", "alice"])
                #expect(again.code == 0, "\(again.err)")
                // The second refresh sent what the first stored: under strict rotation the old refresh token would
                // have been refused, under Microsoft's lenient one it would count as a reuse.
                var counters = await s.sandbox.counters
                #expect(counters.refreshGrants == 2)
                #expect(counters.successfulRefreshes == 2)
                #expect(counters.rotatedRefreshTokenReuses == 0)
                let changed = try await s.auditEvents("alice").filter { $0["event"] as? String == "refreshed" }.map {
                    $0["refresh_token_changed"] as? Bool
                }
                #expect(changed == [shape.rotatesByDefault, shape.rotatesByDefault])

                // 5. The provider refuses alice's refresh token (the person revoked the app): exit 5, needs-reauth;
                // authorizing again mends it. bob (another person) is untouched.
                await s.sandbox.revokeAuthorizations(clientId: s.clientId, userId: SandboxConfiguration.User.sample.id)
                let refused = try await s.run(["refresh", "alice"])
                outputs += refused.err
                #expect(refused.code == 5, "\(refused.err)")
                #expect(refused.err.contains("tokenvault authorize alice"), "\(refused.err)")
                counters = await s.sandbox.counters
                #expect(counters.refreshGrants == 3)
                #expect(counters.successfulRefreshes == 2)
                var states = try await s.listed().mapValues { $0["state"] as? String }
                #expect(states == ["alice": "needs-reauth", "bob": "expiring"])
                // A later run reports alice again without sending her refresh token; bob's is refreshed.
                let all = try await s.run(["refresh-all", "--json", "--skip-recent", "0"])
                #expect(all.code == 5, "\(all.err)")
                let report = jsonObject(all.out)
                #expect(report["needs_reauth"] as? Int == 1)
                #expect(report["refreshed"] as? Int == 1)
                #expect(await s.sandbox.counters.refreshGrants == 4)
                let mended = try await s.authorize("alice")
                outputs += mended.err
                #expect(mended.code == 0, "\(mended.err)")
                states = try await s.listed().mapValues { $0["state"] as? String }
                #expect(states == ["alice": "expiring", "bob": "expiring"])
                let third = try #require(try await s.token("alice"))
                #expect(await s.sandbox.isAccessTokenValid(third))
                let refreshedAgain = try await s.run(["refresh", "alice"])
                #expect(refreshedAgain.code == 0, "\(refreshedAgain.err)")

                // 6. revoke.
                let aliceToken = try #require(try await s.token("alice"))
                let bobToken = try #require(try await s.token("bob"))
                let revoked = try await s.run(["revoke", "alice"])
                outputs += revoked.err + revoked.out
                #expect(revoked.code == 0, "\(revoked.err)")
                if let route = shape.revokeRoute {
                    #expect(
                        revoked.err.contains(
                            "Revoked the tokens of 'alice' at the provider and removed the pair from the vault."),
                        "\(revoked.err)")
                    #expect(await s.sandbox.requests(to: route) == 1)
                    #expect(await s.sandbox.isAccessTokenValid(aliceToken) == false)
                    #expect(
                        try await s.auditEvents("alice").last?["outcome"] as? String
                            == "revoked at \(shape.integration) and removed locally")
                } else {
                    #expect(revoked.err.contains("Removed the token pair of 'alice' from the vault."), "\(revoked.err)")
                    #expect(
                        revoked.err.contains(
                            "tokenvault: warning: not revoked at the provider (Microsoft has no revocation endpoint: sign the account out of its sessions at https://myaccount.microsoft.com"
                        ), "\(revoked.err)")
                    #expect(
                        revoked.err.contains(
                            "tokenvault: hint: to revoke at Microsoft, remove the app's consent at https://myapplications.microsoft.com"
                        ), "\(revoked.err)")
                    #expect(await s.sandbox.isAccessTokenValid(aliceToken))
                    #expect(await s.sandbox.requests(to: "POST /v1.0/me/revokeSignInSessions") == 0)
                }
                #expect(await s.sandbox.isAccessTokenValid(bobToken))
                #expect(try await s.run(["token", "alice"]).code == 4)
                #expect(try await s.listed().keys.sorted() == ["bob"])
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.err)")
                s.expectNoSecrets(outputs, also: [first, second, third])
            }
        }

        /// Two `refresh-all` runs and a `refresh` at once over 20 accounts, the provider rotating strictly. The
        /// sandbox holds every request until the first run has 8 in flight (8 accounts locked), the `refresh` of
        /// another account has sent its request, and the second run has tried the locks the others hold (leaving
        /// those accounts for later) and has 8 requests of its own in flight for accounts no one held; then they all
        /// race. Each account is refreshed once, no refresh token is sent twice, the audit chain holds, and every new
        /// refresh token was stored (the next run refreshes every account with it).
        @Test(arguments: providerShapes)
        func concurrentRefreshesUnderStrictRotation(shape: ProviderShape) async throws {
            try await SandboxWorkspace.withProvider(shape, configure: { $0.rotation = .on }) { s in
                let names = (0..<20).map { "\(shape.integration)\($0)" }
                let pairs = try await s.importAccounts(names)
                try await s.ageStoredPairs()
                await s.sandbox.closeGate()
                let first = try s.start(["refresh-all", "--json"])
                try await waitUntil("the first run has 8 requests in flight") { await s.sandbox.requestsInFlight == 8 }
                // The accounts the first run holds, by their lock files (named after the account's id).
                let held = try s.lockFileChanges()
                #expect(held.count == 8)
                var nameOfId: [String: String] = [:]
                for row in try await s.sql("SELECT id, name FROM account").split(separator: "\n") {
                    let fields = row.split(separator: "|").map(String.init)
                    if fields.count == 2 { nameOfId[fields[0]] = fields[1] }
                }
                let heldNames = Set(held.keys.compactMap { nameOfId[$0] })
                #expect(heldNames.count == 8)
                let loner = try #require(names.last { !heldNames.contains($0) })
                let third = try s.start(["refresh", loner])
                try await waitUntil("the refresh has sent its request") { await s.sandbox.requestsInFlight == 9 }
                let second = try s.start(["refresh-all", "--json"])
                // The second run touches (opens and fchmods) a lock file the first holds when it tries it.
                try await waitUntil("the second run tried a lock the first holds and sent 8 requests of its own") {
                    let touched = try s.lockFileChanges().contains { id, changed in
                        held[id].map { $0 != changed } ?? false
                    }
                    let inFlight = await s.sandbox.requestsInFlight
                    return touched && inFlight == 17
                }
                await s.sandbox.openGate()
                var results: [BackgroundProcess.Result] = []
                for run in [first, second, third] { results.append(try await offPool { try run.wait(timeout: 120) }) }
                for result in results { #expect(result.code == 0, "\(result.err)") }
                #expect(results[2].err.contains("Refreshed '\(loner)'"), "\(results[2].err)")
                let reports = results.prefix(2).map { jsonObject($0.out) }
                for report in reports {
                    #expect((report["refreshed"] as? Int ?? -100) + (report["fresh"] as? Int ?? -100) == 20)
                }
                #expect(reports.map { $0["refreshed"] as? Int ?? -100 }.reduce(0, +) == 19)
                #expect(await s.refreshTokensNotUsedOnce(pairs) == [])
                var counters = await s.sandbox.counters
                #expect(counters.successfulRefreshes == 20)
                #expect(counters.rotatedRefreshTokenReuses == 0)
                let verify = try await s.run(["audit", "--verify"])
                #expect(verify.code == 0, "\(verify.err)")

                let next = try await s.run(["refresh-all", "--json", "--skip-recent", "0"])
                #expect(next.code == 0, "\(next.err)")
                #expect(jsonObject(next.out)["refreshed"] as? Int == 20)
                var chains: [String: [Int]] = [:]
                for (name, pair) in pairs {
                    chains[name] = await s.sandbox.rotationChain(from: pair.refresh).map(\.uses)
                }
                #expect(chains.filter { $0.value != [1, 1, 0] } == [:])
                counters = await s.sandbox.counters
                #expect(counters.successfulRefreshes == 40)
                #expect(counters.rotatedRefreshTokenReuses == 0)
                s.expectNoSecrets(results.map { $0.err + $0.out }.joined() + next.err + next.out)
                print(
                    "\(shape): refreshed \(reports.map { $0["refreshed"] ?? "?" }) by the two runs and 1 by refresh, peak \(counters.peakConcurrentRequests) requests at once"
                )
            }
        }
        /// A command that ends while `refresh-all` is working (here `list`) must not take the run's commits with it.
        /// Regression test: refresh-all opened the vault twice and the second open closed a descriptor of the file,
        /// which dropped the process's SQLite locks; `list` closing its connection then deleted the -wal file, and
        /// the run's later commits went to the deleted file: a second run re-read the old pairs and sent the rotated
        /// refresh tokens again (all 20 accounts needs-reauth), and the first run's 20 refreshes were lost.
        @Test func aCommandEndingDuringARefreshAllLosesNoneOfItsCommits() async throws {
            try await SandboxWorkspace.withProvider(.github) { s in
                let names = (0..<20).map { "gh\($0)" }
                let pairs = try await s.importAccounts(names)
                try await s.ageStoredPairs()
                await s.sandbox.closeGate()
                let first = try s.start(["refresh-all", "--json"])
                try await waitUntil("the first run has 8 requests in flight") { await s.sandbox.requestsInFlight == 8 }
                let held = try s.lockFileChanges()
                let list = try await s.run(["list"])
                #expect(list.code == 0, "\(list.err)")
                let second = try s.start(["refresh-all", "--json"])
                // It tries the locks the first run holds (leaving those accounts for later) and sends 8 requests for
                // accounts no one holds.
                try await waitUntil("the second run tried a lock the first holds and sent 8 requests of its own") {
                    let touched = try s.lockFileChanges().contains { id, changed in
                        held[id].map { $0 != changed } ?? false
                    }
                    let inFlight = await s.sandbox.requestsInFlight
                    return touched && inFlight == 16
                }
                await s.sandbox.openGate()
                let a = try await offPool { try first.wait(timeout: 120) }
                let b = try await offPool { try second.wait(timeout: 120) }
                #expect(a.code == 0, "\(a.err)")
                #expect(b.code == 0, "\(b.err)")
                let ra = jsonObject(a.out)
                let rb = jsonObject(b.out)
                // Each account refreshed by one run and found fresh by the other.
                #expect((ra["refreshed"] as? Int ?? -100) + (rb["refreshed"] as? Int ?? -100) == 20, "\(ra) \(rb)")
                #expect((ra["refreshed"] as? Int ?? -100) + (ra["fresh"] as? Int ?? -100) == 20)
                #expect((rb["refreshed"] as? Int ?? -100) + (rb["fresh"] as? Int ?? -100) == 20)
                #expect(await s.refreshTokensNotUsedOnce(pairs) == [])
                let audit = jsonObjects(try await s.run(["audit", "--json"]).out)
                #expect(audit.filter { $0["event"] as? String == "refreshed" }.count == 20)
                #expect(audit.filter { $0["event"] as? String == "refresh-failed" }.count == 0)
                #expect(Set(try await s.listed().values.compactMap { $0["state"] as? String }) == ["expiring"])
            }
        }
    }
}
