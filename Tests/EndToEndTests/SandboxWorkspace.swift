import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

/// The OAuth flows of the built binary against an in-process provider-sandbox over loopback. One suite, run serially
/// (the children and the sandbox share two cores); its sub-suites live in the files named after them.
@Suite(.tags(.process), .serialized) struct OAuthBinaryTests {}

/// Runs blocking work (waiting for a child) on a Dispatch thread, off Swift's small cooperative pool: the
/// in-process sandbox answers the child's requests on that pool, and two blocked waits would starve it.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

/// A workspace with a vault, an in-process sandbox and (unless told otherwise) an integration `webex` pointing at it;
/// or, made by `withProvider` (ProviderWorkspace.swift), a sandbox of another shape and that provider's integration.
final class SandboxWorkspace: @unchecked Sendable {
    static let scopes = ["spark:people_read", "spark:kms", "identity:tokens_write"]
    let ws = Workspace()
    let sandbox: ProviderSandbox
    let base: URL
    let clientId: String
    let clientSecret: String
    let redirect: String
    let user = SandboxConfiguration.User.sample
    /// Whose endpoints the sandbox serves; the integration's name is that of the preset talking to it.
    let shape: ProviderShape
    /// `--public-client`: the client has no secret tokenvault knows of.
    let isPublicClient: Bool

    init(
        sandbox: ProviderSandbox, base: URL, clientId: String, clientSecret: String, redirect: String,
        shape: ProviderShape = .webex, isPublicClient: Bool = false
    ) {
        self.sandbox = sandbox
        self.base = base
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.redirect = redirect
        self.shape = shape
        self.isPublicClient = isPublicClient
    }

    /// Starts a sandbox whose one integration is registered with a free loopback redirect URI, and creates the vault.
    static func make(
        clockFollowsRealTime: Bool = false, integrate: Bool = true,
        configure: (inout SandboxConfiguration) -> Void = { _ in }
    ) async throws -> SandboxWorkspace {
        let clientId = "C" + String(generatedToken().prefix(24))
        let secret = "cs-" + generatedToken()
        let redirect = "http://127.0.0.1:\(freePort())/callback"
        var configuration = SandboxConfiguration(clients: [
            .init(clientId: clientId, clientSecret: secret, redirectURIs: [redirect], scopes: scopes)
        ])
        configure(&configuration)
        let sandbox = ProviderSandbox(configuration: configuration, clockFollowsRealTime: clockFollowsRealTime)
        let base = try await sandbox.start()
        let s = SandboxWorkspace(
            sandbox: sandbox, base: base, clientId: clientId, clientSecret: secret, redirect: redirect)
        do {
            try await s.expectOK(["init", "--kdf", "interactive"])
            if integrate { try await s.addIntegration() }
        } catch {
            await sandbox.stop()
            throw error
        }
        return s
    }

    /// Runs `body` with a fresh sandbox workspace and stops the sandbox whatever happens.
    static func with(
        clockFollowsRealTime: Bool = false, integrate: Bool = true,
        configure: (inout SandboxConfiguration) -> Void = { _ in },
        _ body: (SandboxWorkspace) async throws -> Void
    ) async throws {
        let s = try await make(clockFollowsRealTime: clockFollowsRealTime, integrate: integrate, configure: configure)
        do { try await body(s) } catch {
            await s.sandbox.stop()
            throw error
        }
        await s.sandbox.stop()
    }

    func addIntegration(apiBase: String? = nil) async throws {
        try await expectOK(
            [
                "add", "webex", "--client-id", clientId, "--redirect-uri", redirect,
                "--scopes", Self.scopes.joined(separator: " "), "--api-base", apiBase ?? base.absoluteString,
                "--client-secret-stdin",
            ], stdin: clientSecret)
    }

