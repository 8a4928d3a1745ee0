import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// What sets one provider apart (docs/providers.md), from the built binary against its sandbox shape.
    @Suite(
        .enabled(
            if: python3 != nil || MachineTools.isCI,
            "python3 plays the browser (under CI=true its absence fails each test)"))
    struct ProviderQuirks {
        /// Google gives a refresh token only with access_type=offline, and to a person who consented before only
        /// with prompt=consent too: authorizing the same person again must still store one.
        @Test func googleReauthorizingTheSamePersonStillStoresARefreshToken() async throws {
            try await SandboxWorkspace.withProvider(.google) { s in
                let first = try await s.authorize("alice")
                #expect(first.code == 0, "\(first.err)")
                let url = try #require(
                    first.err.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                        .first { $0.hasPrefix(s.base.absoluteString + "/o/oauth2/v2/auth?") })
                let query = Dictionary(
                    uniqueKeysWithValues: (URLComponents(string: url)?.queryItems ?? []).map {
                        ($0.name, $0.value ?? "")
                    })
                #expect(query["access_type"] == "offline")
                #expect(query["prompt"] == "consent")
                let again = try await s.authorize("alice")
                #expect(again.code == 0, "\(again.err)")
                #expect(await s.sandbox.counters.codesRedeemed == 2)
                // With a refresh token the pair is "expiring" (an hour); without one it would be "no-refresh".
                #expect(try await s.listed()["alice"]?["state"] as? String == "expiring")
                let refreshed = try await s.run(["refresh", "alice"])
                #expect(refreshed.code == 0, "\(refreshed.err)")
                #expect(refreshed.err.contains("(same refresh token)"), "\(refreshed.err)")
                #expect(await s.sandbox.counters.successfulRefreshes == 1)
            }
        }

        /// `--tenant organizations` is the tenant of every request, and `--public-client` sends no secret (the
        /// sandbox client's secret is one tokenvault never saw: any secret sent, even an empty one, is refused).
        @Test func microsoftTenantAndPublicClient() async throws {
            try await SandboxWorkspace.withProvider(
                .microsoft, publicClient: true, clockFollowsRealTime: true,
                addArguments: ["--tenant", "organizations"],
                configure: { $0.devicePollInterval = 1 }
            ) { s in
                let integration = try await s.integrationShown()
                #expect(integration["provider_options"] as? [String: String] == ["tenant": "organizations"])
                let alice = try await s.authorize("alice")
                #expect(alice.code == 0, "\(alice.err)")
                let (bob, _) = try await s.authorizeByDevice("bob")
                #expect(bob.code == 0, "\(bob.err)")
                let refreshed = try await s.run(["refresh", "alice", "--verbose"])
                #expect(refreshed.code == 0, "\(refreshed.err)")
                #expect(refreshed.err.contains("(new refresh token)"), "\(refreshed.err)")
                #expect(!refreshed.err.contains("client_secret"), "\(refreshed.err)")
                #expect(!refreshed.err.localizedCaseInsensitiveContains("authorization: basic"), "\(refreshed.err)")
                let counters = await s.sandbox.counters
                let endpoints = [
                    "GET /{tenant}/oauth2/v2.0/authorize", "POST /{tenant}/oauth2/v2.0/token",
                    "POST /{tenant}/oauth2/v2.0/devicecode",
                ]
                let total = endpoints.map { counters.requestsByEndpoint[$0, default: 0] }.reduce(0, +)
                #expect(counters.requestsByEndpoint["GET /{tenant}/oauth2/v2.0/authorize"] == 1)
                #expect(counters.requestsByEndpoint["POST /{tenant}/oauth2/v2.0/devicecode"] == 1)
                #expect(counters.requestsByTenant == ["organizations": total])
                #expect(counters.successfulRefreshes == 1)
                #expect(try await s.whoami("bob") == ProviderShape.microsoft.identity(of: .sample, account: "bob"))
            }
        }

        /// A GitHub OAuth app: tokens that never expire and no refresh token. The account is `no-refresh` and
        /// `refresh-all` skips it without asking GitHub anything.
        @Test func githubOAuthAppAccountIsNoRefreshAndSkipped() async throws {
            try await SandboxWorkspace.withProvider(
                .github, addArguments: ["--scopes", "repo read:user"],
                configure: { $0.githubOAuthApp = true }
            ) { s in
                #expect(try await s.integrationShown()["scopes"] as? [String] == ["repo", "read:user"])
                let alice = try await s.authorize("alice")
                #expect(alice.code == 0, "\(alice.err)")
                #expect(try await s.listed()["alice"]?["state"] as? String == "no-refresh")
                let token = try #require(try await s.token("alice"))
                #expect(token.hasPrefix("gho_"))
                let all = try await s.run(["refresh-all", "--json", "--skip-recent", "0"])
                #expect(all.code == 0, "\(all.err)")
                #expect(all.err.contains("refresh-all: skipping 'alice': it has no refresh token"), "\(all.err)")
                let report = jsonObject(all.out)
                #expect(report["skipped"] as? Int == 1)
                #expect(report["refreshed"] as? Int == 0)
                // The code exchange was the only token request.
                #expect(await s.sandbox.requests(to: "POST /login/oauth/access_token") == 1)
                #expect(try await s.whoami("alice") == ProviderShape.github.identity(of: .sample, account: "alice"))
            }
        }

        /// GitHub answers its token endpoint with a form unless the request accepts JSON. tokenvault always asks
        /// for JSON, so a proxy that drops `Accept` stands for a GitHub that ignores it: the form is read as well.
        @Test func githubFormEncodedTokenAnswersAreRead() async throws {
            try await SandboxWorkspace.withProvider(.github, add: false) { s in
                let proxy = try await RequestLogProxy.start(
                    in: s.ws, upstream: s.base, basePath: "", dropping: ["accept"])
                defer { proxy.stop() }
                let added = try await s.run(
                    [
                        "add", "github", "--provider", "github", "--client-id", s.clientId,
                        "--redirect-uri", s.redirect, "--api-base", proxy.base, "--client-secret-stdin",
                    ],
                    stdin: s.clientSecret)
                #expect(added.code == 0, "\(added.err)")
                let alice = try await s.authorize("alice")
                #expect(alice.code == 0, "\(alice.err)")
                let first = try #require(try await s.token("alice"))
                #expect(await s.sandbox.isAccessTokenValid(first))
                #expect(try await s.listed()["alice"]?["state"] as? String == "expiring")
                let refreshed = try await s.run(["refresh", "alice"])
                #expect(refreshed.code == 0, "\(refreshed.err)")
                #expect(refreshed.err.contains("(new refresh token)"), "\(refreshed.err)")
                let second = try #require(try await s.token("alice"))
                #expect(await s.sandbox.isAccessTokenValid(second))
                #expect(await s.sandbox.isAccessTokenValid(first) == false)
                let tokenRequests = try proxy.entries().filter { $0.route == "POST /login/oauth/access_token" }
                #expect(tokenRequests.map(\.status) == [200, 200])
            }
        }

        /// Slack says a refresh token is dead with `{"ok": false, "error": "invalid_refresh_token"}` and HTTP 200:
        /// exit 5 and needs-reauth, as for invalid_grant.
        @Test func slackOkFalseForAnExpiredRefreshTokenIsNeedsReauth() async throws {
            try await SandboxWorkspace.withProvider(.slack) { s in
                let pairs = try await s.importAccounts(["alice"])
                try await s.sandbox.expireRefreshToken(pairs["alice"]!.refresh)
                let refused = try await s.run(["refresh", "alice"])
                #expect(refused.code == 5, "\(refused.err)")
                #expect(refused.err.contains("invalid_refresh_token"), "\(refused.err)")
                #expect(try await s.listed()["alice"]?["state"] as? String == "needs-reauth")
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["alice"]!.refresh) == 1)
                s.expectNoSecrets(refused.err, also: [pairs["alice"]!.refresh, pairs["alice"]!.access])
            }
        }

        /// A discovery document naming another issuer is refused at `add` (OpenID Connect Discovery §4.3): exit 6,
        /// nothing stored.
        @Test func genericDiscoveryWithAnotherIssuerIsRefused() async throws {
            try await SandboxWorkspace.withProvider(
                .oidc, add: false, configure: { $0.discoveryIssuer = "https://sso.example.com" }
            ) { s in
                let added = try await s.addProvider()
                #expect(added.code == 6, "\(added.err)")
                #expect(
                    added.err.contains(
                        "the discovery document names the issuer https://sso.example.com, not \(s.base.absoluteString); refusing it (OpenID Connect Discovery §4.3)"
                    ), "\(added.err)")
                #expect(await s.sandbox.requests(to: "GET /.well-known/openid-configuration") == 1)
                let integrations = try await s.run(["integrations", "--json"])
                #expect(jsonObjects(integrations.out).isEmpty)
                s.expectNoSecrets(added.err + added.out)
            }
        }

        /// The README says the document's `issuer` must be identical to the URL given, trailing `/` included; a
        /// document that adds a `/` was accepted. Now it is refused with the spelling to give, which then works.
        @Test func genericDiscoveryIssuerMustMatchToTheTrailingSlash() async throws {
            try await SandboxWorkspace.withProvider(.oidc, add: false) { s in
                let given =
                    s.base.absoluteString.hasSuffix("/")
                    ? String(s.base.absoluteString.dropLast()) : s.base.absoluteString
                await s.sandbox.updateConfiguration { $0.discoveryIssuer = given + "/" }
                let refused = try await s.addProvider(["--issuer", given])
                #expect(refused.code == 6, "\(refused.err)")
                #expect(refused.err.contains("names the issuer \(given)/, not \(given); refusing it"), "\(refused.err)")
                #expect(refused.err.contains("give it exactly so: --issuer \(given)/"), "\(refused.err)")
                let added = try await s.addProvider(["--issuer", given + "/"])
                #expect(added.code == 0, "\(added.err)")
            }
        }

        /// A wrong client secret: the provider answers 401 with `WWW-Authenticate: Basic` (RFC 6749 §5.2). The code
        /// exchange and a refresh fail at once with a clear error (exit 6), not after a hang; the refresh token is
        /// not taken for dead.
        @Test func genericWrongClientSecretIsAPromptClearError() async throws {
            try await SandboxWorkspace.withProvider(.oidc, add: false) { s in
                let added = try await s.addProvider(secret: "cs-not-the-right-one")
                #expect(added.code == 0, "\(added.err)")
                let started = Date()
                let alice = try await s.authorize("alice")
                let seconds = Date().timeIntervalSince(started)
                #expect(alice.code == 6, "\(alice.err)")
                // The 401's body arrives too (URLSession on Linux withheld it), so the provider's description is quoted.
                let refusal =
                    "the provider does not recognise the integration's client id and secret (Client authentication failed); check them with `tokenvault integrations`, and set the right secret with `tokenvault integration edit NAME --client-secret-stdin`"
                #expect(alice.err.contains("tokenvault: error: " + refusal), "\(alice.err)")
                #expect(seconds < 20, "the code exchange took \(seconds) s")
                #expect(try await s.listed().isEmpty)

                let pairs = try await s.importAccounts(["bob"])
                let refreshStarted = Date()
                let refresh = try await s.run(["refresh", "bob"])
                #expect(Date().timeIntervalSince(refreshStarted) < 20)
                #expect(refresh.code == 6, "\(refresh.err)")
                #expect(
                    refresh.err.contains("tokenvault: error: refreshing 'bob' failed: " + refusal), "\(refresh.err)")
                #expect(try await s.listed()["bob"]?["state"] as? String == "expiring")
                #expect(await s.sandbox.isRefreshTokenValid(pairs["bob"]!.refresh))
                s.expectNoSecrets(alice.err + refresh.err, also: ["cs-not-the-right-one"])
            }
        }
    }
}
