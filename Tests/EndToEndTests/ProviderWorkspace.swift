import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

/// What the provider tests know about each sandbox shape: the preset that talks to it and what to expect of it.
extension ProviderShape {
    /// The `--provider` preset for this shape (the OIDC shape is reached by the generic preset through discovery),
    /// also the name the tests give the integration.
    var integration: String { self == .oidc ? "generic" : rawValue }

    /// The scopes the test client is registered with at the sandbox: the preset's defaults and a few more.
    var registeredScopes: [String] {
        switch self {
        case .webex: SandboxWorkspace.scopes
        case .google: ["openid", "email", "profile"]
        case .microsoft: ["offline_access", "openid", "profile", "email", "User.Read", "Mail.Read"]
        // A GitHub App takes no scopes; these are for the OAuth-app test.
        case .github: ["repo", "read:user"]
        case .slack: ["users:read", "chat:write"]
        case .oidc: ["openid", "email", "profile", "offline_access"]
        }
    }

    /// The token endpoint as the sandbox counts it.
    var tokenRoute: String {
        switch self {
        case .webex: "POST /v1/access_token"
        case .google, .oidc: "POST /token"
        case .microsoft: "POST /{tenant}/oauth2/v2.0/token"
        case .github: "POST /login/oauth/access_token"
        case .slack: "POST /api/oauth.v2.access"
        }
    }

    /// The default variable of `env` and `exec`.
    var environmentVariable: String {
        switch self {
        case .webex: "WEBEX_ACCESS_TOKEN"
        case .google: "GOOGLE_ACCESS_TOKEN"
        case .microsoft: "MICROSOFT_ACCESS_TOKEN"
        case .github: "GITHUB_TOKEN"
        case .slack: "SLACK_USER_TOKEN"
        case .oidc: "OAUTH_ACCESS_TOKEN"
        }
    }

    /// Whether the preset has the device grant.
    var hasDeviceGrant: Bool { self != .slack }
}

extension SandboxConfiguration.User {
    /// A second person, so that an account authorized by one is told apart from another's.
    static let second = SandboxConfiguration.User(
        id: "sandbox-person-2", email: "sam@example.com", displayName: "Sam Second", orgId: "sandbox-org-2")
}

extension SandboxWorkspace {
    /// Runs `body` with a sandbox of `shape`, a client registered there (public or not; its secret is what tokenvault
    /// is given unless `secretGiven` says otherwise), a vault, and unless `add` is false the provider's integration
    /// added through the binary with the preset's defaults and `addArguments`. The sandbox knows two people; the
    /// first approves unless told otherwise.
    static func withProvider(
        _ shape: ProviderShape, publicClient: Bool = false, clockFollowsRealTime: Bool = false, add: Bool = true,
        addArguments: [String] = [], configure: (inout SandboxConfiguration) -> Void = { _ in },
        _ body: (SandboxWorkspace) async throws -> Void
    ) async throws {
        let clientId = (shape == .github ? "Iv1." : "C") + String(generatedToken().prefix(20))
        let secret = "cs-" + generatedToken()
        let redirect = "http://127.0.0.1:\(freePort())/callback"
        var configuration = SandboxConfiguration(
            shape: shape,
            clients: [
                .init(
                    clientId: clientId, clientSecret: secret, redirectURIs: [redirect], scopes: shape.registeredScopes,
                    isPublic: publicClient)
            ],
            users: [.sample, .second])
        configure(&configuration)
        let sandbox = ProviderSandbox(configuration: configuration, clockFollowsRealTime: clockFollowsRealTime)
        let base = try await sandbox.start()
        let s = SandboxWorkspace(
            sandbox: sandbox, base: base, clientId: clientId, clientSecret: secret, redirect: redirect,
            shape: shape, isPublicClient: publicClient)
        do {
            try await s.expectOK(["init", "--kdf", "interactive"])
            if add {
                let added = try await s.addProvider(addArguments)
                #expect(added.code == 0, "add: \(added.err)")
                if added.code != 0 { throw TestFailure("setup step failed: add --provider \(shape.integration)") }
            }
            try await body(s)
        } catch {
            await sandbox.stop()
            throw error
        }
        await sandbox.stop()
    }

    /// `add NAME --provider P` pointed at the sandbox (`--api-base ORIGIN`; `--issuer ORIGIN` for the generic preset),
    /// with the client's secret on stdin (or `--public-client`) and no other choice than the preset's defaults
    /// (Slack has no default scopes: it gets the registered ones), then `extra`.
    func addProvider(_ extra: [String] = [], secret: String? = nil) async throws -> ProcessResult {
        var arguments = [
            "add", shape.integration, "--provider", shape.integration, "--client-id", clientId, "--redirect-uri",
            redirect,
        ]
        arguments += shape == .oidc ? ["--issuer", base.absoluteString] : ["--api-base", base.absoluteString]
        if shape == .slack { arguments += ["--scopes", shape.registeredScopes.joined(separator: " ")] }
        arguments += isPublicClient ? ["--public-client"] : ["--client-secret-stdin"]
        return try await run(arguments + extra, stdin: isPublicClient ? "" : (secret ?? clientSecret))
    }