    /// The binary, run to completion off the cooperative pool.
    func run(
        _ arguments: [String], stdin: String = "", environment: [String: String?] = [:], timeout: TimeInterval = 120
    ) async throws -> ProcessResult {
        let ws = ws
        return try await offPool {
            try ws.tokenvault(arguments, stdin: stdin, environment: environment, timeout: timeout)
        }
    }

    func expectOK(_ arguments: [String], stdin: String = "", sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let result = try await run(arguments, stdin: stdin)
        #expect(result.code == 0, "\(arguments): \(result.err)", sourceLocation: sourceLocation)
        if result.code != 0 { throw TestFailure("setup step failed: \(arguments)") }
    }

    /// The binary in the background (its own session: no terminal), its stdin left open.
    func start(_ arguments: [String], environment: [String: String?] = [:]) throws -> BackgroundProcess {
        try ws.start(arguments, environment: environment, newSession: true)
    }

    /// Two processes started together, both waited for: the shape of every "two refresh-all runs at once" test.
    func runTogether(_ first: [String], _ second: [String]) async throws -> (
        BackgroundProcess.Result, BackgroundProcess.Result
    ) {
        let one = try start(first)
        let two = try start(second)
        let a = try await offPool { try one.wait(timeout: 120) }
        let b = try await offPool { try two.wait(timeout: 120) }
        return (a, b)
    }

    /// The accounts whose refresh token the sandbox did not see exactly once.
    func refreshTokensNotUsedOnce(_ pairs: [String: (access: String, refresh: String)]) async -> [String] {
        var misused: [String] = []
        for (name, pair) in pairs where await sandbox.uses(ofRefreshToken: pair.refresh) != 1 { misused.append(name) }
        return misused.sorted()
    }

    /// Accounts holding pairs the sandbox issued (generated test data), imported with one `import --batch` into the
    /// workspace's integration (`webex`, or the provider's), with the lifetimes the sandbox gave them.
    @discardableResult
    func importAccounts(_ names: [String]) async throws -> [String: (access: String, refresh: String)] {
        var pairs: [String: (access: String, refresh: String)] = [:]
        var lines: [String] = []
        let now = await sandbox.now
        for name in names {
            let pair = try await sandbox.issueTokenPair(clientId: clientId, userId: user.id)
            pairs[name] = (pair.accessToken, pair.refreshToken)
            // Webex's pairs keep the figures its tests were written with; another shape's, the sandbox's own.
            let lifetime =
                shape == .webex
                ? nil : await sandbox.accessTokenExpiry(pair.accessToken).map { Int($0.timeIntervalSince(now)) }
            var object = jsonObject(
                tokenJSON(access: pair.accessToken, refresh: pair.refreshToken, expiresIn: lifetime ?? 1_209_599))
            object["account"] = name
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
        }
        try await expectOK(
            ["import", "--batch", "--integration", shape.integration], stdin: lines.joined(separator: "\n") + "\n")
        return pairs
    }

    /// `list --json`, keyed by account.
    func listed() async throws -> [String: [String: Any]] {
        let result = try await run(["list", "--json"])
        #expect(result.code == 0, "\(result.err)")
        var rows: [String: [String: Any]] = [:]
        for row in jsonObjects(result.out) { if let name = row["account"] as? String { rows[name] = row } }
        return rows
    }

    func auditEvents(_ account: String) async throws -> [[String: Any]] {
        jsonObjects(try await run(["audit", account, "--json"]).out)
    }

    /// The access token `tokenvault token NAME` prints (nil when it fails).
    func token(_ account: String) async throws -> String? {
        let result = try await run(["token", account])
        return result.code == 0 ? result.out.trimmingCharacters(in: .newlines) : nil
    }

    /// Secrets that no message may ever show.
    func expectNoSecrets(_ text: String, also extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in [clientSecret, Workspace.passphrase] + extra where !secret.isEmpty {
            #expect(!text.contains(secret), "a secret leaked into the output:\n\(text)", sourceLocation: sourceLocation)
        }
    }
}
