import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// `exec` replaces tokenvault with the command; `revoke` at the provider and locally.
    @Suite struct ExecAndRevoke {
        @Test func execPassesTheVariableAndTheExitStatus() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["alice"])
                let file = s.ws.dir + "/seen"
                let result = try await s.run([
                    "exec", "alice", "--", "/bin/sh", "-c",
                    "printf %s \"$WEBEX_ACCESS_TOKEN\" > '\(file)'; printf %s \"${TOKENVAULT_PASSPHRASE-unset}\" > '\(file).pass'; exit 7",
                ])
                #expect(result.code == 7, "\(result.err)")
                #expect(try String(contentsOfFile: file, encoding: .utf8) == pairs["alice"]!.access)
                #expect(try String(contentsOfFile: file + ".pass", encoding: .utf8) == "unset")
                // stdin and stdout pass through.
                let echoed = try await s.run(["exec", "alice", "--", "/bin/cat"], stdin: "through\n")
                #expect(echoed.code == 0)
                #expect(echoed.out == "through\n")
            }
        }

        /// The command must get signals as if started directly: a shell that sends itself SIGTERM dies of it, and
        /// the waiter (tokenvault having been replaced) sees the signal. Regression test: tokenvault calls execve on
        /// a worker thread of the async runtime, which blocks nearly every signal, and the mask survives execve; the
        /// command then started with SIGINT, SIGTERM, SIGCHLD… blocked (fixed in 267b36d).
        @Test func execDeliversSignalsToTheCommand() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                // The shell reads its own mask with builtins only (an exec'd grep would get a mask dash reset).
                let mask = try await s.run([
                    "exec", "alice", "--", "/bin/sh", "-c",
                    "while read -r k v; do [ \"$k\" = SigBlk: ] && echo \"$v\"; done < /proc/$$/status; true",
                ])
                #expect(mask.code == 0, "\(mask.err)")
                #expect(mask.out == "0000000000000000\n", "signals blocked in the command: \(mask.out)")
                let signalled = try await s.run([
                    "exec", "alice", "--", "/bin/sh", "-c", "kill -TERM $$; echo still running",
                ])
                #expect(signalled.code == 128 + SIGTERM, "\(signalled.out)\(signalled.err)")
                let interrupted = try await s.run([
                    "exec", "alice", "--", "/bin/sh", "-c", "kill -INT $$; echo still running",
                ])
                #expect(interrupted.code == 128 + SIGINT, "\(interrupted.out)\(interrupted.err)")
            }
        }

        @Test func execReplacesTokenvaultAndTheTokenIsOnlyInTheEnvironment() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["alice"])
                let token = pairs["alice"]!.access
                let child = try s.start(["exec", "alice", "--", "sleep", "5"])
                defer { child.signal(SIGKILL) }
                let proc = "/proc/\(child.pid)"
                // Wait until the same pid runs sleep: tokenvault replaced itself (no process in between).
                var cmdline = ""
                let deadline = Date().addingTimeInterval(20)
                while Date() < deadline {
                    cmdline =
                        (try? Data(contentsOf: URL(fileURLWithPath: proc + "/cmdline"))).map {
                            String(decoding: $0, as: UTF8.self)
                        } ?? ""
                    if cmdline.hasPrefix("sleep\0") { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(
                    cmdline == "sleep\u{0}5\u{0}",
                    "pid \(child.pid) runs \(cmdline.debugDescription); stderr: \(child.err)")
                #expect(!cmdline.contains(token))
                let environ = String(
                    decoding: try Data(contentsOf: URL(fileURLWithPath: proc + "/environ")), as: UTF8.self
                )
                .split(separator: "\0").map(String.init)
                #expect(environ.contains("WEBEX_ACCESS_TOKEN=\(token)"))
                #expect(!environ.contains { $0.hasPrefix("TOKENVAULT_PASSPHRASE=") })
                child.signal(SIGKILL)
                let result = try await offPool { try child.wait(timeout: 10) }
                #expect(result.code == 128 + SIGKILL)
                #expect(!result.err.contains(token))
            }
        }

        @Test func remoteRevokeDeletesTheAuthorizationAtTheProvider() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["alice"])
                let result = try await s.run(["revoke", "alice"])
                #expect(result.code == 0, "\(result.err)")
                #expect(result.err.contains("at the provider"), "\(result.err)")
                #expect(await s.sandbox.requests(to: "DELETE /v1/authorizations") == 1)
                #expect(await s.sandbox.isRefreshTokenValid(pairs["alice"]!.refresh) == false)
                #expect(await s.sandbox.isAccessTokenValid(pairs["alice"]!.access) == false)
                #expect(try await s.run(["token", "alice"]).code == 4)
                #expect(
                    try await s.auditEvents("alice").last?["outcome"] as? String
                        == "revoked at webex and removed locally")
                s.expectNoSecrets(result.err, also: [pairs["alice"]!.access, pairs["alice"]!.refresh])
            }
        }

        @Test func localRevokeNeverCallsTheProvider() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["bob"])
                let result = try await s.run(["revoke", "bob", "--local"])
                #expect(result.code == 0, "\(result.err)")
                #expect(result.err.contains("Removed the token pair of 'bob'"), "\(result.err)")
                #expect(result.err.contains("tokenvault: hint: to revoke at Webex"))
                #expect(await s.sandbox.requests(to: "DELETE /v1/authorizations") == 0)
                #expect(await s.sandbox.isRefreshTokenValid(pairs["bob"]!.refresh))
                #expect(try await s.run(["token", "bob"]).code == 4)
                #expect(try await s.auditEvents("bob").last?["trigger"] as? String == "revoke --local")
            }
        }
    }
}
