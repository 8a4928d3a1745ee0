import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

/// A timestamping HTTP proxy (python3) between tokenvault and the sandbox: it logs, for every request, when it
/// arrived, when its answer started to leave, the status, the route and the refresh token sent. The sandbox keeps counts but
/// no times; this log is what shows whether a client waited its Retry-After.
struct RequestLogProxy {
    let process: BackgroundProcess
    let base: String
    let log: String

    struct Entry {
        var arrived: Double
        var answered: Double
        var status: Int
        var route: String
        var refreshToken: String
    }

    /// - Parameters:
    ///   - basePath: appended to the proxy's origin in `base` (Webex's `/v1`; "" for the other shapes).
    ///   - dropping: request headers not passed on (lowercase names), to make the upstream answer another way.
    static func start(in ws: Workspace, upstream: URL, basePath: String = "/v1", dropping: [String] = []) async throws
        -> RequestLogProxy
    {
        guard let python3 else { throw TestFailure("python3 is needed for the proxy") }
        let log = ws.dir + "/proxy.log"
        let portFile = ws.dir + "/proxy.port"
        let script = try ws.write(
            "proxy.py",
            """
            import http.client, http.server, os, sys, threading, time, urllib.parse
            upstream_port, log_path, port_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
            dropped = ("host", "connection") + tuple(sys.argv[4:])
            lock = threading.Lock()
            log = open(log_path, "a", buffering=1)
            class Handler(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def log_message(self, *args):
                    pass
                def forward(self):
                    arrived = time.monotonic()
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                    upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    upstream.close()
                    # Stamped before the first byte goes out: the client cannot start its wait any earlier.
                    answered = time.monotonic()
                    self.send_response(response.status)
                    for k, v in response.getheaders():
                        if k.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                    token = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("refresh_token", ["-"])[0]
                    with lock:
                        log.write("%.6f %.6f %d %s %s %s\\n" % (arrived, answered, response.status, self.command,
                                                               self.path.split("?")[0], token))
                do_GET = do_POST = do_DELETE = forward
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            with open(port_path + ".tmp", "w") as f:
                f.write(str(server.server_address[1]))
            os.rename(port_path + ".tmp", port_path)
            server.serve_forever()
            """)
        let process = try BackgroundProcess(
            python3, [script, String(upstream.port!), log, portFile] + dropping,
            environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"])
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let port = try? String(contentsOfFile: portFile, encoding: .utf8), !port.isEmpty {
                return RequestLogProxy(process: process, base: "http://127.0.0.1:\(port)" + basePath, log: log)
            }
            if process.isFinished { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("the proxy did not start: \(process.err)")
    }

    func entries() throws -> [Entry] {
        try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 6, let a = Double(f[0]), let b = Double(f[1]), let status = Int(f[2]) else { return nil }
            return Entry(arrived: a, answered: b, status: status, route: "\(f[3]) \(f[4])", refreshToken: f[5])
        }
    }

    func stop() {
        process.signal(SIGKILL)
        _ = try? process.wait(timeout: 5)
    }
}

extension OAuthBinaryTests {
    /// refresh / refresh-all from the built binary: rate limits and outages, rotation, invalid_grant.
    @Suite struct Refresh {
        @Test(.enabled(if: python3 != nil || MachineTools.isCI, "python3 runs the timestamping proxy"))
        func refreshAllOver500AccountsWithRateLimitsAndOutages() async throws {
            try #require(python3 != nil, "CI=true: python3 runs the timestamping proxy")
            let retryAfter = 1
            try await SandboxWorkspace.with(
                integrate: false,
                configure: {
                    $0.faults = .init(
                        tooManyRequestsEvery: 17, retryAfterSeconds: retryAfter, serviceUnavailableEvery: 23)
                }
            ) { s in
                let proxy = try await RequestLogProxy.start(in: s.ws, upstream: s.base)
                defer { proxy.stop() }
                try await s.addIntegration(apiBase: proxy.base)
                let names = (0..<500).map { String(format: "user%03d", $0) }
                let pairs = try await s.importAccounts(names)
                let started = Date()
                let result = try await s.run(["refresh-all", "--json", "--skip-recent", "0"], timeout: 300)
                let seconds = Date().timeIntervalSince(started)
                #expect(result.code == 0, "\(result.err)")
                let report = jsonObject(result.out)
                #expect(report["total"] as? Int == 500)
                #expect(report["refreshed"] as? Int == 500, "\(result.err)")
                #expect(report["failed"] as? Int == 0)
                let statuses = Set(
                    (report["accounts"] as? [[String: Any]] ?? []).compactMap { $0["status"] as? String })
                #expect(statuses == ["refreshed"])
                var overused: [String] = []
                for (name, pair) in pairs where await s.sandbox.uses(ofRefreshToken: pair.refresh) != 1 {
                    overused.append(name)
                }
                #expect(overused.isEmpty, "refresh tokens not used exactly once: \(overused.prefix(10))")
                let counters = await s.sandbox.counters
                #expect(counters.successfulRefreshes == 500)
                #expect(counters.tooManyRequestsAnswered >= 500 / 17)
                #expect(counters.serviceUnavailableAnswered >= 500 / 23)

                // Retry-After honoured, judged per account from the proxy's clock: the next request carrying the
                // refresh token that got a 429 arrives at least Retry-After seconds after that 429 left the proxy.
                // (The client can only start waiting once it has the answer, so this bound holds for any client that
                // waits, however the run is scheduled; a client that ignored the header retries after its backoff,
                // 0-0.5 s with full jitter, and fails it.) A 503 carries no Retry-After: only "retried later" is checked.
                let entries = try proxy.entries().filter { $0.route == "POST /v1/access_token" }
                #expect(entries.count == 500 + counters.tooManyRequestsAnswered + counters.serviceUnavailableAnswered)
                var tooSoon: [String] = []
                var neverRetried = 0
                var shortestWait = Double.infinity
                for (index, entry) in entries.enumerated() where entry.status == 429 || entry.status == 503 {
                    guard
                        let next = entries[(index + 1)...].filter({ $0.refreshToken == entry.refreshToken })
                            .min(by: { $0.arrived < $1.arrived })
                    else {
                        neverRetried += 1
                        continue
                    }
                    let waited = next.arrived - entry.answered
                    if entry.status == 429 {
                        shortestWait = min(shortestWait, waited)
                        if waited < Double(retryAfter) { tooSoon.append(String(format: "%.3f s", waited)) }
                    } else if waited <= 0 {
                        tooSoon.append(String(format: "503 retried at %.3f s", waited))
                    }
                }
                #expect(neverRetried == 0)
                #expect(tooSoon.isEmpty, "retried sooner than Retry-After: \(tooSoon)")
                #expect(shortestWait >= Double(retryAfter))
                #expect(result.err.contains("refresh-all: 500 refreshed"), "\(result.err)")
                s.expectNoSecrets(result.err + result.out)
                print(
                    "refresh-all over 500 accounts: \(String(format: "%.1f", seconds)) s, \(counters.tooManyRequestsAnswered) × 429, \(counters.serviceUnavailableAnswered) × 503, shortest wait after a 429 \(String(format: "%.3f", shortestWait)) s"
                )
            }
        }

