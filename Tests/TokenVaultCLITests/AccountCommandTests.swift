import Foundation
import GRDB
import Testing
import TokenVaultTestSupport
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

@Suite struct ImportTests {
    @Test func importStoresSealedPairAndAudits() async throws {
        let (h, access, refresh) = try await Harness.withAccount()
        let bytes = h.vaultBytes()
        for (suffix, data) in bytes {
            #expect(!data.contains(access), "access token in plain in vault.db\(suffix)")
            #expect(!data.contains(refresh), "refresh token in plain in vault.db\(suffix)")
        }
        let list = await h.run(["list", "--json"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(list.code == 0)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [[String: Any]])
        #expect(rows.count == 1)
        #expect(rows[0]["account"] as? String == "alice")
        #expect(rows[0]["state"] as? String == "ok")
        #expect(rows[0]["access_expires_in_seconds"] as? Int == 1_209_599)
        #expect(rows[0]["refresh_expires_in_seconds"] as? Int == 7_776_000)
        let audit = await h.run(["audit", "--json"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(audit.out.utf8)) as? [[String: Any]])
        #expect(entries.map { $0["event"] as? String } == ["imported"])
        #expect(entries[0]["access_expires_after"] as? String == Format.timestamp(h.now.addingTimeInterval(1_209_599)))
    }

    @Test(arguments: [
        ("{not json", "not valid JSON"),
        ("[1,2]", "JSON object"),
        (#"{"expires_in": 100, "refresh_token": "r"}"#, "access_token is missing"),
        (#"{"access_token": "a", "expires_in": -5}"#, "got -5"),
        (#"{"access_token": "a", "expires_in": 99999999999}"#, "expires_in"),
        (#"{"access_token": "a", "expires_in": "soon"}"#, "expires_in"),
        (#"{"access_token": "a"}"#, "expires_in is missing"),
        ("", "not valid JSON"),
    ])
    func badImportJSONIsRefusedAndChangesNothing(json: String, message: String) async throws {
        let (h, _, _) = try await Harness.withAccount()
        let before = h.vaultBytes()
        let result = await h.run(["import", "bob", "--integration", "webex1"], stdin: json)
        #expect(result.code == 2, "\(result.err)")
        #expect(result.err.contains(message), "\(result.err)")
        #expect(result.err.contains("tokenvault: hint:"))
        #expect(h.vaultBytes() == before)
    }

    @Test func duplicateAccountNeedsReplace() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let json = tokenJSON(access: "new-access", refresh: "new-refresh")
        let refused = await h.run(["import", "alice", "--integration", "webex1"], stdin: json)
        #expect(refused.code == 2)
        #expect(refused.err.contains("--replace"))
        let replaced = await h.run(["import", "alice", "--integration", "webex1", "--replace"], stdin: json)
        #expect(replaced.code == 0, "\(replaced.err)")
        #expect(await h.run(["token", "alice"]).out == "new-access\n")
    }

    @Test func importWithoutRefreshTokenKeepsAccessOnly() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "add", "w", "--client-id", "C", "--redirect-uri", "https://e.com/cb", "--scopes", "a",
                "--client-secret-stdin",
            ], stdin: "s")
        try await h.expectOK(
            ["import", "bot", "--integration", "w"], stdin: tokenJSON(access: "only-access", refresh: nil))
        #expect(await h.run(["token", "bot"]).out == "only-access\n")
    }

    @Test func unknownIntegrationIsNotFound() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let result = await h.run(
            ["import", "bob", "--integration", "nope"], stdin: tokenJSON(access: "a", refresh: "r"))
        #expect(result.code == 4)
        #expect(result.err.contains("no integration named 'nope'"))
    }
}

@Suite struct EnvAndTokenTests {
    @Test func envFormats() async throws {
        let (h, access, _) = try await Harness.withAccount()
        #expect(await h.run(["env", "alice"]).out == "export WEBEX_ACCESS_TOKEN='\(access)'\n")
        #expect(
            await h.run(["export-env", "alice", "--format", "fish"]).out == "set -gx WEBEX_ACCESS_TOKEN '\(access)';\n")
        #expect(await h.run(["env", "alice", "--format", "dotenv"]).out == "WEBEX_ACCESS_TOKEN=\(access)\n")
        let json = await h.run(["env", "alice", "--format", "json"]).out
        #expect(
            try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String] == [
                "WEBEX_ACCESS_TOKEN": access
            ])
        #expect(await h.run(["token", "alice"]).out == access + "\n")
    }

    @Test func integrationVariableIsUsed() async throws {
        let h = Harness()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "add", "w", "--client-id", "C", "--redirect-uri", "https://e.com/cb", "--scopes", "a", "--env-var",
                "MY_TOKEN", "--client-secret-stdin",
            ], stdin: "s")
        try await h.expectOK(["import", "bot", "--integration", "w"], stdin: tokenJSON(access: "tok", refresh: "r"))
        #expect(await h.run(["env", "bot"]).out == "export MY_TOKEN='tok'\n")
    }

    @Test func shellQuotingOfAwkwardValues() throws {
        #expect(EnvExport.shellQuoted("a'b") == #"'a'\''b'"#)
        #expect(EnvExport.shellQuoted("$HOME `x` \"q\"") == #"'$HOME `x` "q"'"#)
        #expect(EnvExport.fishQuoted(#"a'b\c"#) == #"'a\'b\\c'"#)
        #expect(throws: CLIError.self) { try EnvExport.render([("V", "a\nb")], format: .sh) }
        #expect(throws: CLIError.self) { try EnvExport.render([("V", "a\0b")], format: .sh) }
        #expect(throws: CLIError.self) { try EnvExport.render([("BAD NAME", "x")], format: .sh) }
    }

    @Test func expiredAccessTokenIsAnErrorNotPrinted() async throws {
        let (h, access, _) = try await Harness.withAccount(expiresIn: 60)
        h.now = h.now.addingTimeInterval(61)
        for command in [["env", "alice"], ["token", "alice"]] {
            let result = await h.run(command)
            #expect(result.code == 6, "\(command)")  // the refresh could not reach the provider
            #expect(result.out.isEmpty)
            #expect(!result.err.contains(access))
            #expect(result.err.contains("expired and refreshing it failed"))
            #expect(result.err.contains("tokenvault: hint:"))
        }
        let onlyAccess = "AT_" + randomToken()
        try await h.expectOK(
            ["import", "norefresh", "--integration", "webex1"],
            stdin: tokenJSON(access: onlyAccess, refresh: nil, expiresIn: 60))
        h.now = h.now.addingTimeInterval(61)
        for command in [["env", "norefresh"], ["token", "norefresh"]] {
            let result = await h.run(command)
            #expect(result.code == 5, "\(command)")
            #expect(result.out.isEmpty)
            // The expired token of this account (not alice's, which this error could never contain).
            #expect(!result.err.contains(onlyAccess), "\(command) printed the expired access token")
            #expect(result.err.contains("expired"))
            #expect(result.err.contains("tokenvault: hint:"))
        }
        let list = await h.run(["list"])
        #expect(list.out.contains("expired"))
    }

    @Test func unknownAccountIsExit4() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let result = await h.run(["env", "bob"])
        #expect(result.code == 4)
        #expect(
            result.err
                == "tokenvault: error: no account named 'bob'\ntokenvault: hint: 'tokenvault list' shows the accounts\n"
        )
    }
}

