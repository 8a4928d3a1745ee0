import Foundation
import GRDB
import Testing
import TokenVaultTestSupport
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// Edits the vault file with plain SQL, as an attacker or a damaged disk would.
func tamper(_ h: Harness, _ sql: String, _ arguments: StatementArguments = []) throws {
    let queue = try DatabaseQueue(path: h.vaultPath)
    defer { try? queue.close() }
    try queue.write { try $0.execute(sql: sql, arguments: arguments) }
}

@Suite struct TamperTests {
    @Test func everyBitFlipOfASealedTokenIsDetected() async throws {
        let (h, access, _) = try await Harness.withAccount()
        let sealed = try sealedValues(h, account: "alice")[0]
        // Every byte, one bit position varying with the byte (all 8 bits are covered by the crypto module's own test).
        for index in sealed.indices {
            var flipped = sealed
            flipped[index] ^= UInt8(1 << (index % 8))
            try tamper(h, "UPDATE account SET access_token_sealed = ? WHERE name = 'alice'", [Data(flipped)])
            let result = await h.run(["token", "alice"])
            #expect(result.code == 7, "flip at byte \(index) not detected")
            #expect(result.err.contains("access token of account 'alice'"))
            #expect(!result.out.contains(access))
        }
        for length in [0, 1, 24, sealed.count - 1] {
            try tamper(
                h, "UPDATE account SET access_token_sealed = ? WHERE name = 'alice'", [Data(sealed.prefix(length))])
            #expect(await h.run(["token", "alice"]).code == 7, "truncation to \(length) not detected")
        }
    }

    @Test func sealedValueMovedToAnotherAccountOrColumnFailsToOpen() async throws {
        let (h, accessA, _) = try await Harness.withAccount()
        try await h.expectOK(
            ["import", "bob", "--integration", "webex1"], stdin: tokenJSON(access: "bob-access", refresh: "bob-refresh")
        )
        let alice = try sealedValues(h, account: "alice")
        // alice's access token into bob's row
        try tamper(h, "UPDATE account SET access_token_sealed = ? WHERE name = 'bob'", [Data(alice[0])])
        let moved = await h.run(["token", "bob"])
        #expect(moved.code == 7)
        #expect(moved.err.contains("account 'bob'"))
        #expect(!moved.out.contains(accessA))
        // alice's refresh token into her own access column
        try tamper(h, "UPDATE account SET access_token_sealed = ? WHERE name = 'alice'", [Data(alice[1])])
        #expect(await h.run(["token", "alice"]).code == 7)
    }

    @Test func swappedAccountNamesAreDetected() async throws {
        let (h, accessA, _) = try await Harness.withAccount()
        try await h.expectOK(
            ["import", "bob", "--integration", "webex1"], stdin: tokenJSON(access: "bob-access", refresh: "bob-refresh")
        )
        try tamper(
            h,
            """
            UPDATE account SET name = 'tmp' WHERE name = 'alice';
            UPDATE account SET name = 'alice' WHERE name = 'bob';
            UPDATE account SET name = 'bob' WHERE name = 'tmp';
            """)
        let result = await h.run(["token", "bob"])
        #expect(result.code == 7, "\(result.err)")
        #expect(!result.out.contains(accessA))
        #expect(await h.run(["token", "alice"]).code == 7)
    }

    @Test func redirectedAPIBaseIsDetectedBeforeAnythingIsSent() async throws {
        let (h, _, _) = try await Harness.withAccount(expiresIn: 60)
        try tamper(h, "UPDATE integration SET api_base = 'http://127.0.0.1:1/v1'")
        h.now = h.now.addingTimeInterval(120)
        let result = await h.run(["refresh", "alice"])
        #expect(result.code == 7, "\(result.err)")
        #expect(result.err.contains("client secret of integration 'webex1'"))
    }

    @Test func absurdKDFParametersAreRefusedBeforeTheKDFRuns() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try tamper(h, "UPDATE key_slot SET kdf_memlimit = ?", [Int64(64) << 30])
        let started = Date()
        let result = await h.run(["token", "alice"])
        #expect(result.code == 7)
        #expect(result.err.contains("tokenvault: error:"))
        // A 64 GiB Argon2id run would take minutes and likely fail to allocate; refusing takes milliseconds.
        #expect(Date().timeIntervalSince(started) < 5)
        try tamper(h, "UPDATE key_slot SET kdf_memlimit = 8192, kdf_algorithm = 'scrypt'")
        let unknown = await h.run(["token", "alice"])
        #expect(unknown.code == 7)
        #expect(unknown.err.contains("scrypt"))
    }

    /// The key slot's three sealed columns (the secret key with the pin it keeps; the wrap with its certificate
    /// count). A flip in the secret key's envelope cannot be told from a wrong
    /// passphrase (both are a failed unwrap); once that opens, the passphrase is known to be right, so a flip in the
    /// master key's box or in the public key (or its MAC) is damage, exit 7, never "wrong passphrase".
    @Test func keySlotBitFlipsAreDetected() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let queue = try DatabaseQueue(path: h.vaultPath)
        let stored = try await queue.read { db in
            try ["secret_key_sealed", "master_key_sealed", "public_key"].map { column in
                (column, try [UInt8](Data.fetchOne(db, sql: "SELECT \(column) FROM key_slot WHERE name = 'main'")!))
            }
        }
        try queue.close()
        for (column, bytes) in stored {
            #expect(
                bytes.count == ["secret_key_sealed": 105, "master_key_sealed": 86, "public_key": 64][column],
                "\(column)")
            for index in stride(from: 0, to: bytes.count, by: 5) {
                var flipped = bytes
                flipped[index] ^= 0x10
                try tamper(h, "UPDATE key_slot SET \(column) = ? WHERE name = 'main'", [Data(flipped)])
                let result = await h.run(["token", "alice"])
                let accepted: [Int32] = column == "secret_key_sealed" ? [3, 7] : [7]
                #expect(
                    accepted.contains(result.code), "\(column) flipped at \(index): exit \(result.code) \(result.err)")
            }
            try tamper(h, "UPDATE key_slot SET \(column) = ? WHERE name = 'main'", [Data(bytes)])
            #expect(await h.run(["token", "alice"]).code == 0)
        }
        // The header's v1-v3 envelope is not read any more: whatever it holds, the vault opens through its slot.
        try tamper(h, "UPDATE vault_meta SET master_key_sealed = randomblob(73), kdf_memlimit = 1")
        #expect(await h.run(["token", "alice"]).code == 0)
        // No slot at all: nothing opens it, and it says why.
        try tamper(h, "DELETE FROM key_slot")
        let none = await h.run(["token", "alice"])
        #expect(none.code == 7 && none.err.contains("no key slot"), "\(none.err)")
    }
}

