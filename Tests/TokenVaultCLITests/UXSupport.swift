import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport
import VaultOAuth

@testable import TokenVaultCLI
@testable import TokenVaultCore

extension Harness {
    /// `run`, with a chosen console and an optional hook on every request.
    func run(
        _ arguments: [String], stdin: String = "", console: any Console,
        beforeRequest: (@Sendable (HTTPRequest) async -> Void)? = nil
    ) async -> Int32 {
        let clock = now
        let input = Data(stdin.utf8)
        let sleeps = self.sleeps
        let context = Context(
            environment: environment, console: console, terminal: nil, now: { clock },
            readStandardInput: { input }, kdfParameters: cheapKDF,
            makeTransport: { LoopbackOnlyTransport(tracer: $0, before: beforeRequest) },
            sleep: { await sleeps.sleep($0) },
            openBrowser: { _, _ in false },
            execute: { _, _, _ in
                Issue.record("exec ran without a test stand-in")
                return 127
            })
        return await TokenVault.run(arguments: arguments, context: context)
    }
}

/// A loopback port that accepts connections (the kernel completes them into the backlog) and never answers:
/// a stalled provider.
final class StalledListener: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    init() {
        let (fd, port) = boundLoopbackSocket()
        listen(fd, 64)
        self.fd = fd
        self.port = port
    }

    deinit { close(fd) }
}

extension SandboxHarness {
    /// Imports one account holding a pair the sandbox issued, with the lifetimes the sandbox gave it.
    func importAccount(_ name: String, accessLifetime: Int, refreshLifetime: Int?, withRefreshToken: Bool = true)
        async throws -> (access: String, refresh: String)
    {
        let pair = try await sandbox.issueTokenPair(clientId: clientId, userId: SandboxConfiguration.User.sample.id)
        try await h.expectOK(
            ["import", name, "--integration", "webex"],
            stdin: tokenJSON(
                access: pair.accessToken, refresh: withRefreshToken ? pair.refreshToken : nil,
                expiresIn: accessLifetime, refreshExpiresIn: refreshLifetime ?? 7_776_000))
        return (pair.accessToken, pair.refreshToken)
    }
}
