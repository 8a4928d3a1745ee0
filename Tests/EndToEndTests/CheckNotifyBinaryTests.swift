import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

/// `check`, `refresh-all --notify CMD` and `list --format prometheus`, as monitoring would use them.
extension OAuthBinaryTests {
    @Suite struct CheckAndNotify {
        /// Imports `name` with a pair the sandbox issued, its refresh token lapsing in `refreshDays` days.
        func add(_ s: SandboxWorkspace, _ name: String, refreshDays: Int = 90) async throws -> (
            access: String, refresh: String
        ) {
            let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: s.user.id)
            var object = jsonObject(tokenJSON(access: pair.accessToken, refresh: pair.refreshToken))
            object["refresh_token_expires_in"] = refreshDays * 86_400
            let json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            try await s.expectOK(["import", name, "--integration", "webex", "--replace"], stdin: json)
            return (pair.accessToken, pair.refreshToken)
        }

        @Test func checkNotifyOnceAndPrometheus() async throws {
            try await SandboxWorkspace.with { s in
                let alice = try await add(s, "alice")
                let bob = try await add(s, "bob")
                _ = try await add(s, "carol", refreshDays: 5)
                #expect(try await s.run(["check"]).code == 5)

                // bob's refresh token is refused at the next refresh: needs re-authorization.
                try await s.sandbox.revokeRefreshToken(bob.refresh)
                let refresh = try await s.run(["refresh", "bob"])
                #expect(refresh.code == 5, "\(refresh.err)")

                let check = try await s.run(["check"])
                #expect(check.code == 5)
                let lines = check.out.split(separator: "\n").map(String.init)
                #expect(lines.count == 2, "\(check.out)")
                #expect(lines.contains { $0.hasPrefix("bob (webex): needs-reauth:") })
                #expect(lines.contains { $0.hasPrefix("carol (webex): refresh-token-lapsing:") })
                let json = jsonObjects(try await s.run(["check", "--json"]).out)
                #expect(Set(json.compactMap { $0["event"] as? String }) == ["needs-reauth", "refresh-token-lapsing"])

                // --notify: once per account and event; the command sees what happened and no token or passphrase.
                let log = s.ws.dir + "/notified.log"
                let environ = s.ws.dir + "/notify-env.log"
                let command =
                    #"printf '%s %s %s\n' "$TOKENVAULT_ACCOUNT" "$TOKENVAULT_EVENT" "$TOKENVAULT_INTEGRATION" >> "#
                    + log + "; env >> " + environ
                _ = try await s.run(["refresh-all", "--notify", command])
                let first = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                #expect(
                    first.split(separator: "\n").sorted() == [
                        "bob needs-reauth webex", "carol refresh-token-lapsing webex",
                    ], "\(first)")
                let seen = (try? String(contentsOfFile: environ, encoding: .utf8)) ?? ""
                #expect(seen.contains("TOKENVAULT_DETAIL=") && !seen.contains("TOKENVAULT_PASSPHRASE"))
                #expect(
                    !seen.contains(alice.access) && !seen.contains(bob.refresh) && !seen.contains(Workspace.passphrase))
                _ = try await s.run(["refresh-all", "--notify", command])
                #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "") == first, "told twice")

                // carol gets a fresh pair: nothing to tell; when her refresh token lapses soon again, she is told again.
                _ = try await add(s, "carol")
                _ = try await s.run(["check", "--notify", command])
                _ = try await add(s, "carol", refreshDays: 3)
                _ = try await s.run(["check", "--notify", command])
                let third = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                #expect(
                    third.split(separator: "\n").filter { $0 == "carol refresh-token-lapsing webex" }.count == 2,
                    "\(third)")

                // Prometheus: one gauge line per account and metric, the state as a label.
                let prom = try await s.run(["list", "--format", "prometheus"])
                #expect(prom.code == 0)
                #expect(prom.out.contains("# TYPE tokenvault_refresh_token_expiry_seconds gauge"))
                #expect(
                    prom.out.contains(
                        #"tokenvault_account_state{account="alice",integration="webex",provider="webex",state="ok"} 1"#),
                    "\(prom.out)")
                #expect(
                    prom.out.contains(
                        #"tokenvault_account_state{account="bob",integration="webex",provider="webex",state="needs-reauth"} 1"#
                    ))
                let carolRefresh = prom.out.split(separator: "\n").first {
                    $0.hasPrefix(#"tokenvault_refresh_token_expiry_seconds{account="carol""#)
                }
                let seconds = carolRefresh.flatMap { Int($0.split(separator: " ").last ?? "") }
                #expect(seconds.map { abs($0 - 3 * 86_400) < 600 } == true, "\(String(describing: carolRefresh))")
                #expect(!prom.out.contains(alice.access))

                // Everyone well again: exit 0.
                _ = try await add(s, "bob")
                _ = try await add(s, "carol")
                let fine = try await s.run(["check"])
                #expect(fine.code == 0, "\(fine.out)")
            }
        }
    }
}
