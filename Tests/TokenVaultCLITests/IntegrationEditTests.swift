import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

@testable import TokenVaultCLI
@testable import TokenVaultCore

// `tokenvault integration edit` (secret, scopes, API base, redirect URI, variable name, keeping the accounts), and
// `integration add|list|remove` beside the old names.

@Suite struct IntegrationEditTests {
    @Test func editingEveryFieldKeepsTheAccountsUsable() async throws {
        let s = try await SandboxHarness()
        let pairs = try await s.importAccounts(["alice"])
        // The provider rotates the client secret and gets a second redirect URI; the new secret is all it accepts.
        let newSecret = "rotated-" + randomToken()
        let newRedirect = "http://127.0.0.1:\(freePort())/callback"
        await s.sandbox.updateConfiguration {
            $0.clients[0].clientSecret = newSecret
            $0.clients[0].redirectURIs.append(newRedirect)
        }
        let newBase = s.base.absoluteString.replacingOccurrences(of: "127.0.0.1", with: "localhost")
        let edit = await s.h.run(
            [
                "integration", "edit", "webex", "--client-secret-stdin", "--scopes", "spark:people_read spark:kms",
                "--api-base", newBase, "--redirect-uri", newRedirect, "--env-var", "REPORTING_TOKEN",
            ],
            stdin: newSecret + "\n")
        #expect(edit.code == 0, "\(edit.err)")
        #expect(edit.err.contains("Edited integration 'webex'"), "\(edit.err)")
        #expect(!edit.err.contains(newSecret) && !edit.out.contains(newSecret))

        let list = await s.h.run(["integration", "list", "--json"])
        let row = (try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [[String: Any]])?.first ?? [:]
        #expect(row["scopes"] as? [String] == ["spark:people_read", "spark:kms"])
        #expect(row["api_base"] as? String == newBase)
        #expect(row["redirect_uri"] as? String == newRedirect)
        #expect(row["env_var"] as? String == "REPORTING_TOKEN")
        #expect(row["accounts"] as? Int == 1)

        // The account is kept; a refresh now authenticates with the edited secret (the old one is refused).
        let token = await s.h.run(["token", "alice", "--min-valid", "15d"])
        #expect(token.code == 0, "\(token.err)")
        #expect(!token.err.contains("could not refresh"), "\(token.err)")
        #expect(await s.sandbox.uses(ofRefreshToken: pairs["alice"]!.refresh) == 1)
        #expect(await s.sandbox.counters.successfulRefreshes == 1)
        let env = await s.h.run(["env", "alice"])
        #expect(env.code == 0, "\(env.err)")
        #expect(env.out.hasPrefix("export REPORTING_TOKEN="), "\(env.out)")
        let refresh = await s.h.run(["refresh", "alice"])
        #expect(refresh.code == 0, "\(refresh.err)")

        // One audit entry per change, none with the secret; the chain still verifies.
        let audit = await s.h.run(["audit", "--json"])
        #expect(!audit.out.contains(newSecret))
        let entries = try JSONSerialization.jsonObject(with: Data(audit.out.utf8)) as? [[String: Any]] ?? []
        let edits = entries.filter { $0["event"] as? String == "integration-edited" }
        #expect(edits.count == 5, "\(edits)")
        #expect(edits.allSatisfy { $0["integration"] as? String == "webex" })
        #expect(edits.contains { ($0["outcome"] as? String)?.contains("client secret replaced") == true })
        #expect(
            edits.contains { ($0["detail"] as? String)?.contains("WEBEX_ACCESS_TOKEN -> REPORTING_TOKEN") == true },
            "\(edits)")
        let verify = await s.h.run(["audit", "--verify"])
        #expect(verify.code == 0, "\(verify.err)")
        await s.stop()
    }

    @Test func anEditIsCheckedLikeAdd() async throws {
        let s = try await SandboxHarness()
        let cases: [([String], Int32, String)] = [
            (["integration", "edit", "webex"], 2, "nothing to change"),
            (["integration", "edit", "webex", "--env-var", "LD_PRELOAD"], 2, "LD_PRELOAD"),
            (["integration", "edit", "webex", "--api-base", "http://example.com/v1"], 2, "plain http"),
            (["integration", "edit", "webex", "--redirect-uri", "callback"], 2, "not an absolute URL"),
            (["integration", "edit", "webex", "--scopes", " "], 2, "at least one scope"),
            (["integration", "edit", "nosuch", "--scopes", "spark:kms"], 4, "nosuch"),
        ]
        for (arguments, code, words) in cases {
            let result = await s.h.run(arguments)
            #expect(result.code == code, "\(arguments): \(result.err)")
            #expect(
                result.err.contains("tokenvault: error:") && result.err.contains(words), "\(arguments): \(result.err)")
        }
        // Nothing was changed by the refusals.
        let events = await s.h.run(["audit", "--json"])
        #expect(!events.out.contains("integration-edited"))
        await s.stop()
    }

    @Test func integrationSubcommandsAndTheOldNamesDoTheSame() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "integration", "add", "one", "--client-id", "C1", "--redirect-uri", "http://localhost:8765/callback",
                "--scopes", "spark:kms", "--client-secret-stdin",
            ], stdin: "secret")
        try await h.expectOK(
            [
                "add", "two", "--client-id", "C2", "--redirect-uri", "http://localhost:8765/callback",
                "--scopes", "spark:kms", "--client-secret-stdin",
            ], stdin: "secret")
        let new = await h.run(["integration", "list", "--json"])
        let old = await h.run(["integrations", "--json"])
        #expect(new.code == 0 && new.out == old.out && new.out.contains("\"one\"") && new.out.contains("\"two\""))
        try await h.expectOK(["integration", "remove", "one"])
        try await h.expectOK(["remove-integration", "two"])
        let after = await h.run(["integration", "list", "--json"])
        #expect(after.code == 0 && !after.out.contains("\"name\""), "\(after.out)")
        let help = await h.run(["--help"])
        #expect(help.out.contains("integration"))
    }
}
