import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

/// Runs SQL on a vault file with python3's sqlite3 (as an attacker with write access to the file would);
/// returns the rows of the last statement, one per line, columns separated by '|'.
@discardableResult
func sqlite(_ path: String, _ sql: String) throws -> String {
    guard let python3 else { throw TestFailure("python3 is needed to edit the vault file") }
    let script = """
        import sqlite3, sys
        c = sqlite3.connect(sys.argv[1])
        statements = [s for s in sys.argv[2].split(';') if s.strip()]
        for s in statements[:-1]:
            c.execute(s)
        for row in c.execute(statements[-1]):
            print('|'.join(str(v) for v in row))
        c.commit()
        """
    let result = try runProcess(
        python3, ["-c", script, path, sql], environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"])
    guard result.code == 0 else { throw TestFailure("sqlite3 failed: \(result.err)") }
    return result.out.trimmingCharacters(in: .newlines)
}

/// Tools the tests below need from the machine. Where one is missing they are skipped with the reason, except
/// under CI=true, where a skip would hide a regression: there they run and fail.
enum MachineSupport {
    static let isCI = MachineTools.isCI
    static let setpriv = MachineTools.find("setpriv")
    static let prlimit = MachineTools.find("prlimit")
    static let otherUID = 4343

    /// A second local user: root can become uid 4343 with setpriv.
    static let secondUser: Bool = {
        guard let setpriv, geteuid() == 0 else { return false }
        let result = try? runProcess(
            setpriv, ["--reuid=\(otherUID)", "--regid=\(otherUID)", "--clear-groups", "true"],
            environment: ["PATH": "/usr/bin:/bin"])
        return result?.code == 0
    }()
}

extension OAuthBinaryTests {
    /// The lock directory is not trusted blindly, with the built binary (a second uid where the machine allows).
    @Suite struct LockDirectory {
        // MARK: The lock directory

        @Test func twoSymlinkedPathsToOneVaultShareItsLocks() async throws {
            try await SandboxWorkspace.with(configure: { $0.latency = 0.2 }) { s in
                let names = (0..<12).map { "s\($0)" }
                let pairs = try await s.importAccounts(names)
                // A second name for the vault file (a symlink elsewhere): SQLite follows it to the same file.
                let alias = s.ws.dir + "/alias.db"
                try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: s.ws.vault)
                let arguments = ["refresh-all", "--json", "--skip-recent", "0", "--concurrency", "12"]
                let (a, b) = try await s.runTogether(
                    arguments + ["--vault", s.ws.vault], arguments + ["--vault", alias])
                #expect(a.code == 0, "\(a.err)")
                #expect(b.code == 0, "\(b.err)")
                let twice = await s.refreshTokensNotUsedOnce(pairs)
                #expect(twice.isEmpty, "refresh tokens not sent exactly once: \(twice)")
                #expect(await s.sandbox.counters.successfulRefreshes == names.count)
                #expect(
                    (jsonObject(a.out)["refreshed"] as? Int ?? -1) + (jsonObject(b.out)["refreshed"] as? Int ?? -1)
                        == names.count)
                #expect(!FileManager.default.fileExists(atPath: alias + ".locks"))
                #expect(FileManager.default.fileExists(atPath: s.ws.vault + ".locks"))
            }
        }

        @Test func aLockDirectoryOthersCanWriteOrASymlinkIsRefusedAtOnce() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                let locks = s.ws.vault + ".locks"
                mkdir(locks, 0o700)
                chmod(locks, 0o777)
                let started = Date()
                let open = try await s.run(["refresh-all", "--skip-recent", "0"], timeout: 30)
                #expect(open.code == 1, "\(open.err)")
                #expect(
                    open.err.contains(
                        "tokenvault: error: refusing the lock \(locks): it is writable by group or others (mode 777)"),
                    "\(open.err)")
                #expect(open.err.contains("tokenvault: hint:"))
                #expect(Date().timeIntervalSince(started) < 10)
                // A symlink in its place (to a directory that would otherwise pass).
                rmdir(locks)
                let elsewhere = s.ws.dir + "/elsewhere"
                mkdir(elsewhere, 0o700)
                try FileManager.default.createSymbolicLink(atPath: locks, withDestinationPath: elsewhere)
                let linked = try await s.run(["refresh", "alice"], timeout: 30)
                #expect(linked.code == 1, "\(linked.err)")
                #expect(linked.err.contains("refusing the lock \(locks): it is a symbolic link"), "\(linked.err)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
                // A lock file replaced by a symlink inside a private directory.
                unlink(locks)
                #expect(try await s.run(["refresh", "alice"]).code == 0)
                let id = try sqlite(s.ws.vault, "SELECT id FROM account WHERE name = 'alice'")
                let lockFile = "\(locks)/\(id).lock"
                unlink(lockFile)
                try FileManager.default.createSymbolicLink(
                    atPath: lockFile, withDestinationPath: elsewhere + "/planted")
                let file = try await s.run(["refresh", "alice"], timeout: 30)
                #expect(file.code == 1, "\(file.err)")
                #expect(file.err.contains("refusing the lock \(lockFile): it is a symbolic link"), "\(file.err)")
                #expect(!FileManager.default.fileExists(atPath: elsewhere + "/planted"))
            }
        }

        @Test(
            .enabled(if: MachineSupport.secondUser || MachineSupport.isCI, "needs root and setpriv to run a second uid")
        )
        func anotherUsersLockInASharedDirectoryIsRefusedNotWaitedOn() async throws {
            try #require(
                MachineSupport.secondUser,
                "CI=true: a second uid (setpriv --reuid=\(MachineSupport.otherUID)) must be available")
            try await SandboxWorkspace.with { s in
                // The vault in a shared directory (sticky, writable by all, as /tmp).
                let shared = s.ws.dir + "/shared"
                mkdir(shared, 0o700)
                chmod(shared, 0o1777)
                let vault = shared + "/vault.db"
                s.ws.environment["TOKENVAULT_VAULT"] = vault
                s.ws.environment["XDG_DATA_HOME"] = nil
                let created = try await s.run(["init", "--kdf", "interactive"])
                #expect(created.code == 0, "\(created.err)")
                try await s.addIntegration()
                try await s.importAccounts(["alice"])
                let id = try sqlite(vault, "SELECT id FROM account WHERE name = 'alice'")
                // The other user pre-creates the lock directory 0777 and holds the account's lock file.
                let holder = try s.ws.write(
                    "hold.py",
                    """
                    import fcntl, os, sys
                    d = sys.argv[1]
                    os.mkdir(d)
                    os.chmod(d, 0o777)
                    fd = os.open(os.path.join(d, sys.argv[2] + ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    print("held", flush=True)
                    sys.stdin.read()
                    """, mode: 0o755)
                let other = try BackgroundProcess(
                    MachineSupport.setpriv!,
                    [
                        "--reuid=\(MachineSupport.otherUID)", "--regid=\(MachineSupport.otherUID)", "--clear-groups",
                        python3!, holder, vault + ".locks", id,
                    ], environment: ["PATH": "/usr/bin:/bin"])
                let deadline = Date().addingTimeInterval(15)
                while !other.out.contains("held"), !other.isFinished, Date() < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                try #require(other.out.contains("held"), "the other user's process did not take the lock: \(other.err)")
                let started = Date()
                let result = try await s.run(["refresh-all", "--skip-recent", "0"], timeout: 30)
                #expect(result.code == 1, "\(result.err)")
                #expect(Date().timeIntervalSince(started) < 10)
                #expect(
                    result.err.contains(
                        "refusing the lock \(vault).locks: it belongs to uid \(MachineSupport.otherUID), not to you"),
                    "\(result.err)")
                // The shared directory itself is worth a warning, once per command.
                let warnings =
                    result.err.components(
                        separatedBy:
                            "tokenvault: warning: the vault's directory \(shared) is writable by group or others"
                    ).count - 1
                #expect(warnings == 1, "\(result.err)")
                let refresh = try await s.run(["refresh", "alice"], timeout: 30)
                #expect(refresh.code == 1, "\(refresh.err)")
                #expect(refresh.err.components(separatedBy: "the vault's directory").count - 1 == 1, "\(refresh.err)")
                other.closeStdin()
                other.signal(SIGTERM)
                _ = try await offPool { try other.wait(timeout: 10) }
            }
        }
    }
}