@Suite struct AuditVerifyTests {
    func vaultWithHistory() async throws -> Harness {
        let (h, _, _) = try await Harness.withAccount()
        for name in ["bob", "carol", "dave"] {
            try await h.expectOK(
                ["import", name, "--integration", "webex1"], stdin: tokenJSON(access: "a-\(name)", refresh: "r-\(name)")
            )
        }
        try await h.expectOK(["revoke", "carol", "--local"])
        return h
    }

    @Test func intactLogVerifies() async throws {
        let h = try await vaultWithHistory()
        let result = await h.run(["audit", "--verify"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.out.hasPrefix("audit log intact: 5 entries"))
        let table = await h.run(["audit", "bob"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(table.out.split(separator: "\n").count == 2)
    }

    @Test func editedEntryIsDetected() async throws {
        let h = try await vaultWithHistory()
        try tamper(h, "DROP TRIGGER audit_entry_no_update; UPDATE audit_entry SET outcome = 'fine' WHERE seq = 3")
        let result = await h.run(["audit", "--verify"])
        #expect(result.code == 7)
        #expect(result.err.contains("entry 3"))
    }

    @Test func deletedEntryIsDetected() async throws {
        let h = try await vaultWithHistory()
        try tamper(h, "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry WHERE seq = 2")
        let result = await h.run(["audit", "--verify"])
        #expect(result.code == 7)
        #expect(result.err.contains("entry 2 is missing"))
    }

    @Test func removingTheNewestEntriesIsDetected() async throws {
        let h = try await vaultWithHistory()
        try tamper(h, "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry WHERE seq >= 4")
        let result = await h.run(["audit", "--verify"])
        #expect(result.code == 7)
        #expect(result.err.contains("newest entries were removed"))
        // And a later append does not paper over the gap.
        try await h.expectOK(
            ["import", "erin", "--integration", "webex1"], stdin: tokenJSON(access: "a-e", refresh: "r-e"))
        #expect(await h.run(["audit", "--verify"]).code == 7)
    }

    @Test func emptiedLogIsDetected() async throws {
        let h = try await vaultWithHistory()
        try tamper(h, "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry")
        #expect(await h.run(["audit", "--verify"]).code == 7)
    }

    @Test func reorderedEntriesAreDetected() async throws {
        let h = try await vaultWithHistory()
        try tamper(
            h,
            """
            DROP TRIGGER audit_entry_no_update;
            UPDATE audit_entry SET seq = 100 WHERE seq = 2;
            UPDATE audit_entry SET seq = 2 WHERE seq = 3;
            UPDATE audit_entry SET seq = 3 WHERE seq = 100;
            """)
        let result = await h.run(["audit", "--verify", "--json"])
        #expect(result.code == 7)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(report["intact"] as? Bool == false)
    }
}

@Suite struct HelpTests {
    @Test func everyCommandHasHelp() async throws {
        let h = Harness()
        // Every subcommand the parser knows, so the list cannot drift from the tool.
        let commands = TokenVault.configuration.subcommands.map { ($0._commandName, $0.configuration.abstract) }
        #expect(commands.count >= 16)
        for name in ["authorize", "refresh", "refresh-all", "exec", "whoami"] {
            #expect(commands.contains { $0.0 == name }, "\(name) is not a subcommand")
        }
        for (command, abstract) in commands {
            let result = await h.run([command, "--help"])
            #expect(result.code == 0, "\(command)")
            #expect(result.out.contains("USAGE: tokenvault \(command)"), "\(command)")
            #expect(!abstract.isEmpty, "\(command) has no abstract")
            #expect(
                result.out.contains("OVERVIEW: " + (abstract.split(separator: " ").first.map(String.init) ?? "")),
                "\(command)")
        }
        // The version, the commit it was built from, and the libsodium and SQLite it runs with.
        let version = await h.run(["--version"]).out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(version.count == 3 && version[2].isEmpty, "\(version)")
        #expect(
            version.first?.wholeMatch(of: /tokenvault (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,40}(-dirty)?|unknown)\)/)?
                .output.1 == Substring(TokenVault.version))
        #expect(
            version.dropFirst().first?.wholeMatch(of: /libsodium \d+\.\d+\.\d+, SQLite 3\.\d+\.\d+/) != nil,
            "\(version)")
        let versionFile = try String(
            contentsOf: URL(filePath: #filePath).deletingLastPathComponent().appending(path: "../../VERSION"),
            encoding: .utf8)
        #expect(TokenVault.version + "\n" == versionFile)
        let bad = await h.run(["frobnicate"])
        #expect(bad.code == 2)
    }
}
