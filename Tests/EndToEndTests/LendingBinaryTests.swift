import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

/// Lending access tokens (docs/lending.md): `tokenvault serve`, the agent's endpoint, `exec --serve` and grants, with
/// the built binary, the sandbox over loopback and another local user through setpriv.
extension OAuthBinaryTests {
    @Suite struct Lending {
        /// Pairs the sandbox issued, imported with `expiresIn` seconds left (below the 600 s margin: the first
        /// request refreshes).
        @discardableResult
        func importPairs(_ s: SandboxWorkspace, _ names: [String], expiresIn: Int) async throws -> [String: (
            access: String, refresh: String
        )] {
            var pairs: [String: (access: String, refresh: String)] = [:]
            var lines: [String] = []
            for name in names {
                let pair = try await s.sandbox.issueTokenPair(clientId: s.clientId, userId: s.user.id)
                pairs[name] = (pair.accessToken, pair.refreshToken)
                var object = jsonObject(
                    tokenJSON(access: pair.accessToken, refresh: pair.refreshToken, expiresIn: expiresIn))
                object["account"] = name
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
            }
            try await s.expectOK(
                ["import", "--batch", "--integration", "webex"], stdin: lines.joined(separator: "\n") + "\n")
            return pairs
        }

        /// A directory others can enter (0755), for a socket another uid must reach; removed by the caller.
        /// An agent for the workspace's vault (`unlock --for 10m`) with its sockets under a runtime directory of
        /// the workspace's own: that directory, and the environment that names it.
        func unlockAgent(_ s: SandboxWorkspace) async throws -> (runtime: String, env: [String: String?]) {
            let runtime = s.ws.dir + "/run"
            try FileManager.default.createDirectory(
                atPath: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let env: [String: String?] = ["XDG_RUNTIME_DIR": runtime]
            let unlock = try await s.run(["unlock", "--for", "10m"], environment: env)
            #expect(unlock.code == 0, "\(unlock.err)")
            return (runtime, env)
        }

        func sharedDirectory() throws -> String {
            let dir = "/tmp/" + TestRun.name("tokenvault-lend") + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(
                atPath: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
            return dir
        }

        /// Starts `serve` on `socket` and waits for the socket.
        func startServe(_ s: SandboxWorkspace, socket: String, environment: [String: String?] = [:]) async throws
            -> BackgroundProcess
        {
            let child = try s.start(["serve", "--socket", socket], environment: environment)
            _ = try await offPool { try child.waitForStderrLine { $0.contains("lending tokens") } }
            return child
        }

        /// GET as another uid through setpriv and curl: status and body.
        func getAs(_ uid: Int, socket: String, account: String) async throws -> (status: Int, body: String) {
            guard let setpriv = otherUserRunner else { throw TestFailure("no setpriv") }
            let result = try await offPool {
                try runProcess(
                    setpriv,
                    [
                        "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", curl, "-s", "-w", "\n%{http_code}",
                        "--max-time", "30", "--unix-socket", socket, "http://localhost/v1/accounts/\(account)/token",
                    ], environment: ["PATH": "/usr/bin:/bin"])
            }
            let lines = result.out.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }

        /// The owner's request, in-process (a plain Unix-socket client).
        func get(socket: String, path: String) throws -> (status: Int, body: String) {
            try unixSocketGET(socket, path)
        }

        @Test func serveLendsTheOwnerAFreshAccessTokenAndNothingElse() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await importPairs(s, ["alice"], expiresIn: 300)
                let dir = try sharedDirectory()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let socket = dir + "/token.sock"
                // The passphrase as systemd's LoadCredential= gives it: a 0400 file in $CREDENTIALS_DIRECTORY.
                let credentials = s.ws.dir + "/credentials"
                try FileManager.default.createDirectory(
                    atPath: credentials, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
                _ = FileManager.default.createFile(
                    atPath: credentials + "/passphrase", contents: Data(Workspace.passphrase.utf8),
                    attributes: [.posixPermissions: 0o400])
                let serve = try await startServe(
                    s, socket: socket,
                    environment: ["TOKENVAULT_PASSPHRASE": nil, "CREDENTIALS_DIRECTORY": credentials])
                defer { serve.signal(SIGTERM) }
                var info = stat()
                #expect(lstat(socket, &info) == 0 && info.st_mode & 0o777 == 0o666)

                let answer = try await offPool { try self.get(socket: socket, path: "/v1/accounts/alice/token") }
                #expect(answer.status == 200, "\(answer.body)")
                let o = jsonObject(answer.body)
                let token = try #require(o["access_token"] as? String)
                // Lapsing within the margin: refreshed first, so a new token, valid about the sandbox's lifetime.
                #expect(token != pairs["alice"]!.access)
                #expect(o["token_type"] as? String == "Bearer" && o["account"] as? String == "alice")
                #expect(o["integration"] as? String == "webex")
                #expect((o["expires_in"] as? Int ?? 0) > 600, "\(answer.body)")
                #expect((o["expires_at"] as? String).flatMap { try? Date($0, strategy: .iso8601) } != nil)
                #expect(
                    Set(o.keys) == ["access_token", "token_type", "expires_at", "expires_in", "account", "integration"])
                #expect(await s.sandbox.counters.successfulRefreshes == 1)
                // The same token again, no second refresh.
                let again = try await offPool { try self.get(socket: socket, path: "/v1/accounts/alice/token") }
                #expect(jsonObject(again.body)["access_token"] as? String == token)
                #expect(await s.sandbox.counters.successfulRefreshes == 1)

                let unknown = try await offPool { try self.get(socket: socket, path: "/v1/accounts/bob/token") }
                #expect(unknown.status == 404)
                let other = try await offPool { try self.get(socket: socket, path: "/v1/accounts") }
                #expect(other.status == 404)
                let post = try await offPool {
                    try unixSocketRequest(socket, "POST /v1/accounts/alice/token HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
                }
                #expect(post.hasPrefix("HTTP/1.1 405"), "\(post)")
                let garbage = try await offPool { try unixSocketRequest(socket, "\u{1}\u{2}garbage\r\n\r\n") }
                #expect(garbage.hasPrefix("HTTP/1.1 400"), "\(garbage)")
                let huge = try await offPool {
                    try unixSocketRequest(
                        socket,
                        "GET /v1/accounts/alice/token HTTP/1.1\r\nX-Pad: \(String(repeating: "a", count: 20000))\r\n\r\n"
                    )
                }
                #expect(huge.hasPrefix("HTTP/1.1 431"), "\(huge.prefix(100))")

                // No answer carries the refresh token (the old or the new), the client secret or the passphrase.
                for text in [answer.body, again.body, unknown.body, post, garbage] {
                    s.expectNoSecrets(text, also: [pairs["alice"]!.refresh])
                }
            }
        }

        /// The agent `unlock` starts answers on a token socket beside its key socket, its owner's alone, without a
        /// passphrase; it goes with the agent.
        @Test func theAgentLendsItsOwnerTokens() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await importPairs(s, ["alice"], expiresIn: 100_000)
                let (runtime, env) = try await unlockAgent(s)
                let dir = runtime + "/tokenvault"
                let name = try #require(
                    try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasPrefix("token-") })
                let socket = dir + "/" + name
                var info = stat()
                #expect(lstat(socket, &info) == 0 && info.st_mode & 0o777 == 0o600)
                let status = try await s.run(
                    ["agent", "status", "--json"], environment: env.merging(["TOKENVAULT_PASSPHRASE": nil]) { $1 })
                #expect(jsonObject(status.out)["token_socket"] as? String == socket, "\(status.out)")
                let answer = try await offPool { try unixSocketGET(socket, "/v1/accounts/alice/token") }
                #expect(answer.status == 200, "\(answer.body)")
                #expect(jsonObject(answer.body)["access_token"] as? String == pairs["alice"]!.access)
                s.expectNoSecrets(answer.body, also: [pairs["alice"]!.refresh])
                if let setpriv = otherUserRunner {
                    // Another uid cannot even reach it (a 0700 directory), let alone be answered.
                    let other = try await offPool {
                        try runProcess(
                            setpriv,
                            [
                                "--reuid=\(attackerUID)", "--regid=\(attackerUID)", "--clear-groups", curl, "-s",
                                "--max-time", "10", "--unix-socket", socket, "http://localhost/v1/accounts/alice/token",
                            ], environment: ["PATH": "/usr/bin:/bin"])
                    }
                    #expect(!other.out.contains("access_token"), "\(other.out)")
                }
                let lock = try await s.run(["lock"], environment: env.merging(["TOKENVAULT_PASSPHRASE": nil]) { $1 })
                #expect(lock.code == 0, "\(lock.err)")
                let deadline = Date().addingTimeInterval(20)
                while FileManager.default.fileExists(atPath: socket), Date() < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(!FileManager.default.fileExists(atPath: socket), "the token socket outlived the agent")
            }
        }

        /// `env NAME` and `token NAME` with no option are answered before the argument parser runs (AgentShortcut):
        /// what they print, on both streams, is what the parsed commands print through the same agent, and with no
        /// agent they go the usual way (here: no passphrase, exit 3).
        @Test func thePlainFormsAnswerAsTheParsedCommandsDo() async throws {
            try await SandboxWorkspace.with { s in
                _ = try await importPairs(s, ["alice"], expiresIn: 100_000)
                let (_, env) = try await unlockAgent(s)
                let noPassphrase = env.merging(["TOKENVAULT_PASSPHRASE": nil]) { $1 }
                for (plain, parsed) in [
                    (["env", "alice"], ["env", "alice", "--format", "sh"]),
                    (["export-env", "alice"], ["env", "alice", "--min-valid", "10m"]),
                    (["token", "alice"], ["token", "alice", "--min-valid", "10m"]),
                ] {
                    let a = try await s.run(plain, environment: noPassphrase)
                    let b = try await s.run(parsed, environment: noPassphrase)
                    #expect(a.code == 0 && b.code == 0, "\(plain): \(a.err) / \(b.err)")
                    #expect(
                        a.out == b.out && !a.out.isEmpty,
                        "\(plain) printed \(a.out.count) bytes, \(parsed) \(b.out.count)")
                    #expect(a.err == b.err, "\(plain): \(a.err) / \(b.err)")
                }
                #expect(await s.sandbox.counters.successfulRefreshes == 0)
                // An account the vault does not hold: the agent refuses, and the usual path says so (no passphrase
                // here, so it cannot open the vault: exit 3, as without the shortcut).
                let unknown = try await s.run(["env", "nobody"], environment: noPassphrase)
                #expect(unknown.code != 0 && unknown.out.isEmpty, "\(unknown.out)")
                let locked = try await s.run(["lock"], environment: noPassphrase)
                #expect(locked.code == 0, "\(locked.err)")
                let without = try await s.run(["env", "alice"], environment: noPassphrase)
                #expect(without.code == 3 && without.out.isEmpty, "\(without.code): \(without.err)")
            }
        }

        /// `env` and `token` through the agent are one request to its token endpoint: with the agent's key socket
        /// gone (so that no seal, open or MAC can be asked of it) they still answer, without a passphrase.
        @Test func envAndTokenThroughTheAgentAreOneRequest() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await importPairs(s, ["alice"], expiresIn: 300)
                let (runtime, env) = try await unlockAgent(s)
                let noPassphrase = env.merging(["TOKENVAULT_PASSPHRASE": nil]) { $1 }
                let status = try await s.run(["agent", "status", "--json"], environment: noPassphrase)
                let pid = try #require(jsonObject(status.out)["pid"] as? Int)
                defer { kill(pid_t(pid), SIGTERM) }
                let dir = runtime + "/tokenvault"
                let keySocket = try #require(
                    try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasPrefix("agent-") })
                #expect(unlink(dir + "/" + keySocket) == 0)

                // Lapsing within the margin: the agent refreshes it, audited as env's refresh.
                let exported = try await s.run(["env", "alice"], environment: noPassphrase)
                #expect(exported.code == 0, "\(exported.err)")
                let token = try #require(exported.out.firstMatch(of: /export WEBEX_ACCESS_TOKEN='([^']+)'/)?.1)
                #expect(String(token) != pairs["alice"]!.access)
                let printed = try await s.run(["token", "alice"], environment: noPassphrase)
                #expect(printed.out == token + "\n", "\(printed.err)")
                #expect(await s.sandbox.counters.successfulRefreshes == 1)
                let refreshed = try await s.auditEvents("alice").filter { $0["event"] as? String == "refreshed" }
                #expect(refreshed.map { $0["trigger"] as? String } == ["env"], "\(refreshed)")
                // --min-valid beyond the new token's lifetime: refreshed again, through the agent.
                let again = try await s.run(["token", "alice", "--min-valid", "30d"], environment: noPassphrase)
                #expect(again.code == 0 && again.out != printed.out, "\(again.err)")
                // Another account name: refused by the endpoint, then the usual path, which has no passphrase.
                let unknown = try await s.run(["token", "bob"], environment: noPassphrase)
                #expect(unknown.code != 0)
            }
        }

        /// Slowloris: clients that send half a request head and stall hold only their own connections: the others
        /// are answered meanwhile, and the stalled ones are closed at the head's deadline.
        @Test func aStalledClientLosesOnlyItsOwnConnection() async throws {
            try await SandboxWorkspace.with { s in
                try await importPairs(s, ["alice"], expiresIn: 100_000)
                let dir = try sharedDirectory()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let socket = dir + "/token.sock"
                let serve = try await startServe(s, socket: socket)
                defer { serve.signal(SIGTERM) }
                let stalled = try (0..<40).map { _ in try UnixSocketConnection(socket) }
                for c in stalled { c.send("GET /v1/accounts/alice/tok") }
                let started = Date()
                let answer = try await offPool { try self.get(socket: socket, path: "/v1/accounts/alice/token") }
                #expect(answer.status == 200)
                #expect(Date().timeIntervalSince(started) < 5)
                // Closed by the server within its 10 s head deadline (and some slack on a loaded machine).
                let closed = try await offPool { stalled.map { $0.waitForClose(timeout: 30) } }
                #expect(closed.allSatisfy { $0 }, "a stalled connection stayed open")
            }
        }

        @Test func aGranteeGetsOnlyItsAccountsUntilUngranted() async throws {
            guard requireTool(otherUserRunner, "setpriv and curl as root (to act as another user)") != nil else {
                return
            }
            try await SandboxWorkspace.with { s in
                let pairs = try await importPairs(s, ["alice", "bob"], expiresIn: 100_000)
                let dir = try sharedDirectory()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let socket = dir + "/token.sock"
                let serve = try await startServe(s, socket: socket)
                defer { serve.signal(SIGTERM) }

                // No grant yet: 403 for every name, known or not.
                for name in ["alice", "bob", "nobody"] {
                    #expect(try await getAs(attackerUID, socket: socket, account: name).status == 403)
                }
                try await s.expectOK(["grant", "alice", "--to-uid", String(attackerUID)])
                let grants = try await s.run(["grants", "--json"])
                #expect(grants.code == 0 && grants.out.contains("\"uid \(attackerUID)\""), "\(grants.out)")

                var answers: [String] = []
                for _ in 0..<3 {
                    let lent = try await getAs(attackerUID, socket: socket, account: "alice")
                    #expect(lent.status == 200, "\(lent.body)")
                    #expect(jsonObject(lent.body)["access_token"] as? String == pairs["alice"]!.access)
                    answers.append(lent.body)
                }
                let bob = try await getAs(attackerUID, socket: socket, account: "bob")
                #expect(bob.status == 403 && bob.body.contains("no grant"), "\(bob.body)")
                answers.append(bob.body)
                // Another uid with no grant: 403 for all, the same for an unknown name.
                for name in ["alice", "bob", "nobody"] {
                    let refused = try await getAs(attackerUID + 1, socket: socket, account: name)
                    #expect(refused.status == 403, "\(name): \(refused.body)")
                    answers.append(refused.body)
                }

                // Lent once per grantee and token, not per request.
                let events = try await s.auditEvents("alice")
                let lent = events.filter { $0["event"] as? String == "lent" }
                #expect(lent.count == 1, "\(lent)")
                #expect((lent.first?["detail"] as? String)?.contains("uid \(attackerUID)") == true)

                try await s.expectOK(["ungrant", "alice", "--to-uid", String(attackerUID)])
                let after = try await getAs(attackerUID, socket: socket, account: "alice")
                #expect(after.status == 403, "\(after.body)")
                answers.append(after.body)

                // Canary: no refresh token, client secret or passphrase in any answer or in the audit log.
                let audit = try await s.run(["audit", "--json"])
                #expect(audit.out.contains("\"granted\"") && audit.out.contains("\"ungranted\""))
                let refreshTokens = pairs.values.map(\.refresh)
                for text in answers + [audit.out, audit.err, grants.out] {
                    s.expectNoSecrets(text, also: refreshTokens)
                }
                let raw = try Data(contentsOf: URL(fileURLWithPath: s.ws.vault))
                for secret in refreshTokens + [s.clientSecret] {
                    #expect(raw.range(of: Data(secret.utf8)) == nil, "a secret in the clear in the vault file")
                }
            }
        }

        /// Grants are MAC'd entries of the audit log: one edited to name another uid is refused (exit 7), and the
        /// endpoint lends nothing to anyone but the owner until the vault is restored.
        @Test func anEditedGrantIsRefused() async throws {
            guard requireTool(otherUserRunner, "setpriv and curl as root (to act as another user)") != nil else {
                return
            }
            try await SandboxWorkspace.with { s in
                try await importPairs(s, ["alice"], expiresIn: 100_000)
                try await s.expectOK(["grant", "alice", "--to-uid", String(attackerUID)])
                _ = try sqlite(
                    s.ws.vault,
                    "DROP TRIGGER audit_entry_no_update; UPDATE audit_entry SET detail = 'to uid \(attackerUID + 1)' WHERE event = 'granted'"
                )
                let listed = try await s.run(["grants"])
                #expect(listed.code == 7, "\(listed.out)\(listed.err)")
                let dir = try sharedDirectory()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let socket = dir + "/token.sock"
                let serve = try await startServe(s, socket: socket)
                defer { serve.signal(SIGTERM) }
                for uid in [attackerUID, attackerUID + 1] {
                    let refused = try await getAs(uid, socket: socket, account: "alice")
                    #expect(refused.status == 500 && !refused.body.contains("access_token"), "\(refused.body)")
                }
            }
        }

        /// Grants live in the audit log, which `keys rotate` re-keys: they stand after a rotation.
        @Test func grantsSurviveAKeyRotation() async throws {
            try await SandboxWorkspace.with { s in
                try await importPairs(s, ["alice"], expiresIn: 100_000)
                try await s.expectOK(["grant", "alice", "--to-uid", "4343"])
                try await s.expectOK(["grant", "alice", "--to-group", "root"])
                // Exactly one grantee, a user or group that exists, an account that exists, a grant to withdraw.
                for (arguments, code) in [
                    (["grant", "alice"], 2), (["grant", "alice", "--to-uid", "1", "--to-group", "root"], 2),
                    (["grant", "alice", "--to-user", "no-such-user-\(UUID().uuidString.prefix(6))"], 2),
                    (["grant", "nobody", "--to-uid", "4343"], 4), (["ungrant", "alice", "--to-uid", "4344"], 2),
                ] {
                    let result = try await s.run(arguments)
                    #expect(result.code == Int32(code), "\(arguments): \(result.err)")
                }
                try await s.expectOK(["keys", "rotate"])
                let listed = try await s.run(["grants", "--json"])
                #expect(listed.code == 0, "\(listed.err)")
                let grantees = Set(jsonObjects(listed.out).compactMap { $0["grantee"] as? String })
                #expect(grantees == ["uid 4343", "gid 0"], "\(listed.out)")
                #expect(try await s.run(["audit", "--verify"]).code == 0)
            }
        }

        /// `exec --serve`: the child asks for fresh tokens while it runs, across an expiry; only its accounts;
        /// `tokenvault token` inside it needs no passphrase; the socket goes when it exits.
        @Test func execServeHandsTheChildFreshTokensAcrossAnExpiry() async throws {
            // Tokens of 603 s against the 600 s margin: each lapses "soon" 3 s after it was issued.
            try await SandboxWorkspace.with(configure: { $0.accessTokenLifetime = 603 }) { s in
                let pairs = try await importPairs(s, ["alice", "bob"], expiresIn: 300)
                let out = s.ws.dir + "/child.out"
                let script = """
                    set -e
                    echo "var=$WEBEX_ACCESS_TOKEN" > '\(out)'
                    echo "socket=$TOKENVAULT_SOCKET" >> '\(out)'
                    echo "url=$TOKENVAULT_TOKEN_URL" >> '\(out)'
                    env | grep -c TOKENVAULT_PASSPHRASE >> '\(out)' || true
                    echo "first=$('\(tokenvaultBinary)' token alice)" >> '\(out)'
                    sleep 5
                    echo "second=$('\(tokenvaultBinary)' token alice)" >> '\(out)'
                    echo "curl=$(curl -s --unix-socket "$TOKENVAULT_SOCKET" "$TOKENVAULT_TOKEN_URL")" >> '\(out)'
                    echo "bob=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$TOKENVAULT_SOCKET" http://localhost/v1/accounts/bob/token)" >> '\(out)'
                    '\(tokenvaultBinary)' token bob 2>/dev/null || echo "bob-token-exit=$?" >> '\(out)'
                    exit 3
                    """
                let result = try await s.run(["exec", "--serve", "alice", "--", "/bin/sh", "-c", script])
                #expect(result.code == 3, "\(result.err)")
                let text = try String(contentsOfFile: out, encoding: .utf8)
                var values: [String: String] = [:]
                for line in text.split(separator: "\n") {
                    let parts = line.split(separator: "=", maxSplits: 1)
                    if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
                }
                #expect(values["var"] != nil && values["var"] != "", "\(text)")
                #expect(text.split(separator: "\n").contains("0"), "the child saw a passphrase variable: \(text)")
                let first = try #require(values["first"])
                let second = try #require(values["second"])
                #expect(!first.isEmpty && !second.isEmpty && first != second, "\(text)")
                #expect(first != pairs["alice"]!.access)
                #expect(values["curl"]?.contains(second) == true || values["curl"]?.contains("access_token") == true)
                #expect(values["bob"] == "403", "\(text)")
                #expect(values["bob-token-exit"] != nil, "\(text)")
                #expect(values["url"] == "http://localhost/v1/accounts/alice/token")
                let socket = try #require(values["socket"])
                #expect(!FileManager.default.fileExists(atPath: socket), "the socket outlived the command")
                #expect(await s.sandbox.counters.successfulRefreshes >= 2)
                s.expectNoSecrets(text + result.err, also: pairs.values.map(\.refresh))
            }
        }

        /// `exec --serve` stays the command's parent: SIGTERM goes on to the command, whose exit status is tokenvault's,
        /// and the socket goes with it.
        @Test func execServePassesSIGTERMOnAndExitsWithTheCommandsStatus() async throws {
            try await SandboxWorkspace.with { s in
                try await importPairs(s, ["alice"], expiresIn: 100_000)
                let out = s.ws.dir + "/child.out"
                let script = """
                    trap 'echo "term $TOKENVAULT_SOCKET" > "\(out)"; exit 9' TERM
                    echo "ready $TOKENVAULT_SOCKET" > "\(out).ready"
                    while :; do sleep 0.1; done
                    """
                let child = try s.start(["exec", "--serve", "alice", "--", "/bin/sh", "-c", script])
                let ready = try await offPool { () -> String in
                    for _ in 0..<600 {
                        if let text = try? String(contentsOfFile: out + ".ready", encoding: .utf8), text.hasSuffix("\n")
                        {
                            return text
                        }
                        usleep(50_000)
                    }
                    throw TestFailure("the command never started")
                }
                let socket = String(ready.dropFirst("ready ".count).dropLast())
                #expect(FileManager.default.fileExists(atPath: socket))
                child.signal(SIGTERM)
                let result = try await offPool { try child.wait(timeout: 60) }
                #expect(result.code == 9, "\(result.err)")
                #expect((try? String(contentsOfFile: out, encoding: .utf8))?.hasPrefix("term ") == true)
                #expect(!FileManager.default.fileExists(atPath: socket), "the socket outlived the command")
            }
        }

        /// 100 clients at once asking for a token that lapses within the margin: one refresh at the provider.
        @Test func aHundredClientsCauseOneRefresh() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await importPairs(s, ["alice"], expiresIn: 300)
                let dir = try sharedDirectory()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let socket = dir + "/token.sock"
                let serve = try await startServe(s, socket: socket)
                defer { serve.signal(SIGTERM) }
                let answers = try await offPool { () -> [(status: Int, body: String)] in
                    let results = LockedArray<(status: Int, body: String)>()
                    DispatchQueue.concurrentPerform(iterations: 100) { _ in
                        results.append((try? unixSocketGET(socket, "/v1/accounts/alice/token")) ?? (0, ""))
                    }
                    return results.values
                }
                #expect(answers.count == 100)
                #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.filter { $0.status != 200 }.prefix(3))")
                let tokens = Set(answers.compactMap { jsonObject($0.body)["access_token"] as? String })
                #expect(tokens.count == 1 && !tokens.contains(pairs["alice"]!.access), "\(tokens.count) tokens")
                #expect(await s.sandbox.counters.refreshGrants == 1)
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["alice"]!.refresh) == 1)
            }
        }
    }
}

