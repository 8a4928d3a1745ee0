import Foundation
import GRDB
import Testing
import VaultCrypto

@testable import TokenVaultCLI
@testable import TokenVaultCore

// Plain fields of the vault file (ids, env_var) edited with SQL, as an attacker would leave them.
// Everything here goes through the commands, in-process.

@Suite struct PlainFieldTamperTests {
    @Test func anAccountIdThatIsNotAUUIDIsRefusedBeforeAnyFileIsTouched() async throws {
        let (h, _, _) = try await Harness.withAccount(expiresIn: 60)
        h.now = h.now.addingTimeInterval(3600)  // due: env and refresh-all would lock and refresh it
        let vaultDir = URL(fileURLWithPath: h.vaultPath).deletingLastPathComponent().path
        // Where `vault.db.locks/../x/app.lock` lands when the id is used as a path.
        try FileManager.default.createDirectory(atPath: vaultDir + "/x", withIntermediateDirectories: true)
        try tamper(h, "UPDATE account SET id = '../x/app' WHERE name = 'alice'")
        for command in [["refresh", "alice"], ["refresh-all"], ["env", "alice"], ["token", "alice"]] {
            let result = await h.run(command)
            #expect(result.code == 7, "\(command): \(result.err)")
            #expect(result.err.contains(#"invalid id "../x/app""#), "\(command): \(result.err)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: vaultDir + "/x").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: h.vaultPath + ".locks"))
    }

    @Test func upperCaseOrNonUUIDIntegrationIdsAreRefused() async throws {
        let (h, _, _) = try await Harness.withAccount()
        var configuration = Configuration()
        configuration.foreignKeysEnabled = false
        let queue = try DatabaseQueue(path: h.vaultPath, configuration: configuration)
        let id = try await queue.read { try String.fetchOne($0, sql: "SELECT id FROM integration")! }
        try await queue.write {
            try $0.execute(
                sql: "UPDATE integration SET id = ?; UPDATE account SET integration_id = ?",
                arguments: [id.uppercased(), id.uppercased()])
        }
        try queue.close()
        let result = await h.run(["token", "alice"])
        #expect(result.code == 7, "\(result.err)")
        #expect(result.err.contains("tokenvault: hint:"))
    }

    @Test func addRefusesVariablesThatChangeHowProgramsRun() async throws {
        let (h, _, _) = try await Harness.withAccount()
        for name in [
            "PATH", "path", "LD_PRELOAD", "BASH_ENV", "IFS", "PS4", "HTTPS_PROXY", "http_proxy", "no_proxy",
            "LC_ALL", "PYTHONPATH", "GIT_SSH_COMMAND", "SSL_CERT_FILE", "XDG_CONFIG_HOME", "TOKENVAULT_VAULT",
            "DYLD_INSERT_LIBRARIES",
        ] {
            let result = await h.run(
                [
                    "add", "i-\(name.lowercased())", "--client-id", "C1", "--redirect-uri",
                    "http://localhost:8765/callback",
                    "--scopes", "spark:people_read", "--client-secret-stdin", "--env-var", name,
                ], stdin: "s3cret")
            #expect(result.code == 2, "\(name): \(result.err)")
            #expect(result.err.contains("changes how shells and programs run"), "\(name): \(result.err)")
        }
        try await h.expectOK(
            [
                "add", "mine", "--client-id", "C1", "--redirect-uri", "http://localhost:8765/callback",
                "--scopes", "spark:people_read", "--client-secret-stdin", "--env-var", "MY_WEBEX_TOKEN",
            ], stdin: "s3cret")
    }

    @Test func anEditedEnvVarFailsTheIntegrityCheck() async throws {
        for name in ["PATH", "OTHER_TOKEN"] {
            let (h, access, _) = try await Harness.withAccount()
            let ran = ResultBox()
            h.execute = { _, _, environment in
                ran.value = environment[name]
                return 0
            }
            try tamper(h, "UPDATE integration SET env_var = ?", [name])
            for command in [
                ["env", "alice"], ["token", "alice"], ["exec", "alice", "--", "true"],
                ["env", "alice", "--format", "json"],
            ] {
                let result = await h.run(command)
                #expect(result.code == 7, "\(name) \(command): \(result.err)")
                #expect(!result.out.contains(access), "\(name) \(command)")
                #expect(!result.err.contains(access))
            }
            #expect(ran.value == nil, "exec ran with \(name) set")
        }
    }
}
