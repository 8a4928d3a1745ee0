import Foundation
import Testing
import TokenVaultTestSupport
import VaultOAuth
import VaultStore

@testable import TokenVaultCore

/// The token service (TokenService.swift) and the refresher under it, with a transport that answers in-process.
@Suite struct TokenServiceTests {
    static let newPair =
        #"{"access_token":"AT_new","expires_in":1209599,"refresh_token":"RT_new","refresh_token_expires_in":7776000,"token_type":"Bearer"}"#

    static func tokenEndpoint(_ status: Int, _ body: String) -> FakeTransport {
        FakeTransport { request in
            guard request.url.path.hasSuffix("/access_token") else { return nil }
            return HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: Data(body.utf8))
        }
    }

    @Test func aTokenValidLongEnoughIsHandedOutWithoutARequest() async throws {
        let v = try CoreVault()
        defer { v.remove() }
        let (account, integration) = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(86_400))
        let transport = FakeTransport { _ in nil }
        let token = try await TokenService(vault: v.vault, services: v.services(transport), verbose: false)
            .freshAccessToken(account: account, integration: integration, minValid: 600, trigger: "token")
        #expect(token == "AT_old")
        #expect(transport.requests.isEmpty)
    }

    @Test func aTokenAboutToLapseIsRefreshedStoredAndAuditedFirst() async throws {
        let v = try CoreVault()
        defer { v.remove() }
        let (account, integration) = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(60))
        let transport = Self.tokenEndpoint(200, Self.newPair)
        let token = try await TokenService(vault: v.vault, services: v.services(transport), verbose: false)
            .freshAccessToken(account: account, integration: integration, minValid: 600, trigger: "token")
        #expect(token == "AT_new")
        #expect(transport.requests.count == 1)
        #expect(
            transport.requests.first.map { String(decoding: $0.body ?? Data(), as: UTF8.self) }?.contains(
                "refresh_token=RT_old") == true)

        let stored = try v.database.account(named: "alice")
        #expect(try v.vault.refreshToken(of: stored).copyToString() == "RT_new")
        #expect(stored.accessExpiresAt == v.now.addingTimeInterval(1_209_599))
        let entries = try v.database.auditEntries()
        #expect(entries.map(\.draft.event) == [.refreshed])
        #expect(entries.first?.draft.refreshTokenChanged == true)
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func aRefusedRefreshTokenMarksTheAccountAndSaysToAuthorize() async throws {
        let v = try CoreVault()
        defer { v.remove() }
        let (account, integration) = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(-60))
        let transport = Self.tokenEndpoint(
            400, #"{"error":"invalid_grant","error_description":"refresh token expired"}"#)
        await #expect(throws: VaultError.self) {
            _ = try await TokenService(vault: v.vault, services: v.services(transport), verbose: false)
                .freshAccessToken(account: account, integration: integration, minValid: 600, trigger: "token")
        }
        #expect(try v.database.account(named: "alice").state == .needsReauth)
        #expect(try v.database.auditEntries().map(\.draft.event) == [.refreshFailed])
    }

    @Test func aProviderDownWhileTheTokenIsStillValidHandsItOutWithAWarning() async throws {
        let v = try CoreVault()
        defer { v.remove() }
        let (account, integration) = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(120))
        let transport = Self.tokenEndpoint(503, #"{"message":"down"}"#)
        let console = CapturingConsole()
        let token = try await TokenService(
            vault: v.vault, services: v.services(transport, console: console), verbose: false
        )
        .freshAccessToken(account: account, integration: integration, minValid: 600, trigger: "token")
        #expect(token == "AT_old")
        #expect(transport.requests.count == 2)  // the quick policy: two attempts while the token in hand is good
        #expect(console.text.contains("tokenvault: warning: could not refresh 'alice'"), "\(console.text)")
    }
}