/// An array appended to from many threads.
final class LockedArray<T>: @unchecked Sendable {
    private var items: [T] = []
    private let lock = NSLock()
    func append(_ item: T) { lock.withLock { items.append(item) } }
    var values: [T] { lock.withLock { items } }
}

/// One raw request over a Unix socket; the whole answer as text.
func unixSocketRequest(_ socket: String, _ request: String) throws -> String {
    let connection = try UnixSocketConnection(socket)
    connection.send(request)
    return connection.readAll()
}

/// A GET over a Unix socket: the status and the body.
func unixSocketGET(_ socket: String, _ path: String) throws -> (status: Int, body: String) {
    let text = try unixSocketRequest(socket, "GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
    guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("no HTTP answer: \(text)") }
    let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, String(text[split.upperBound...]))
}

/// A client connection to a Unix socket, for requests written by hand (a stalled one, garbage).
final class UnixSocketConnection: @unchecked Sendable {
    let fd: Int32

    init(_ path: String) throws {
        guard let fd = connectUnixSocket(path) else {
            throw TestFailure("cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func readAll() -> String {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            out += chunk[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether the server closed the connection (end of file) within `timeout` seconds.
    func waitForClose(timeout: Int) -> Bool {
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            if n == 0 { return true }
            if n < 0 { return false }
        }
    }
}