    /// The integration as `integrations --json` shows it.
    func integrationShown() async throws -> [String: Any] {
        let result = try await run(["integrations", "--json"])
        #expect(result.code == 0, "\(result.err)")
        let all = jsonObjects(result.out)
        #expect(all.count == 1, "\(result.out)")
        return all.first ?? [:]
    }

    /// `authorize ACCOUNT` through the loopback listener, the python3 stand-in following the redirects as a browser.
    func authorize(_ account: String, _ extra: [String] = []) async throws -> ProcessResult {
        let browser = try ws.browserStandIn("follow")
        return try await run(["authorize", account, "--timeout", "30"] + extra, environment: ["BROWSER": browser])
    }

    /// `authorize ACCOUNT --device`, approved as a person would: where tokenvault offers a complete verification URI
    /// the browser stand-in opens it (through a private page); otherwise the test opens the verification URI
    /// tokenvault showed with the user code it showed. `person` approves. Returns the run and the URI shown.
    func authorizeByDevice(_ account: String, as person: SandboxConfiguration.User = .sample) async throws
        -> (result: ProcessResult, shown: String)
    {
        let personId = person.id
        await sandbox.updateConfiguration { $0.currentUserId = personId }
        let browser = try ws.browserStandIn("open")
        let child = try start(
            ["authorize", account, "--device", "--timeout", "30"],
            environment: ["BROWSER": browser])
        defer { if !child.isFinished { child.signal(SIGKILL) } }
        let line = try await offPool { try child.waitForStderrLine { $0.contains("and enter the code ") } }
        _ = try await offPool { try child.waitForStderrLine { $0.hasPrefix("Waiting for approval") } }
        let pattern = /visit (\S+) and enter the code (\S+)$/
        guard let match = line.firstMatch(of: pattern) else { throw TestFailure("no code on: \(line)") }
        let (uri, code) = (String(match.output.1), String(match.output.2))
        if !child.err.contains("(or open ") {
            var components = try #require(URLComponents(string: uri))
            components.queryItems = [.init(name: "user_code", value: code)]
            let page = try #require(components.url)
            let (status, _) = try await offPool { try loopbackGET(page) }
            #expect(status == 200, "the verification page refused the code")
        }
        let result = try await offPool { try child.wait(timeout: 60) }
        await sandbox.updateConfiguration { $0.currentUserId = nil }
        return (result, uri)
    }

    /// `whoami ACCOUNT --json`, its values as text.
    func whoami(_ account: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: String] {
        let result = try await run(["whoami", account, "--json"])
        #expect(result.code == 0, "\(result.err)", sourceLocation: sourceLocation)
        return jsonObject(result.out, sourceLocation: sourceLocation).mapValues { "\($0)" }
    }

    /// Makes every account's stored pair an hour old (plain metadata), so that `refresh-all`'s default
    /// `--skip-recent` treats a pair another run refreshed meanwhile as recent and any other as due.
    func ageStoredPairs() async throws {
        try await sql("UPDATE account SET updated_at = updated_at - 3600; SELECT count(*) FROM account")
    }

    /// `sqlite(vault, sql)` (python3's sqlite3), waited for off the cooperative pool.
    @discardableResult
    func sql(_ statements: String) async throws -> String {
        let vault = ws.vault
        return try await offPool { try sqlite(vault, statements) }
    }
}

extension SandboxWorkspace {
    /// The lock files in `vault.db.locks/`, by account id, with when their status last changed (`ctime`): a process
    /// that starts waiting for an account's lock opens and `fchmod`s its file, which moves it.
    func lockFileChanges() throws -> [String: [Int]] {
        var changes: [String: [Int]] = [:]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: ws.locksDirectory)) ?? []
        for file in files where file.hasSuffix(".lock") {
            var info = stat()
            guard stat(ws.locksDirectory + "/" + file, &info) == 0 else { continue }
            changes[String(file.dropLast(".lock".count))] = [info.st_ctim.tv_sec, info.st_ctim.tv_nsec]
        }
        return changes
    }
}

/// Polls `condition` (state, never time) every 10 ms until it holds; fails after `timeout` seconds.
func waitUntil(_ what: String, timeout: TimeInterval = 60, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TestFailure("timed out waiting until \(what)")
}
