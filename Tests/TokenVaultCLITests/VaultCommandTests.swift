import Foundation
import GRDB
import Testing
import TokenVaultTestSupport
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

@Suite struct InitTests {
    @Test func initCreatesVaultAndRefusesSecondInit() async throws {
        let h = Harness()
        let first = await h.run(["init"])
        #expect(first.code == 0, "\(first.err)")
        #expect(first.out.isEmpty)
        #expect(FileManager.default.fileExists(atPath: h.vaultPath))
        let before = h.vaultBytes()
        let second = await h.run(["init"])
        #expect(second.code == 2)
        #expect(second.err.contains("tokenvault: error: a vault already exists"))
        #expect(h.vaultBytes() == before)
    }

    @Test func newPassphraseIsAskedTwiceOnTheTerminal() async throws {
        let h = Harness()
        // Long enough for init (below 8 characters is refused without --allow-weak-passphrase).
        let terminal = ScriptedTerminal(["s3cret passphrase", "s3cret passphrase"])
        let result = await h.run(["init"], terminal: terminal, environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(result.code == 0, "\(result.err)")
        #expect(terminal.prompts.count == 2)
        let unlocked = await h.run(["list"], environment: ["TOKENVAULT_PASSPHRASE": "s3cret passphrase"])
        #expect(unlocked.code == 0)
    }

    @Test func mismatchedOrEmptyPassphraseIsRefused() async throws {
        let h = Harness()
        let mismatch = await h.run(
            ["init"], terminal: ScriptedTerminal(["one", "two"]), environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(mismatch.code == 3)
        #expect(mismatch.err.contains("differ"))
        let empty = await h.run(
            ["init"], terminal: ScriptedTerminal(["", ""]), environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(empty.code == 3)
        #expect(empty.err.contains("empty"))
        let emptyEnv = await h.run(["init"], environment: ["TOKENVAULT_PASSPHRASE": ""])
        #expect(emptyEnv.code == 3)
        #expect(!FileManager.default.fileExists(atPath: h.vaultPath))
    }

    @Test func noPassphraseSourceGivesHint() async throws {
        let h = Harness()
        let result = await h.run(["init"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(result.code == 3)
        #expect(result.err.contains("tokenvault: hint: give it with --passphrase-fd N, TOKENVAULT_PASSPHRASE_FILE"))
    }

    @Test func commandsOnAMissingVaultSayToRunInit() async throws {
        let h = Harness()
        for command in [["list"], ["token", "alice"], ["integrations"], ["audit"]] {
            let result = await h.run(command)
            #expect(result.code == 4, "\(command)")
            #expect(result.err.contains("tokenvault: hint: create one with 'tokenvault init'"), "\(command)")
        }
    }
}

@Suite struct PassphraseSourceTests {
    @Test func passphraseFileMustBePrivate() async throws {
        let (h, access, _) = try await Harness.withAccount()
        let file = h.dir + "/pass"
        try Data((Harness.passphrase + "\n").utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, 0o644)
        let loose = await h.run(
            ["token", "alice"], environment: ["TOKENVAULT_PASSPHRASE_FILE": file, "TOKENVAULT_PASSPHRASE": nil])
        #expect(loose.code == 3)
        #expect(loose.err.contains("644"))
        #expect(!loose.out.contains(access))
        chmod(file, 0o600)
        let ok = await h.run(
            ["token", "alice"], environment: ["TOKENVAULT_PASSPHRASE_FILE": file, "TOKENVAULT_PASSPHRASE": nil])
        #expect(ok.code == 0, "\(ok.err)")
        #expect(ok.out == access + "\n")
    }

    @Test func passphraseFromFileDescriptorWinsOverEnvironment() async throws {
        let (h, access, _) = try await Harness.withAccount()
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        _ = Harness.passphrase.withCString { write(fds[1], $0, strlen($0)) }
        close(fds[1])
        // No `defer { close(fds[0]) }`: the command closes the descriptor it read the passphrase from, and closing
        // the number again would close whatever a parallel test opened under it meanwhile (an SQLite vault's file:
        // the occasional "disk I/O error" of these tests).
        let result = await h.run(
            ["token", "alice", "--passphrase-fd", String(fds[0])],
            environment: ["TOKENVAULT_PASSPHRASE": "wrong"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.out == access + "\n")
    }

    @Test func wrongPassphraseExits3AndChangesNothing() async throws {
        let (h, access, _) = try await Harness.withAccount()
        let before = h.vaultBytes()
        for command in [
            ["token", "alice"], ["env", "alice"], ["revoke", "alice"], ["passwd"], ["audit", "--verify"],
        ] {
            let result = await h.run(command, environment: ["TOKENVAULT_PASSPHRASE": "wrong"])
            #expect(result.code == 3, "\(command)")
            #expect(result.err.contains("tokenvault: error: wrong passphrase"), "\(command)")
            #expect(!result.out.contains(access))
        }
        #expect(h.vaultBytes() == before)
    }
}

@Suite struct IntegrationCommandTests {
    @Test func addFromPortalURL() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        let url =
            "https://webexapis.com/v1/authorize?client_id=C1a2b3&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A8765%2Fcallback&scope=spark%3Apeople_read%20spark%3Akms&state=set_state_here"
        let add = await h.run(["add", "portal", "--from-url", url, "--client-secret-stdin"], stdin: "sec\n")
        #expect(add.code == 0, "\(add.err)")
        let list = await h.run(["integrations", "--json"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [[String: Any]])
        #expect(objects.count == 1)
        #expect(objects[0]["client_id"] as? String == "C1a2b3")
        #expect(objects[0]["redirect_uri"] as? String == "http://localhost:8765/callback")
        #expect(objects[0]["scopes"] as? [String] == ["spark:people_read", "spark:kms"])
        #expect(objects[0]["api_base"] as? String == "https://webexapis.com/v1")
        #expect(objects[0]["env_var"] as? String == "WEBEX_ACCESS_TOKEN")
        #expect(!list.out.contains("sec"))
    }

    @Test func clientSecretIsSealedNotStoredInPlain() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        let secret = "client-secret-" + randomToken()
        try await h.expectOK(
            [
                "add", "w", "--client-id", "C", "--redirect-uri", "https://example.com/cb", "--scopes", "spark:all",
                "--client-secret-stdin",
            ], stdin: secret)
        let bytes = h.vaultBytes()
        #expect(!(bytes[""] ?? Data()).contains(secret))
        #expect(!(bytes["-wal"] ?? Data()).contains(secret))
    }

    @Test func clientSecretFromTerminalPrompt() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        let terminal = ScriptedTerminal(["the-secret"])
        let result = await h.run(
            ["add", "w", "--client-id", "C", "--redirect-uri", "http://127.0.0.1:9000/cb", "--scopes", "spark:all"],
            terminal: terminal)
        #expect(result.code == 0, "\(result.err)")
        #expect(terminal.prompts == ["Client secret for 'w': "])
    }

    @Test(arguments: [
        (
            ["add", "has space", "--client-id", "C", "--redirect-uri", "https://e.com/cb", "--scopes", "a"],
            "invalid integration name"
        ),
        (
            ["add", "ctl\u{7}", "--client-id", "C", "--redirect-uri", "https://e.com/cb", "--scopes", "a"],
            "invalid integration name"
        ),
        (
            [
                "add", String(repeating: "x", count: 65), "--client-id", "C", "--redirect-uri", "https://e.com/cb",
                "--scopes", "a",
            ], "invalid integration name"
        ),
        (
            ["add", "w", "--client-id", "C", "--redirect-uri", "localhost:8080/cb", "--scopes", "a"],
            "not an absolute URL"
        ),
        (["add", "w", "--client-id", "C", "--redirect-uri", "/callback", "--scopes", "a"], "not an absolute URL"),
        (["add", "w", "--client-id", "C", "--redirect-uri", "http://example.com/cb", "--scopes", "a"], "plain http"),
        (["add", "w", "--client-id", "C", "--redirect-uri", "ftp://localhost/cb", "--scopes", "a"], "http or https"),
        (
            ["add", "w", "--client-id", "C", "--redirect-uri", "https://e.com/cb", "--scopes", " "],
            "at least one scope"
        ),
        (
            [
                "add", "w", "--client-id", "C", "--redirect-uri", "https://e.com/cb", "--scopes", "a", "--env-var",
                "1BAD",
            ], "invalid environment variable"
        ),
        (["add", "w", "--redirect-uri", "https://e.com/cb", "--scopes", "a"], "client id is needed"),
        (["add", "w", "--from-url", "https://webexapis.com/v1/people"], "not an OAuth authorization URL"),
        (
            [
                "add", "w", "--client-id", "C", "--redirect-uri", "https://e.com/cb", "--scopes", "a", "--api-base",
                "http://api.example.com/v1",
            ], "plain http"
        ),
    ])
    func badAddInputIsRefusedAndChangesNothing(arguments: [String], message: String) async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        let before = h.vaultBytes()
        let result = await h.run(arguments + ["--client-secret-stdin"], stdin: "s")
        #expect(result.code == 2, "\(result.err)")
        #expect(result.err.contains(message), "\(result.err)")
        #expect(!result.err.contains("\u{7}"))
        #expect(h.vaultBytes() == before)
    }

    @Test func duplicateIntegrationIsRefused() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let result = await h.run(
            [
                "add", "webex1", "--client-id", "C", "--redirect-uri", "https://e.com/cb", "--scopes", "a",
                "--client-secret-stdin",
            ], stdin: "s")
        #expect(result.code == 2)
        #expect(result.err.contains("already exists"))
    }

    @Test func removeIntegrationRefusedWhileUsedUnlessForced() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try await h.expectOK(
            ["import", "bob", "--integration", "webex1"],
            stdin: tokenJSON(access: "AT_" + randomToken(), refresh: "RT_" + randomToken()))
        let sealed = try sealedValues(h, account: "alice") + sealedValues(h, account: "bob")
        #expect(sealed.count == 4)
        let refused = await h.run(["remove-integration", "webex1"])
        #expect(refused.code == 2)
        #expect(refused.err.contains("used by 2 account"), "\(refused.err)")
        let forced = await h.run(["remove-integration", "webex1", "--force"])
        #expect(forced.code == 0, "\(forced.err)")
        #expect(forced.err.contains("Removing 2 accounts with it: alice, bob"))
        let list = await h.run(["list", "--json"])
        #expect(try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [Any] != nil)
        #expect((try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [Any])?.isEmpty == true)
        // Each account is audited as revoked by remove-integration, and its sealed bytes are gone from the file
        // and the WAL.
        for account in ["alice", "bob"] {
            let audit = await h.run(["audit", account, "--json"])
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(audit.out.utf8)) as? [[String: Any]])
            #expect(entries.last?["event"] as? String == "revoked", "\(account)")
            #expect(entries.last?["trigger"] as? String == "remove-integration", "\(account)")
        }
        for (suffix, data) in h.vaultBytes() {
            for value in sealed {
                #expect(data.range(of: Data(value)) == nil, "sealed bytes still in vault.db\(suffix)")
            }
        }
        #expect(await h.run(["audit", "--verify"]).code == 0)
        let missing = await h.run(["remove-integration", "webex1"])
        #expect(missing.code == 4)
    }
}
