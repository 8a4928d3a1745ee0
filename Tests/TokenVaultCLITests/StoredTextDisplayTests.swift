import Foundation
import GRDB
import Testing
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// Provider text reaches a person's terminal through `list` long after it was stored (an older
/// vault, or an edited file): it is cleaned again where it is shown.
@Suite struct StoredTextDisplayTests {
    @Test func listStripsTerminalEscapesFromStoredIdentities() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try tamper(h, "UPDATE account SET email = ?", ["x\u{1b}]0;pwned\u{07}\u{1b}[31mred@example.com\u{202e}moc"])
        let result = await h.run(["list"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(result.code == 0, "\(result.err)")
        #expect(
            !result.out.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 || $0.value == 0x202e },
            "\(result.out.debugDescription)")
        #expect(result.out.contains("red@example.com"))
    }
}

/// README (exit codes): an account lock held by another process past the timeout is exit 1, with the lock file
/// named and what to do. The real timeout is 300 s; the test holds the lock for a 1 s timeout.
@Suite struct LockTimeoutTests {
    @Test func aLockHeldPastTheTimeoutIsExit1() async throws {
        let (h, _, _) = try await Harness.withAccount(expiresIn: 60)
        h.lockTimeout = 1
        let queue = try DatabaseQueue(path: h.vaultPath)
        let id = try #require(
            try await queue.read { db in try String.fetchOne(db, sql: "SELECT id FROM account WHERE name = 'alice'") })
        try queue.close()
        let dir = FileAccountLock.directory(forVault: h.vaultPath)
        mkdir(dir, 0o700)
        let fd = open(dir + "/\(id).lock", O_RDWR | O_CREAT, 0o600)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let result = await h.run(["refresh", "alice"])
        #expect(result.code == 1, "\(result.err)")
        #expect(
            result.err.contains("account 'alice' stayed locked by another tokenvault process for 1 s"), "\(result.err)")
        #expect(result.err.contains("tokenvault: hint:"), "\(result.err)")
    }
}
