import Foundation
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultOAuth
import VaultStore

@testable import TokenVaultCore

/// A new vault in a temporary directory, unlocked with real libsodium at the lowest KDF cost.
struct CoreVault {
    static let kdf: @Sendable (KDFParameters.Level) -> KDFParameters = { _ in
        KDFParameters(opsLimit: 1, memLimit: 8192, salt: Random.bytes(KDFParameters.saltBytes))
    }

    let directory: URL
    let vault: UnlockedVault
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    var database: any VaultStorage { vault.database }
    var path: String { directory.appendingPathComponent("vault.db").path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tokenvault-core-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let passphrase = SecretBytes(copying: Array("core test passphrase".utf8))
        let path = directory.appendingPathComponent("vault.db").path
        let created = try UnlockedVault.create(
            at: path, passphrase: passphrase, parameters: Self.kdf(.interactive), now: now)
        vault = try UnlockedVault.unlock(
            created.database, kdfParameters: Self.kdf, attempts: 1, console: CapturingConsole()
        ) { passphrase }
    }

    /// An integration with its client secret sealed, and an account holding a pair that lapses at `accessExpiresAt`.
    func addAccount(
        _ name: String, accessExpiresAt: Date, accessToken: String = "AT_old",
        refreshToken: String = "RT_old"
    ) throws -> (Account, Integration) {
        var integration = Integration(
            name: "webex", provider: "webex", clientId: "C1", clientSecretSealed: [],
            redirectURI: "http://localhost:8765/callback", scopes: ["spark:people_read"],
            apiBase: "https://webex.test/v1", envVar: "WEBEX_ACCESS_TOKEN", createdAt: now)
        integration.clientSecretSealed = try vault.seal("client secret", label: SealLabel.clientSecret(integration))
        var account = Account(
            name: name, integrationId: integration.id, accessExpiresAt: accessExpiresAt,
            refreshExpiresAt: now.addingTimeInterval(90 * 86_400), createdAt: now, updatedAt: now)
        account.accessTokenSealed = try vault.seal(accessToken, label: SealLabel.accessToken(account))
        account.refreshTokenSealed = try vault.seal(refreshToken, label: SealLabel.refreshToken(account))
        try database.write { w in
            try w.insert(integration)
            try w.insert(account)
        }
        return (account, integration)
    }

    func services(_ transport: any HTTPTransport, console: CapturingConsole = CapturingConsole()) -> VaultServices {
        let now = now
        return VaultServices(
            console: console, now: { now }, sleep: { _ in }, makeTransport: { _ in transport },
            refreshOnUseBudget: 30)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