@Suite struct ListTests {
    @Test func listNeedsNoPassphraseAndShowsStates() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try await h.expectOK(
            ["import", "soon", "--integration", "webex1"],
            stdin: tokenJSON(access: "a2", refresh: "r2", expiresIn: 3600))
        try await h.expectOK(
            ["import", "rtsoon", "--integration", "webex1"],
            stdin: tokenJSON(access: "a3", refresh: "r3", refreshExpiresIn: 86_400 * 3))
        let result = await h.run(["status"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(result.code == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("ACCOUNT"))
        #expect(lines.first { $0.hasPrefix("alice ") }?.hasSuffix("ok") == true)
        #expect(lines.first { $0.hasPrefix("soon ") }?.hasSuffix("expiring") == true)
        #expect(lines.first { $0.hasPrefix("rtsoon ") }?.hasSuffix("expiring") == true)
        #expect(lines.first { $0.hasPrefix("alice ") }?.contains("13d 23h") == true)
    }
}

@Suite struct RevokeTests {
    @Test func revokeRemovesSealedBytesFromFileAndWAL() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let sealed = try sealedValues(h, account: "alice")
        #expect(sealed.count == 2)
        let result = await h.run(["revoke", "alice", "--local"])
        #expect(result.code == 0, "\(result.err)")
        for (suffix, data) in h.vaultBytes() {
            for value in sealed {
                #expect(data.range(of: Data(value)) == nil, "sealed bytes still in vault.db\(suffix)")
            }
        }
        #expect(await h.run(["token", "alice"]).code == 4)
        let audit = await h.run(["audit", "alice", "--json"])
        #expect(audit.out.contains("\"revoked\""))
        #expect(await h.run(["audit", "--verify"]).code == 0)
    }

