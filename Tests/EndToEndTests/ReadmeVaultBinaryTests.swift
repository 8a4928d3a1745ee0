import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

/// The bytes of a file, or empty when it is missing.
func fileBytes(_ path: String) -> Data { (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data() }

/// The sealed blobs of an account (access and refresh), as bytes, read with SQL.
func sealedBlobs(_ vault: String, account: String) throws -> [Data] {
    let hex = try sqlite(
        vault, "SELECT hex(access_token_sealed), hex(refresh_token_sealed) FROM account WHERE name = '\(account)'")
    return hex.split(separator: "|").map { field in
        var data = Data()
        var index = field.startIndex
        while index < field.endIndex {
            let next = field.index(index, offsetBy: 2)
            data.append(UInt8(field[index..<next], radix: 16)!)
            index = next
        }
        return data
    }
}

/// True when none of `blobs` occurs in the vault file or its write-ahead log.
func sealedBytesGone(_ vault: String, _ blobs: [Data]) -> Bool {
    let files = [fileBytes(vault), fileBytes(vault + "-wal")]
    return blobs.allSatisfy { blob in !blob.isEmpty && files.allSatisfy { $0.range(of: blob) == nil } }
}

extension OAuthBinaryTests {
    /// README promises about the vault file, import, audit, passwd and remove-integration that no other test checked.
    @Suite struct ReadmeVault {
        /// Exit 1: a vault written by a newer schema (refused, not modified), a file-system error.
        /// Exit 7: a damaged database.
        @Test func newerSchemaFileSystemErrorAndDamage() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                let vault = s.ws.vault
                try sqlite(vault, "INSERT INTO grdb_migrations (identifier) VALUES ('v999_from_the_future')")
                let saved = fileBytes(vault)
                for command in [["list"], ["token", "alice"], ["refresh-all"]] {
                    let newer = try await s.run(command)
                    #expect(newer.code == 1, "\(command): \(newer.err)")
                    #expect(newer.err.contains("was written by a newer tokenvault"), "\(newer.err)")
                }
                #expect(fileBytes(vault) == saved, "a newer vault was modified")
                #expect(!FileManager.default.fileExists(atPath: vault + "-wal") || fileBytes(vault + "-wal").isEmpty)
                #expect(await s.sandbox.counters.refreshGrants == 0)

                // A file-system error: the vault's directory is a regular file.
                let blocker = try s.ws.write("blocker", "not a directory")
                let fsError = try await s.run(["init", "--kdf", "interactive", "--vault", blocker + "/vault.db"])
                #expect(fsError.code == 1, "\(fsError.err)")
                #expect(fsError.err.hasPrefix("tokenvault: error: "), "\(fsError.err)")

                // A damaged database: a page of the account table overwritten (SQLite reports corruption).
                try sqlite(vault, "DELETE FROM grdb_migrations WHERE identifier = 'v999_from_the_future'")
                try await s.expectOK(["list"])
                let page = Int(try sqlite(vault, "SELECT rootpage FROM sqlite_master WHERE name = 'account'"))!
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: vault))
                try handle.seek(toOffset: UInt64((page - 1) * 4096))
                try handle.write(contentsOf: Data(repeating: 0xA5, count: 4096))
                try handle.close()
                for command in [["list"], ["token", "alice"]] {
                    let damaged = try await s.run(command)
                    #expect(damaged.code == 7, "\(command): \(damaged.err)")
                    #expect(damaged.err.hasPrefix("tokenvault: error: "), "\(damaged.err)")
                    #expect(!damaged.err.contains("Fatal error"))
                }
            }
        }

        /// `import --batch` checks every line first and stores all or nothing; input is checked before the
        /// passphrase is asked for.
        @Test func importBatchIsAllOrNothingAndCheckedBeforeThePassphrase() async throws {
            try await SandboxWorkspace.with { s in
                let good = try await importLines(s, [("one", 3600), ("two", 3600)])
                let lines = good.lines.split(separator: "\n").map(String.init)
                let bad =
                    lines[0] + "\n"
                    + #"{"account":"three","access_token":"has space","expires_in":3600,"token_type":"Bearer"}"# + "\n"
                    + lines[1] + "\n"
                let refused = try await s.run(["import", "--batch", "--integration", "webex"], stdin: bad)
                #expect(refused.code != 0, "\(refused.err)")
                #expect(try await s.listed().isEmpty, "a refused batch stored something")
                // Nothing audited either: 'one' is neither an account nor in the log (exit 4).
                #expect(try await s.run(["audit", "one", "--json"]).code == 4)
                // No passphrase source at all: bad input is reported as such, not as a missing passphrase (3).
                let noPassphrase: [String: String?] = ["TOKENVAULT_PASSPHRASE": nil]
                let unchecked = try await s.run(
                    ["import", "--batch", "--integration", "webex"], stdin: bad, environment: noPassphrase)
                #expect(unchecked.code == refused.code, "\(unchecked.err)")
                let garbage = try await s.run(
                    ["import", "one", "--integration", "webex"], stdin: "{not json", environment: noPassphrase)
                #expect(garbage.code == 2, "\(garbage.err)")
                // Good input without a passphrase source: now it is the passphrase.
                let valid = try await s.run(
                    ["import", "--batch", "--integration", "webex"], stdin: good.lines, environment: noPassphrase)
                #expect(valid.code == 3, "\(valid.err)")
                try await s.expectOK(["import", "--batch", "--integration", "webex"], stdin: good.lines)
                #expect(try await s.listed().keys.sorted() == ["one", "two"])
                s.expectNoSecrets(refused.err + unchecked.err, also: [good.pairs["one"]!.access])
            }
        }

        /// `audit --verify --json`: entries, intact, problems, head, head_seq.
        @Test func auditVerifyJSONFields() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice", "bob"])
                let result = try await s.run(["audit", "--verify", "--json"])
                #expect(result.code == 0, "\(result.err)")
                let report = try requireJSON(result.out)
                #expect(report["entries"] as? Int == 2, "\(report)")
                #expect(report["intact"] as? Bool == true)
                #expect((report["problems"] as? [Any])?.isEmpty == true)
                #expect(report["head_seq"] as? Int == 2)
                let head = try #require(report["head"] as? String)
                #expect(head.count == 64 && head.allSatisfy(\.isHexDigit), "\(head)")
                #expect(try await s.run(["audit", "--verify", "--expect-head", head]).code == 0)
                // A changed entry: intact false, the problem listed, exit 7.
                try sqlite(
                    s.ws.vault,
                    "DROP TRIGGER audit_entry_no_update; UPDATE audit_entry SET outcome = 'edited' WHERE seq = 1")
                let edited = try await s.run(["audit", "--verify", "--json"])
                #expect(edited.code == 7, "\(edited.err)")
                let broken = try requireJSON(edited.out)
                #expect(broken["intact"] as? Bool == false)
                #expect((broken["problems"] as? [String])?.isEmpty == false, "\(broken)")
            }
        }

        /// `passwd --kdf` changes the cost stored in the vault, and the new passphrase opens it.
        @Test func passwdChangesTheKDFLevel() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["alice"])
                #expect(
                    try sqlite(s.ws.vault, "SELECT kdf_opslimit, kdf_memlimit FROM key_slot WHERE name = 'main'")
                        == "2|67108864")
                let newPassphrase = "new passphrase \(UUID().uuidString.prefix(6))"
                let newFile = try s.ws.write("new-pass", newPassphrase + "\n")
                let sh = "exec \"$0\" passwd --kdf moderate --new-passphrase-fd 3 3< \"$1\""
                let ws = s.ws
                let changed = try await offPool {
                    try runProcess("/bin/sh", ["-c", sh, tokenvaultBinary, newFile], environment: ws.environment)
                }
                #expect(changed.code == 0, "\(changed.err)")
                #expect(
                    try sqlite(s.ws.vault, "SELECT kdf_opslimit, kdf_memlimit FROM key_slot WHERE name = 'main'")
                        == "3|268435456")
                #expect(try await s.run(["token", "alice"]).code == 3, "the old passphrase still opens it")
                let token = try await s.run(["token", "alice"], environment: ["TOKENVAULT_PASSPHRASE": newPassphrase])
                #expect(token.code == 0, "\(token.err)")
                #expect(token.out == pairs["alice"]!.access + "\n")
            }
        }

        /// remove-integration: no passphrase without accounts or without --force; with --force the passphrase,
        /// then every account's sealed bytes are gone and each is audited as revoked.
        @Test func removeIntegrationNeedsThePassphraseOnlyWithForce() async throws {
            try await SandboxWorkspace.with { s in
                let noPassphrase: [String: String?] = ["TOKENVAULT_PASSPHRASE": nil]
                // An unused integration goes without a passphrase.
                try await s.expectOK(
                    [
                        "add", "spare", "--client-id", "Cspare", "--redirect-uri", s.redirect, "--scopes", "spark:kms",
                        "--api-base", s.base.absoluteString, "--client-secret-stdin",
                    ], stdin: "spare-secret")
                let unused = try await s.run(["remove-integration", "spare"], environment: noPassphrase)
                #expect(unused.code == 0, "\(unused.err)")
                let pairs = try await s.importAccounts(["alice", "bob"])
                let blobs = try sealedBlobs(s.ws.vault, account: "alice") + sealedBlobs(s.ws.vault, account: "bob")
                let inUse = try await s.run(["remove-integration", "webex"], environment: noPassphrase)
                #expect(inUse.code == 2, "\(inUse.err)")
                let forcedWithout = try await s.run(
                    ["remove-integration", "webex", "--force"], environment: noPassphrase)
                #expect(forcedWithout.code == 3, "\(forcedWithout.err)")
                #expect(try await s.listed().count == 2)
                let forced = try await s.run(["remove-integration", "webex", "--force"])
                #expect(forced.code == 0, "\(forced.err)")
                #expect(try await s.listed().isEmpty)
                for account in ["alice", "bob"] {
                    let last = try await s.auditEvents(account).last
                    #expect(last?["event"] as? String == "revoked", "\(account): \(last ?? [:])")
                    #expect(last?["trigger"] as? String == "remove-integration", "\(account): \(last ?? [:])")
                }
                #expect(try await s.run(["audit", "--verify"]).code == 0)
                #expect(sealedBytesGone(s.ws.vault, blobs), "sealed bytes are still in the vault file or its WAL")
                #expect(await s.sandbox.requests(to: "DELETE /v1/authorizations") == 0)
                s.expectNoSecrets(forced.err, also: [pairs["alice"]!.access, pairs["bob"]!.refresh])
            }
        }

        /// `$XDG_DATA_HOME` unset or relative: `~/.local/share/tokenvault/vault.db`.
        @Test func xdgDataHomeUnsetOrRelativeFallsBackToHome() throws {
            for xdg in [nil, "relative/data"] as [String?] {
                let ws = Workspace()
                ws.environment["XDG_DATA_HOME"] = xdg
                // Run from the workspace, so that a relative XDG_DATA_HOME taken as given would land inside it.
                let created = try runProcess(
                    "/bin/sh", ["-c", "cd \"$1\" && exec \"$0\" init --kdf interactive", tokenvaultBinary, ws.dir],
                    environment: ws.environment)
                #expect(created.code == 0, "\(created.err)")
                #expect(
                    FileManager.default.fileExists(atPath: ws.dir + "/.local/share/tokenvault/vault.db"),
                    "XDG_DATA_HOME=\(xdg ?? "unset")")
                #expect(!FileManager.default.fileExists(atPath: ws.dir + "/relative"))
            }
        }
    }
}
