import Foundation
import GRDB
import Testing
import TokenVaultLab

/// A vault written by the tokenvault of before the provider presets (commit 633ba62, schema v1, no
/// `provider_options` column) opens with today's binary, is upgraded in place, and everything in it works: the
/// client secret sealed under the old label, the token pair, the audit chain. Tests/Fixtures/vault-v1.db was made
/// with that binary from generated values (passphrase "fixture passphrase v1"):
///   init --kdf interactive; add w --client-id C0ffee --redirect-uri http://127.0.0.1:8765/cb
///   --scopes "spark:all spark:kms" --api-base http://127.0.0.1:9/v1; import alice --integration w
@Suite struct OldVaultBinaryTests {
    @Test func aVaultFromBeforeProvidersOpensUpgradesAndWorks() throws {
        let ws = Workspace()
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/vault-v1.db").path
        let vault = ws.dir + "/old.db"
        try FileManager.default.copyItem(atPath: fixture, toPath: vault)
        chmod(vault, 0o600)
        let env: [String: String?] = ["TOKENVAULT_PASSPHRASE": "fixture passphrase v1", "TOKENVAULT_VAULT": vault]

        let token = try ws.tokenvault(["token", "alice"], environment: env)
        #expect(token.code == 0, "\(token.err)")
        #expect(token.out == "fx_07b7bd41e115b933f45d682e4cada6dfa542d110b35467a3\n")
        // The client secret opens under its old label (env checks it, with the variable bound to it).
        let exported = try ws.tokenvault(["env", "alice"], environment: env)
        #expect(exported.code == 0, "\(exported.err)")
        #expect(exported.out == "export WEBEX_ACCESS_TOKEN='fx_07b7bd41e115b933f45d682e4cada6dfa542d110b35467a3'\n")
        let integrations = try ws.tokenvault(["integrations", "--json"], environment: env)
        let parsed = try JSONSerialization.jsonObject(with: Data(integrations.out.utf8)) as? [[String: Any]]
        #expect(parsed?.first?["provider"] as? String == "webex")
        #expect(parsed?.first?["provider_options"] is NSNull)
        let list = try ws.tokenvault(["list"], environment: env)
        #expect(list.out.contains("alice") && list.out.contains("webex"), "\(list.out)")
        let verify = try ws.tokenvault(["audit", "--verify"], environment: env)
        #expect(verify.code == 0, "\(verify.out)\(verify.err)")

        // Upgraded in place: the newer schema versions are recorded and the column exists.
        let queue = try DatabaseQueue(path: vault)
        defer { try? queue.close() }
        let (columns, applied) = try queue.read { db in
            (
                try db.columns(in: "integration").map(\.name),
                try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
            )
        }
        #expect(columns.contains("provider_options"))
        #expect(
            applied == [
                "v001_initial", "v002_provider_options", "v003_notifications", "v004_key_slots", "v005_pair_binding",
            ])
    }
}