    /// The harness's provider is unreachable (nothing listens on 127.0.0.1:9). README: tokenvault then deletes the
    /// local pair (its sealed bytes gone from the file and the WAL), audits `revoked`, warns, says how to revoke,
    /// and exits 6 (the tokens stay valid at the provider).
    @Test func revokeWithTheProviderUnreachableRemovesThePairAuditsAndWarns() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let sealed = try sealedValues(h, account: "alice")
        #expect(sealed.count == 2)
        let result = await h.run(["revoke", "alice"])
        // The provider cannot be reached: removed locally, said, and exit 6 (the tokens stay valid at
        // the provider, which a script must learn from the status).
        #expect(result.code == 6, "\(result.err)")
        #expect(result.err.contains("Removed the token pair of 'alice' from the vault."))
        #expect(result.err.contains("not revoked at the provider"))
        #expect(result.err.contains("stay valid there until they expire"))
        #expect(result.err.contains("tokenvault: hint: to revoke at Webex"), "\(result.err)")
        for (suffix, data) in h.vaultBytes() {
            for value in sealed {
                #expect(data.range(of: Data(value)) == nil, "sealed bytes still in vault.db\(suffix)")
            }
        }
        #expect(try sealedValues(h, account: "alice").isEmpty)
        #expect(await h.run(["token", "alice"]).code == 4)
        let audit = await h.run(["audit", "alice", "--json"])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(audit.out.utf8)) as? [[String: Any]])
        let last = try #require(entries.last)
        #expect(last["event"] as? String == "revoked")
        #expect(last["trigger"] as? String == "revoke")
        #expect(last["outcome"] as? String == "removed locally; revoking at the provider failed")
        #expect(await h.run(["audit", "--verify"]).code == 0)
    }
}

@Suite struct PasswdTests {
    @Test func passwdChangesOnlyItsKeySlot() async throws {
        let (h, access, _) = try await Harness.withAccount()
        let before = try sealedValues(h, account: "alice")
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        _ = "new passphrase\n".withCString { write(fds[1], $0, strlen($0)) }
        close(fds[1])
        // No `defer { close(fds[0]) }`: the command closes the descriptor it read the passphrase from, and closing
        // the number again would close whatever a parallel test opened under it meanwhile (an SQLite vault's file:
        // the occasional "disk I/O error" of these tests).
        let result = await h.run(["passwd", "--new-passphrase-fd", String(fds[0])])
        #expect(result.code == 0, "\(result.err)")
        #expect(try sealedValues(h, account: "alice") == before)
        #expect(await h.run(["token", "alice"]).code == 3)
        #expect(
            await h.run(["token", "alice"], environment: ["TOKENVAULT_PASSPHRASE": "new passphrase"]).out == access
                + "\n")
    }

    @Test func passwdOnTerminalAsksTwice() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let access = try #require(await h.run(["token", "alice"]).out.split(separator: "\n").first.map(String.init))
        let terminal = ScriptedTerminal([Harness.passphrase, "n1", "n1"])
        let result = await h.run(["passwd"], terminal: terminal, environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(result.code == 0, "\(result.err)")
        #expect(terminal.prompts.count == 3)
        // The new passphrase opens the vault and the old one no longer does.
        let new = await h.run(["token", "alice"], environment: ["TOKENVAULT_PASSPHRASE": "n1"])
        #expect(new.code == 0, "\(new.err)")
        #expect(new.out == access + "\n")
        let old = await h.run(["token", "alice"], environment: ["TOKENVAULT_PASSPHRASE": Harness.passphrase])
        #expect(old.code == 3)
        #expect(old.out.isEmpty)
    }
}

/// The sealed secret columns of an account, read straight from SQLite.
func sealedValues(_ h: Harness, account: String) throws -> [[UInt8]] {
    let queue = try DatabaseQueue(path: h.vaultPath)
    defer { try? queue.close() }
    return try queue.read { db in
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT access_token_sealed, refresh_token_sealed FROM account WHERE name = ?",
                arguments: [account])
        else { return [] }
        return [row[0] as Data?, row[1] as Data?].compactMap { $0.map { [UInt8]($0) } }
    }
}
