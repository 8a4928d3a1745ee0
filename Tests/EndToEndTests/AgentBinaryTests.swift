import Foundation
import GRDB
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

/// `tokenvault unlock` starts an agent that holds the key; commands use it without a passphrase; it
/// forgets the key when told, when its time runs out, on `passwd` and when the vault file is replaced; other users
/// and its own user's debuggers get nothing from it. The built binary, as a user runs it.
extension OAuthBinaryTests {
    @Suite struct Agent {
        /// The environment a command runs in without any passphrase: only an agent can open the vault.
        static let noPassphrase: [String: String?] = ["TOKENVAULT_PASSPHRASE": nil]

        /// A private runtime directory for this workspace's agents (as logind makes one per user).
        func runtime(_ s: SandboxWorkspace) throws -> [String: String?] {
            let dir = s.ws.dir + "/run"
            try FileManager.default.createDirectory(
                atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            return ["XDG_RUNTIME_DIR": dir]
        }

        func merged(_ a: [String: String?], _ b: [String: String?]) -> [String: String?] { a.merging(b) { $1 } }

        /// The agent's pid, from `agent status --json`, or nil when none runs.
        func agentPID(_ s: SandboxWorkspace, _ env: [String: String?]) async throws -> Int32? {
            let status = try await s.run(["agent", "status", "--json"], environment: merged(env, Self.noPassphrase))
            guard status.code == 0 else { return nil }
            return (jsonObject(status.out)["pid"] as? Int).map(Int32.init)
        }

        /// Waits (bounded) until no agent answers for the vault.
        func waitUntilGone(_ s: SandboxWorkspace, _ env: [String: String?], seconds: Double = 30) async throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try await agentPID(s, env) == nil { return true }
                try await Task.sleep(for: .milliseconds(200))
            }
            return false
        }

