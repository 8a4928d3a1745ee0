import Foundation
import GRDB
import ProviderSandbox
import Testing
import TokenVaultLab

/// What another local user can do to the agent from outside it: take its directory under `/tmp` first, and read
/// its command line for as long as it runs. The built binary, as a user runs it.
extension OAuthBinaryTests.Agent {
    /// Without `XDG_RUNTIME_DIR`, the agent's directory is `/tmp/tokenvault-agent-UID`, which any local user can
    /// make first. The victim's agent must still start (in a directory of their own, which `agent status` names),
    /// and commands must use it without a warning. Played with two uids: 4343 takes the directory, 4344 is the
    /// victim (the test runs as root, whose own directory other tests use).
    @Test func anAgentDirectoryTakenByAnotherUserIsNoObstacle() async throws {
        guard let setpriv = requireTool(otherUserRunner, "setpriv as root (to act as another user)") else { return }
        let victim = 4344
        try await SandboxWorkspace.with { s in
            try await s.importAccounts(["alice"])
            // A short home (a socket path has at most 107 bytes), the victim's own, holding a copy of the vault.
            let home = "/tmp/" + TestRun.name("tv-home") + String(UUID().uuidString.prefix(8)).lowercased()
            let taken = "/tmp/tokenvault-agent-\(victim)"
            try? FileManager.default.removeItem(atPath: taken)
            defer {
                try? FileManager.default.removeItem(atPath: home)
                try? FileManager.default.removeItem(atPath: taken)
            }
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: false)
            try FileManager.default.copyItem(atPath: s.ws.vault, toPath: home + "/vault.db")
            for path in [home, home + "/vault.db"] { chown(path, uid_t(victim), gid_t(victim)) }
            chmod(home, 0o700)
            let attack = try runProcess(
                setpriv,
                [
                    "--reuid=\(attackerUID)", "--regid=\(attackerUID)", "--clear-groups",
                    "mkdir", "-m", "0755", taken,
                ], environment: ["PATH": "/usr/bin:/bin"])
            #expect(attack.code == 0, "\(attack.err)")
            let asVictim = [
                "--reuid=\(victim)", "--regid=\(victim)", "--clear-groups", "env", "-i", "PATH=/usr/bin:/bin",
                "HOME=" + home, "TOKENVAULT_VAULT=" + home + "/vault.db",
            ]
            let unlock = try runProcess(
                setpriv, asVictim + ["TOKENVAULT_PASSPHRASE=" + Workspace.passphrase, tokenvaultBinary, "unlock"],
                environment: [:])
            #expect(unlock.code == 0, "\(unlock.err)")
            defer { _ = try? runProcess(setpriv, asVictim + [tokenvaultBinary, "lock"], environment: [:]) }
            let status = try runProcess(setpriv, asVictim + [tokenvaultBinary, "agent", "status"], environment: [:])
            #expect(status.code == 0, "\(status.out)\(status.err)")
            #expect(status.out.contains("socket: \(home)/.tokenvault-agent/agent-"), "\(status.out)")
            #expect(status.out.contains("\(taken) is not usable: it belongs to uid \(attackerUID)"), "\(status.out)")
            let token = try runProcess(setpriv, asVictim + [tokenvaultBinary, "token", "alice"], environment: [:])
            #expect(token.code == 0, "\(token.err)")
            #expect(token.err.isEmpty, "\(token.err)")
            let lock = try runProcess(setpriv, asVictim + [tokenvaultBinary, "lock"], environment: [:])
            #expect(lock.code == 0 && lock.err.contains("Locked"), "\(lock.err)")
        }
    }

    /// `unlock --notify CMD`: CMD (a webhook URL is a secret) is on no command line that outlives the moment,
    /// neither the agent's, which every local user can read for hours, nor its scheduled refresh-all's; and the
    /// scheduled runs still call it.
    @Test func theNotifyCommandIsHandedOverNotOnACommandLine() async throws {
        try await SandboxWorkspace.with { s in
            let env = try runtime(s)
            try await s.importAccounts(["alice"])
            // Needs a person, so that each scheduled run tells the notify command.
            let queue = try DatabaseQueue(path: s.ws.vault)
            try await queue.write { try $0.execute(sql: "UPDATE account SET state = 'needs-reauth'") }
            try queue.close()
            let secret = "https://hooks.example/T0/" + generatedToken()
            let told = s.ws.dir + "/told"
            let parent = s.ws.dir + "/parent"
            let notify =
                "tr '\\0' ' ' < /proc/$PPID/cmdline > '\(parent)'; echo \"$TOKENVAULT_ACCOUNT\" >> '\(told)'; : '\(secret)'"
            try await s.expectOK(
                ["unlock", "--for", "1h", "--refresh-every", "1s", "--notify", notify], environment: env)
            let pid = try #require(try await agentPID(s, env))
            let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            #expect(cmdline.contains("agent") && !cmdline.contains(secret), "the agent's command line: \(cmdline)")
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, (try? String(contentsOfFile: told, encoding: .utf8)) == nil {
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(
                (try? String(contentsOfFile: told, encoding: .utf8))?.hasPrefix("alice\n") == true,
                "the scheduled refresh-all did not run the notify command")
            let refreshAll = (try? String(contentsOfFile: parent, encoding: .utf8)) ?? ""
            #expect(
                refreshAll.contains("refresh-all") && !refreshAll.contains(secret),
                "refresh-all's command line: \(refreshAll)")
            try await s.expectOK(["lock"], environment: merged(env, Self.noPassphrase))
        }
    }
}