        @Test(arguments: [SandboxConfiguration.Rotation.on, .grace(seconds: 30)])
        func rotationStoresTheNewRefreshTokenAtOnce(rotation: SandboxConfiguration.Rotation) async throws {
            try await SandboxWorkspace.with(configure: { $0.rotation = rotation }) { s in
                let pairs = try await s.importAccounts(["alice"])
                let original = pairs["alice"]!.refresh
                let first = try await s.run(["refresh", "alice"])
                #expect(first.code == 0, "\(first.err)")
                #expect(first.err.contains("(new refresh token)"), "\(first.err)")
                #expect(await s.sandbox.uses(ofRefreshToken: original) == 1)
                #expect(await s.sandbox.isRefreshTokenValid(original) == false)
                // The second refresh must send the new refresh token: the old one would be refused (.on) or be
                // counted as a reuse of a rotated token (.grace).
                let second = try await s.run(["refresh", "alice"])
                #expect(second.code == 0, "\(second.err)")
                #expect(second.err.contains("(new refresh token)"), "\(second.err)")
                let counters = await s.sandbox.counters
                #expect(counters.rotatedRefreshTokenReuses == 0)
                #expect(counters.successfulRefreshes == 2)
                #expect(await s.sandbox.uses(ofRefreshToken: original) == 1)
                let token = try #require(try await s.token("alice"))
                #expect(token != pairs["alice"]!.access)
                #expect(await s.sandbox.isAccessTokenValid(token))
                let refreshed = try await s.auditEvents("alice").filter { $0["event"] as? String == "refreshed" }
                #expect(refreshed.count == 2)
                #expect(refreshed.allSatisfy { $0["refresh_token_changed"] as? Bool == true })
                #expect(try await s.run(["audit", "--verify"]).code == 0)
                s.expectNoSecrets(first.err + second.err, also: [original, token])
            }
        }

        @Test func invalidGrantMarksOneAccountNeedsReauthWhileTheOthersRefresh() async throws {
            try await SandboxWorkspace.with { s in
                let pairs = try await s.importAccounts(["a", "b", "c"])
                try await s.sandbox.revokeRefreshToken(pairs["b"]!.refresh)
                let result = try await s.run(["refresh-all", "--json", "--skip-recent", "0"])
                #expect(result.code == 5, "\(result.err)")
                // The line names the account and what to do.
                let line = result.err.split(separator: "\n").first {
                    $0.hasPrefix("tokenvault: b: needs re-authorization: ")
                }
                #expect(line?.contains("run 'tokenvault authorize'") == true, "\(result.err)")
                #expect(!result.err.contains("tokenvault: a:") && !result.err.contains("tokenvault: c:"))
                let report = jsonObject(result.out)
                #expect(report["refreshed"] as? Int == 2)
                #expect(report["needs_reauth"] as? Int == 1)
                let rows = try await s.listed()
                #expect(rows["b"]?["state"] as? String == "needs-reauth")
                #expect(rows["a"]?["state"] as? String == "ok")
                #expect(rows["c"]?["state"] as? String == "ok")
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["a"]!.refresh) == 1)
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["c"]!.refresh) == 1)
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["b"]!.refresh) == 1)  // never retried
                #expect(try await s.auditEvents("b").last?["event"] as? String == "refresh-failed")
                // A later run does not send it again, and still says exit 5.
                let again = try await s.run(["refresh-all", "--skip-recent", "0"])
                #expect(again.code == 5, "\(again.err)")
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["b"]!.refresh) == 1)
                #expect(await s.sandbox.uses(ofRefreshToken: pairs["a"]!.refresh) == 2)
                s.expectNoSecrets(result.err + result.out + again.err, also: [pairs["b"]!.refresh])
            }
        }
    }
}