        @Test func unlockOnceThenNoPassphraseUntilLock() async throws {
            try await SandboxWorkspace.with { s in
                let env = try runtime(s)
                let pairs = try await s.importAccounts(["alice"])
                let before = try await s.run(["token", "alice"], environment: merged(env, Self.noPassphrase))
                #expect(before.code == 3, "\(before.err)")

                let unlock = try await s.run(["unlock", "--for", "1h"], environment: env)
                #expect(unlock.code == 0, "\(unlock.err)")
                #expect(unlock.err.contains("Unlocked") && !unlock.err.contains(Workspace.passphrase))
                let token = try await s.run(["token", "alice"], environment: merged(env, Self.noPassphrase))
                #expect(token.code == 0, "\(token.err)")
                #expect(token.out == pairs["alice"]!.access + "\n")
                let exported = try await s.run(["env", "alice"], environment: merged(env, Self.noPassphrase))
                #expect(exported.out == "export WEBEX_ACCESS_TOKEN='\(pairs["alice"]!.access)'\n", "\(exported.err)")
                let status = try await s.run(
                    ["agent", "status", "--json"], environment: merged(env, Self.noPassphrase))
                let o = jsonObject(status.out)
                #expect(o["running"] as? Bool == true && o["vault"] as? String == s.ws.vault)
                // Times as ISO 8601 strings, as in every other JSON output (they were epoch numbers).
                let until = (o["until"] as? String).flatMap { try? Date($0, strategy: .iso8601) }
                #expect(
                    until.map { abs($0.timeIntervalSince(Date().addingTimeInterval(3600))) < 120 } == true,
                    "\(status.out)")
                #expect((o["since"] as? String).flatMap { try? Date($0, strategy: .iso8601) } != nil, "\(status.out)")
                let pid = try #require(o["pid"] as? Int)
                // The agent's command line holds no secret (every local user can read it), its environment no passphrase.
                let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                #expect(cmdline.contains("agent") && !cmdline.contains(Workspace.passphrase))
                let environ =
                    (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))).map {
                        String(decoding: $0, as: UTF8.self)
                    } ?? ""
                #expect(!environ.contains("TOKENVAULT_PASSPHRASE") && !environ.isEmpty)

                let lock = try await s.run(["lock"], environment: merged(env, Self.noPassphrase))
                #expect(lock.code == 0 && lock.err.contains("Locked"), "code \(lock.code): \(lock.err)")
                #expect(try await waitUntilGone(s, env))
                let after = try await s.run(["token", "alice"], environment: merged(env, Self.noPassphrase))
                #expect(after.code == 3, "\(after.err)")
            }
        }

        @Test func itForgetsTheKeyAtItsTimeOnPasswdAndWhenTheVaultIsReplaced() async throws {
            try await SandboxWorkspace.with { s in
                let env = try runtime(s)
                try await s.importAccounts(["alice"])
                // --for
                try await s.expectOK(["unlock", "--for", "2s"], environment: env)
                #expect(try await agentPID(s, env) != nil)
                #expect(try await waitUntilGone(s, env), "the agent outlived --for")

                // passwd
                try await s.expectOK(["unlock"], environment: env)
                let newPassphrase = "new passphrase " + generatedToken().prefix(8)
                let passwd = try await s.run(
                    ["passwd", "--new-passphrase-fd", "0"], stdin: newPassphrase, environment: env)
                #expect(passwd.code == 0, "\(passwd.err)")
                #expect(passwd.err.contains("forgot its key"), "\(passwd.err)")
                #expect(try await waitUntilGone(s, env))

                // The vault file replaced by another (a restored backup, an attacker's): the agent must not serve it.
                let withNew = merged(env, ["TOKENVAULT_PASSPHRASE": newPassphrase])
                try await s.expectOK(["unlock"], environment: withNew)
                let copy = s.ws.dir + "/copy.db"
                try FileManager.default.copyItem(atPath: s.ws.vault, toPath: copy)
                #expect(rename(copy, s.ws.vault) == 0)
                let token = try await s.run(["token", "alice"], environment: merged(env, Self.noPassphrase))
                #expect(token.code == 3, "served a replaced vault: \(token.out)\(token.err)")
                #expect(try await waitUntilGone(s, env))
            }
        }

        /// `keys add`, `keys remove` and `keys rotate` end the agent as `passwd` does; after a rotation an agent
        /// started again holds the new key and serves the re-sealed values.
        @Test func keySlotChangesEndTheAgent() async throws {
            try await SandboxWorkspace.with { s in
                let env = try runtime(s)
                let pairs = try await s.importAccounts(["alice"])
                let bobFile = try s.ws.write("bob", "bob's agent passphrase\n")
                let ws = s.ws
                for step in ["keys add", "keys remove", "keys rotate"] {
                    try await s.expectOK(["unlock"], environment: env)
                    #expect(try await agentPID(s, env) != nil)
                    let result: ProcessResult =
                        switch step {
                        case "keys add":
                            try await offPool {
                                try runWithFD3(
                                    ws, ["keys", "add", "bob", "--kdf", "interactive", "--new-passphrase-fd", "3"],
                                    fd3: bobFile, environment: env)
                            }
                        case "keys remove": try await s.run(["keys", "remove", "bob"], environment: env)
                        default: try await s.run(["keys", "rotate"], environment: env)
                        }
                    #expect(result.code == 0, "\(step): \(result.err)")
                    #expect(result.err.contains("forgot its key"), "\(step): \(result.err)")
                    #expect(try await waitUntilGone(s, env), "\(step) left the agent running")
                }
                try await s.expectOK(["unlock"], environment: env)
                let token = try await s.run(["token", "alice"], environment: merged(env, Self.noPassphrase))
                #expect(token.out == pairs["alice"]!.access + "\n", "\(token.err)")
                try await s.expectOK(["lock"], environment: merged(env, Self.noPassphrase))
            }
        }

        @Test func twentyClientsAndRefreshAllThroughTheAgentLoseNothing() async throws {
            try await SandboxWorkspace.with(configure: { $0.rotation = .on }) { s in
                let env = try runtime(s)
                let names = (1...20).map { "acct\($0)" }
                var lines: [String] = []
                var pairs: [String: (access: String, refresh: String)] = [:]
                for name in names {
                    let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: s.user.id)
                    pairs[name] = (pair.accessToken, pair.refreshToken)
                    var object = jsonObject(
                        tokenJSON(access: pair.accessToken, refresh: pair.refreshToken, expiresIn: 60))
                    object["account"] = name
                    lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
                }
                try await s.expectOK(
                    ["import", "--batch", "--integration", "webex"], stdin: lines.joined(separator: "\n") + "\n")
                try await s.expectOK(["unlock"], environment: env)
                let clean = merged(env, Self.noPassphrase)
                var children = [try s.start(["refresh-all"], environment: clean)]
                for name in names { children.append(try s.start(["token", name], environment: clean)) }
                var results: [BackgroundProcess.Result] = []
                for child in children { results.append(try await offPool { try child.wait(timeout: 120) }) }
                #expect(results.allSatisfy { $0.code == 0 }, "\(results.filter { $0.code != 0 }.map(\.err))")
                // Every token handed out is valid at the provider, and each refresh token was sent exactly once.
                for (index, name) in names.enumerated() {
                    let token = results[index + 1].out.trimmingCharacters(in: .newlines)
                    #expect(await s.sandbox.isAccessTokenValid(token), "\(name)")
                }
                #expect(await s.refreshTokensNotUsedOnce(pairs).isEmpty)
                let verify = try await s.run(["audit", "--verify"], environment: clean)
                #expect(verify.code == 0, "\(verify.out)\(verify.err)")
                try await s.expectOK(["lock"], environment: clean)
            }
        }

        /// `--refresh-every`: the agent runs refresh-all itself (no cron, no passphrase file); and `agent run
        /// --foreground` (the systemd unit) serves until SIGTERM, then removes its socket.
        @Test func scheduledRefreshAndTheForegroundAgent() async throws {
            try await SandboxWorkspace.with { s in
                let env = try runtime(s)
                let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: s.user.id)
                try await s.expectOK(
                    ["import", "alice", "--integration", "webex"],
                    stdin: tokenJSON(access: pair.accessToken, refresh: pair.refreshToken, expiresIn: 60))
                // Stored an hour ago, as a cron run would find it (refresh-all leaves pairs stored in the last
                // --skip-recent alone).
                let queue = try DatabaseQueue(path: s.ws.vault)
                try await queue.write { try $0.execute(sql: "UPDATE account SET updated_at = updated_at - 3600") }
                try queue.close()
                try await s.expectOK(["unlock", "--refresh-every", "1s"], environment: env)
                let deadline = Date().addingTimeInterval(30)
                var refreshed = false
                while Date() < deadline, !refreshed {
                    refreshed = await s.sandbox.counters.successfulRefreshes == 1
                    if !refreshed { try await Task.sleep(for: .milliseconds(200)) }
                }
                #expect(refreshed, "the agent's scheduled refresh-all did not run")
                let events = try await s.auditEvents("alice")
                #expect(
                    events.contains {
                        $0["event"] as? String == "refreshed" && $0["trigger"] as? String == "refresh-all"
                    })
                try await s.expectOK(["lock"], environment: merged(env, Self.noPassphrase))
                #expect(try await waitUntilGone(s, env))

                let foreground = try s.start(["agent", "run", "--foreground"], environment: env)
                let up = Date().addingTimeInterval(30)
                while Date() < up, try await agentPID(s, env) == nil { try await Task.sleep(for: .milliseconds(100)) }
                let token = try await s.run(["token", "alice"], environment: merged(env, Self.noPassphrase))
                #expect(token.code == 0, "\(token.err)")
                foreground.signal(SIGTERM)
                let ended = try await offPool { try foreground.wait(timeout: 30) }
                #expect(ended.code == 0 || ended.code == 143, "\(ended.code) \(ended.err)")
                #expect(try await agentPID(s, env) == nil)
                let dir = s.ws.dir + "/run/tokenvault"
                #expect(
                    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).isEmpty,
                    "the socket was left behind")
            }
        }

        /// The agent's memory is closed to its own user: a process of the same uid can open `/proc/PID/mem` of
        /// that uid's other processes (no Yama here), but not the agent's (PR_SET_DUMPABLE 0). Run as uid 4343,
        /// since root may read anything.
        @Test func itsOwnUserCannotReadTheAgentsMemory() async throws {
            guard let setpriv = requireTool(otherUserRunner, "setpriv as root (to act as another user)"),
                let python = requireTool(python3, "python3")
            else { return }
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                // A home of uid 4343's own, holding a copy of the vault.
                let home = s.ws.dir + "/u4343"
                try FileManager.default.createDirectory(atPath: home + "/run", withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: s.ws.vault, toPath: home + "/vault.db")
                chmod(s.ws.dir, 0o711)
                for path in [home, home + "/run", home + "/vault.db"] {
                    chown(path, uid_t(attackerUID), gid_t(attackerUID))
                }
                chmod(home + "/run", 0o700)
                let asUser = [
                    "--reuid=\(attackerUID)", "--regid=\(attackerUID)", "--clear-groups", "env", "-i",
                    "PATH=/usr/bin:/bin",
                    "HOME=" + home, "XDG_RUNTIME_DIR=" + home + "/run", "TOKENVAULT_VAULT=" + home + "/vault.db",
                ]
                let unlock = try runProcess(
                    setpriv, asUser + ["TOKENVAULT_PASSPHRASE=" + Workspace.passphrase, tokenvaultBinary, "unlock"],
                    environment: [:])
                #expect(unlock.code == 0, "\(unlock.err)")
                let status = try runProcess(
                    setpriv, asUser + [tokenvaultBinary, "agent", "status", "--json"], environment: [:])
                let pid = try #require(jsonObject(status.out)["pid"] as? Int)
                let probe = """
                    import subprocess, sys
                    def readable(pid):
                        try:
                            with open(f"/proc/{pid}/mem", "rb") as f: return "open"
                        except PermissionError: return "refused"
                    control = subprocess.Popen(["sleep", "30"])
                    print(readable(control.pid), readable(int(sys.argv[1])))
                    control.kill()
                    """
                let seen = try runProcess(setpriv, asUser + [python, "-c", probe, String(pid)], environment: [:])
                // The control shows the probe could read a same-uid process; the agent refuses it.
                #expect(
                    seen.out.trimmingCharacters(in: .whitespacesAndNewlines) == "open refused", "\(seen.out)\(seen.err)"
                )
                let lock = try runProcess(setpriv, asUser + [tokenvaultBinary, "lock"], environment: [:])
                #expect(lock.code == 0, "\(lock.err)")
            }
        }

        /// Another user can neither reach the agent (its directory is 0700) nor, if the socket were opened to
        /// them, get an answer (SO_PEERCRED); and the agent's memory is closed to its own user's debuggers.
        @Test func anotherUserAndItsOwnUsersDebuggerGetNothing() async throws {
            guard let setpriv = requireTool(otherUserRunner, "setpriv as root (to act as another user)"),
                let python = requireTool(python3, "python3")
            else { return }
            try await SandboxWorkspace.with { s in
                let env = try runtime(s)
                try await s.importAccounts(["alice"])
                try await s.expectOK(["unlock"], environment: env)
                let pid = try #require(try await agentPID(s, env))
                let dir = s.ws.dir + "/run/tokenvault"
                let socketPath = try #require(
                    try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".sock") })
                // Opened up as a careless admin might: the workspace, the runtime directory and the socket.
                for path in [s.ws.dir, s.ws.dir + "/run", dir] { chmod(path, 0o711) }
                chmod(dir + "/" + socketPath, 0o666)
                let probe = """
                    import socket, struct, sys
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(sys.argv[1])
                    req = bytes([1, 4, 0, 0, 0, 0, 0, 0])
                    try:
                        s.sendall(struct.pack(">I", len(req)) + req)
                        data = s.recv(4096)
                    except (ConnectionResetError, BrokenPipeError):
                        data = b""
                    print("answer" if data else "closed")
                    """
                let attack = try runProcess(
                    setpriv,
                    [
                        "--reuid=\(attackerUID)", "--regid=\(attackerUID)", "--clear-groups",
                        python, "-c", probe, dir + "/" + socketPath,
                    ], environment: ["PATH": "/usr/bin:/bin"])
                #expect(
                    attack.out.trimmingCharacters(in: .whitespacesAndNewlines) == "closed",
                    "out: \(attack.out) err: \(attack.err)")
                // The agent is not dumpable: /proc/PID/mem belongs to root and ptrace is refused, even for its own
                // uid. (The test runs as root, which may read anything; the file's owner shows the setting.)
                var info = stat()
                #expect(stat("/proc/\(pid)/mem", &info) == 0 && info.st_uid == 0)
                let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
                #expect(
                    status.contains("VmLck:") && !status.contains("VmLck:\t       0 kB"),
                    "the key's pages are not locked: \(status)")
                // Still serving its owner afterwards.
                let token = try await s.run(["token", "alice"], environment: merged(env, Self.noPassphrase))
                #expect(token.code == 0, "\(token.err)")
                try await s.expectOK(["lock"], environment: merged(env, Self.noPassphrase))
            }
        }
    }
}

extension SandboxWorkspace {
    func expectOK(
        _ arguments: [String], environment: [String: String?], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let result = try await run(arguments, environment: environment)
        #expect(result.code == 0, "\(arguments): \(result.err)", sourceLocation: sourceLocation)
        if result.code != 0 { throw TestFailure("setup step failed: \(arguments)") }
    }
}
