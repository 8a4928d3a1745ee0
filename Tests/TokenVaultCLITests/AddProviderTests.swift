import Foundation
import GRDB
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// `add --provider`: each preset's defaults, the options only some take, and provider settings bound to the
/// client secret so that an edited endpoint is refused before anything is sent.
@Suite struct AddProviderTests {
    func integrations(_ h: Harness) async throws -> [String: [String: Any]] {
        let list = await h.run(["integrations", "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as! String, $0) })
    }

    @Test func eachPresetTakesItsDefaults() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        let redirect = ["--redirect-uri", "http://127.0.0.1:8765/cb", "--client-id", "cid"]
        try await h.expectOK(
            ["add", "g", "--provider", "google", "--client-secret-stdin"] + redirect, stdin: "s-" + randomToken())
        let ms = await h.run(
            [
                "add", "m", "--provider", "microsoft", "--tenant", "organizations", "--public-client",
                "--scopes", "Mail.Read",
            ] + redirect)
        #expect(ms.code == 0, "\(ms.err)")
        #expect(ms.err.contains("added the scope offline_access"), "\(ms.err)")
        try await h.expectOK(
            ["add", "gh", "--provider", "github", "--client-secret-stdin"] + redirect, stdin: "s-" + randomToken())
        try await h.expectOK(
            ["add", "sl", "--provider", "slack", "--scopes", "users:read,chat:write", "--client-secret-stdin"]
                + redirect,
            stdin: "s-" + randomToken())
        try await h.expectOK(
            [
                "add", "o", "--provider", "generic", "--authorize-url", "https://idp.example/a",
                "--token-url", "https://idp.example/t", "--revoke-url", "https://idp.example/r",
                "--client-auth", "body", "--scopes", "openid offline_access", "--client-secret-stdin",
            ] + redirect,
            stdin: "s-" + randomToken())
        let rows = try await integrations(h)
        #expect(rows["g"]?["provider"] as? String == "google")
        #expect(rows["g"]?["scopes"] as? [String] == ["openid", "email", "profile"])
        #expect(rows["g"]?["env_var"] as? String == "GOOGLE_ACCESS_TOKEN")
        #expect(rows["g"]?["api_base"] as? String == "https://accounts.google.com")
        #expect(rows["m"]?["scopes"] as? [String] == ["offline_access", "Mail.Read"])
        #expect((rows["m"]?["provider_options"] as? [String: Any])?["tenant"] as? String == "organizations")
        #expect(rows["gh"]?["scopes"] as? [String] == [] && rows["gh"]?["env_var"] as? String == "GITHUB_TOKEN")
        #expect(
            rows["sl"]?["scopes"] as? [String] == ["users:read", "chat:write"]
                && rows["sl"]?["env_var"] as? String == "SLACK_USER_TOKEN")
        let generic = rows["o"]?["provider_options"] as? [String: Any]
        #expect(
            generic?["token_url"] as? String == "https://idp.example/t" && generic?["client_auth"] as? String == "body")
        #expect(
            rows["o"]?["api_base"] as? String == "https://idp.example"
                && rows["o"]?["env_var"] as? String == "OAUTH_ACCESS_TOKEN")
        let table = await h.run(["integrations"])
        #expect(table.out.contains("PROVIDER") && table.out.contains("microsoft") && table.out.contains("generic"))
    }

    @Test func optionsAPresetDoesNotTakeAreRefusedBeforeThePassphrase() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        let base = ["--redirect-uri", "http://127.0.0.1:8765/cb", "--client-id", "cid", "--client-secret-stdin"]
        let cases: [([String], String)] = [
            (
                [
                    "add", "x", "--provider", "webex", "--public-client", "--scopes", "spark:all", "--redirect-uri",
                    "http://127.0.0.1:8765/cb", "--client-id", "c",
                ], "no public clients"
            ),
            (
                ["add", "x", "--provider", "google", "--tenant", "common"] + base,
                "--tenant is for --provider microsoft"
            ),
            (
                ["add", "x", "--provider", "google", "--token-url", "https://evil.example/t"] + base,
                "--token-url is for --provider generic"
            ),
            (
                ["add", "x", "--provider", "github", "--issuer", "https://idp.example"] + base,
                "--issuer is for --provider generic"
            ),
            (["add", "x", "--provider", "generic", "--scopes", "openid"] + base, "--issuer URL, or --authorize-url"),
            (
                [
                    "add", "x", "--provider", "generic", "--authorize-url", "http://idp.example/a", "--token-url",
                    "https://idp.example/t",
                    "--scopes", "openid",
                ] + base, "plain http"
            ),
            (["add", "x", "--provider", "slack"] + base, "at least one scope"),
            (["add", "x", "--provider", "microsoft", "--tenant", "a/b"] + base, "tenant"),
            (["add", "x", "--provider", "myspace"] + base, "myspace"),
        ]
        for (arguments, words) in cases {
            let result = await h.run(arguments, environment: ["TOKENVAULT_PASSPHRASE": nil])
            #expect(result.code == 2, "\(arguments): \(result.err)")
            #expect(result.err.contains(words), "\(arguments): \(result.err)")
        }
        #expect(try await integrations(h).isEmpty)
    }

    @Test func anEditedEndpointOrTenantIsRefusedBeforeAnythingIsSent() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "add", "o", "--provider", "generic", "--authorize-url", "https://idp.example/a",
                "--token-url", "https://idp.example/t", "--scopes", "openid", "--client-id", "cid",
                "--redirect-uri", "http://127.0.0.1:8765/cb", "--client-secret-stdin",
            ], stdin: "s-" + randomToken())
        try await h.expectOK(
            ["import", "alice", "--integration", "o"],
            stdin: tokenJSON(access: "AT_" + randomToken(), refresh: "RT_" + randomToken(), expiresIn: 60))
        // An attacker who can write the file points the token endpoint at themselves.
        let queue = try DatabaseQueue(path: h.vaultPath)
        try await queue.write { db in
            try db.execute(
                sql:
                    #"UPDATE integration SET provider_options = replace(provider_options, 'idp.example/t', 'evil.example/t')"#
            )
        }
        try queue.close()
        let refresh = await h.run(["refresh", "alice"])
        #expect(refresh.code == 7, "\(refresh.err)")
        #expect(refresh.err.contains("client secret of integration 'o'"), "\(refresh.err)")
    }

    @Test func optionsAddedBesideALegacySealAreNotBlessed() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "add", "w", "--client-id", "cid", "--redirect-uri", "http://127.0.0.1:8765/cb", "--scopes", "spark:all",
                "--api-base", "http://127.0.0.1:9/v1", "--client-secret-stdin",
            ], stdin: "s-" + randomToken())
        try await h.expectOK(
            ["import", "alice", "--integration", "w"],
            stdin: tokenJSON(access: "AT_" + randomToken(), refresh: "RT_" + randomToken(), expiresIn: 60))
        // Make the secret a legacy seal (as vaults from before env_var was bound have), then add options by hand.
        let vault = try UnlockedVault.unlock(
            try VaultStores.open(h.vaultPath), kdfParameters: cheapKDF, attempts: 1,
            console: CapturingConsole()
        ) { SecretBytes(copying: Array(Harness.passphrase.utf8)) }
        let integration = try vault.database.integration(named: "w")
        let secret = try vault.clientSecret(of: integration)
        let legacy = try vault.seal(secret, label: SealLabel.legacyClientSecret(integration))
        try vault.database.write {
            try $0.replaceClientSecret(integrationId: integration.id, old: integration.clientSecretSealed, new: legacy)
        }
        let queue = try DatabaseQueue(path: h.vaultPath)
        try await queue.write { db in
            // The provider stays (it is part of the legacy label); only options are added.
            try db.execute(sql: #"UPDATE integration SET provider_options = '{"client_auth":"basic"}'"#)
        }
        try queue.close()
        let refresh = await h.run(["refresh", "alice"])
        #expect(refresh.code == 7, "\(refresh.err)")
    }
}
