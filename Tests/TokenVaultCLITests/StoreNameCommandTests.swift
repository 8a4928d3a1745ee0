import Foundation
import GRDB
import Testing
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// Whoever can write the store (the vault file, a PostgreSQL administrator) plants terminal escapes, newlines and
/// `$(…)` in names and plain fields. No command may print them raw: a name that breaks the rule it was created
/// under is exit 7 naming the row by id, and every other plain field is cleaned as provider text is.
@Suite struct StoreNameCommandTests {
    /// Sets the terminal's clipboard (OSC 52), clears the screen, starts a new line and carries a command
    /// substitution a person might copy from a hint.
    static let hostile = "x\u{1b}]52;c;aGk=\u{07}\u{1b}[2J\u{9b}31m\u{202e}$(touch /tmp/tokenvault-pwned)\nfake: ok"

    static func id(_ h: Harness, _ sql: String) throws -> String {
        let queue = try DatabaseQueue(path: h.vaultPath)
        defer { try? queue.close() }
        return try queue.read { try String.fetchOne($0, sql: sql) ?? "" }
    }

    /// Nothing a terminal acts on: no C0 control but the line ends, no DEL, no C1 control, no bidi override.
    /// `names`: the output must not even hold the planted `$(…)` (a name is refused whole, so it cannot reach a
    /// hint); a cleaned plain field may keep it as text.
    static func expectClean(_ text: String, names: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
        let bad = text.unicodeScalars.filter {
            ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value) || (0x202a...0x202e).contains($0.value)
                || (0x2066...0x2069).contains($0.value)
        }
        #expect(
            bad.isEmpty, "printed raw: \(bad.map { String($0.value, radix: 16) }) in \(text.debugDescription)",
            sourceLocation: sourceLocation)
        #expect(
            !names || !text.contains("$(touch"), "a command substitution reached the output: \(text.debugDescription)",
            sourceLocation: sourceLocation)
    }

    @Test func anAccountNamePlantedInTheFileIsExit7NamingItsId() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let id = try Self.id(h, "SELECT id FROM account WHERE name = 'alice'")
        // Needs re-authorization, so that `check` would build its copy-paste hint from the name.
        try tamper(h, "UPDATE account SET name = ?, state = 'needs-reauth' WHERE name = 'alice'", [Self.hostile])
        for command in [
            ["list"], ["list", "--json"], ["list", "--format", "prometheus"], ["check"], ["check", "--json"],
            ["refresh-all"],
        ] {
            let result = await h.run(command)
            #expect(result.code == 7, "\(command): exit \(result.code) \(result.out) \(result.err)")
            #expect(result.err.contains(id), "\(command): \(result.err)")
            Self.expectClean(result.out + result.err, names: true)
        }
    }

    @Test func anIntegrationNamePlantedInTheFileIsExit7NamingItsId() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let id = try Self.id(h, "SELECT id FROM integration WHERE name = 'webex1'")
        try tamper(h, "UPDATE integration SET name = ? WHERE name = 'webex1'", [Self.hostile])
        for command in [["integrations"], ["integration", "list"], ["list"], ["check"]] {
            let result = await h.run(command)
            #expect(result.code == 7, "\(command): exit \(result.code) \(result.out) \(result.err)")
            #expect(result.err.contains(id), "\(command): \(result.err)")
            Self.expectClean(result.out + result.err, names: true)
        }
    }

    @Test func aKeySlotNamePlantedInTheFileIsExit7() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try tamper(h, "UPDATE key_slot SET name = ? WHERE name = 'main'", [Self.hostile])
        for command in [["keys", "list"], ["keys", "list", "--json"]] {
            let result = await h.run(command)
            #expect(result.code == 7, "\(command): exit \(result.code) \(result.out) \(result.err)")
            #expect(result.err.contains("key slot"), "\(command): \(result.err)")
            Self.expectClean(result.out + result.err, names: true)
        }
    }

    /// The audit log is evidence: an entry inserted behind tokenvault's back is shown (cleaned, one line) and
    /// fails `--verify`, whose words are cleaned too.
    @Test func plantedAuditFieldsArePrintedCleaned() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try tamper(
            h,
            """
            INSERT INTO audit_entry (seq, at, account, integration, event, trigger, outcome, detail, mac)
            VALUES ((SELECT MAX(seq) + 1 FROM audit_entry), ?, ?, ?, 'refreshed', ?, ?, ?, ?)
            """,
            [
                h.now.timeIntervalSince1970, Self.hostile, Self.hostile, Self.hostile, Self.hostile, Self.hostile,
                Data(repeating: 7, count: 32),
            ])
        let listed = await h.run(["audit"])
        #expect(listed.code == 0, "\(listed.err)")
        Self.expectClean(listed.out + listed.err)
        // A header, the import, and the planted entry: one line each.
        #expect(listed.out.split(separator: "\n").count == 3, "\(listed.out)")
        let verified = await h.run(["audit", "--verify"])
        #expect(verified.code == 7, "\(verified.err)")
        Self.expectClean(verified.out + verified.err)
    }

    /// `integrations` prints every plain field of an integration: each is cleaned.
    @Test func plantedIntegrationFieldsArePrintedCleaned() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try tamper(
            h,
            "UPDATE integration SET client_id = ?, redirect_uri = ?, scopes = ?, api_base = ?, env_var = ?, provider = ?",
            [Self.hostile, Self.hostile, Self.hostile, Self.hostile, Self.hostile, Self.hostile])
        let result = await h.run(["integrations"])
        Self.expectClean(result.out + result.err)
        #expect(result.out.split(separator: "\n").count == 2, "\(result.out)")
    }

    /// `list` prints the identity and scopes it keeps in plain text: cleaned, one line per account.
    @Test func plantedAccountFieldsArePrintedCleaned() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try tamper(
            h, "UPDATE account SET email = ?, display_name = ?, org_id = ?, granted_scopes = ?",
            [Self.hostile, Self.hostile, Self.hostile, Self.hostile])
        let result = await h.run(["list"])
        #expect(result.code == 0, "\(result.err)")
        Self.expectClean(result.out + result.err)
        #expect(result.out.split(separator: "\n").count == 2, "\(result.out)")
    }

    /// `check` quotes the newest failed refresh's audit detail: cleaned, and still one line per account.
    @Test func aPlantedAuditDetailInCheckIsCleaned() async throws {
        let (h, _, _) = try await Harness.withAccount()
        h.now = h.now.addingTimeInterval(2 * 86_400)
        try tamper(
            h,
            """
            INSERT INTO audit_entry (seq, at, account, integration, event, trigger, outcome, detail, mac)
            VALUES ((SELECT MAX(seq) + 1 FROM audit_entry), ?, 'alice', 'webex1', 'refresh-failed', 'refresh-all',
                    'failed, pair unchanged', ?, ?)
            """, [h.now.timeIntervalSince1970, Self.hostile, Data(repeating: 7, count: 32)])
        let result = await h.run(["check"])
        #expect(result.code == 5, "\(result.err)")
        #expect(result.out.contains("alice (webex1): refresh-failing"), "\(result.out)")
        Self.expectClean(result.out + result.err)
        #expect(result.out.split(separator: "\n").count == 1, "\(result.out)")
    }

    /// Every command a hint shows quotes its values for the shell: a name is one word, and whatever it holds is
    /// never run by a person who copies the command (with or without the quotes around it).
    @Test func hintsQuoteTheirValuesForTheShell() {
        #expect(
            Format.command("tokenvault authorize \("alice@example.com")") == "'tokenvault authorize alice@example.com'")
        #expect(Format.command("tokenvault authorize \("$(touch x)")") == "tokenvault authorize '$(touch x)'")
        #expect(Format.command("tokenvault revoke \("it's")") == #"tokenvault revoke 'it'\''s'"#)
        #expect(
            Format.command("tokenvault authorize \("a\u{1b}]52;c;aGk=\u{07}b")")
                == "tokenvault authorize 'a]52;c;aGk=b'")
        #expect(Format.command("tokenvault exec \("")") == "tokenvault exec ''")
        // The value quoted reads back as itself in a POSIX shell.
        for value in ["$(touch x)", "it's", "a b", "`id`", "x;y", "\\"] {
            let quoted = ShellCommand.word(value)
            let echoed = try? runShell("printf %s \(quoted)")
            #expect(echoed == value, "\(value) → \(quoted) → \(echoed ?? "nil")")
        }
        #expect(VaultError.needsReauthorization(account: "bob", reason: "x").hint == "run 'tokenvault authorize bob'")
    }

    func runShell(_ script: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
