import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// `tokenvault copy --to`: everything moves as it is, without a passphrase, and the copy is a working vault.
    @Suite struct CopyBinary {
        @Test func aCopyOpensWithTheSamePassphraseKeepsTheAuditChainAndWorks() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["alice", "bob"])
                try await s.expectOK(["refresh", "alice"])
                let before = try await s.listed()
                let head = jsonObject(try await s.run(["audit", "--verify", "--json"]).out)
                let copy = s.ws.dir + "/copies/vault-copy.db"
                // No passphrase is needed (none is given) and nothing secret is opened.
                let copied = try await s.run(["copy", "--to", copy], environment: ["TOKENVAULT_PASSPHRASE": nil])
                #expect(copied.code == 0, "\(copied.err)")
                #expect(copied.err.contains("2 accounts"), "\(copied.err)")
                s.expectNoSecrets(copied.out + copied.err, also: pairs.values.flatMap { [$0.access, $0.refresh] })
                var info = stat()
                #expect(stat(copy, &info) == 0 && info.st_mode & 0o777 == 0o600)
                // The same rows, sealed bytes and ids, in both files.
                for table in ["integration", "account", "audit_entry", "key_slot"] {
                    let dump = "SELECT * FROM \(table) ORDER BY 1"
                    #expect(try sqlite(s.ws.vault, dump) == sqlite(copy, dump), "\(table) differs")
                }
                // The copy opens with the same passphrase, verifies, and serves and refreshes tokens.
                let environment: [String: String?] = ["TOKENVAULT_VAULT": copy]
                let verify = try await s.run(["audit", "--verify", "--json"], environment: environment)
                #expect(verify.code == 0, "\(verify.err)")
                #expect(jsonObject(verify.out)["head"] as? String == head["head"] as? String, "\(verify.out)")
                let listed = try await s.run(["list", "--json"], environment: environment)
                #expect(jsonObjects(listed.out).count == before.count)
                let refreshed = try await s.run(["refresh", "bob"], environment: environment)
                #expect(refreshed.code == 0, "\(refreshed.err)")
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["bob"]!.refresh) == 1)
                // A vault is never copied over another one.
                let again = try await s.run(["copy", "--to", copy])
                #expect(again.code == 2, "\(again.err)")
                #expect(again.err.contains("a vault already exists at \(copy)"), "\(again.err)")
            }
        }
    }
}
