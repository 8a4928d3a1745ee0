import Foundation
import GRDB
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// Vaults written before env_var was bound into the client secret's label keep working: the secret is re-sealed
/// under the new label the first time it is opened, and from then on an edited env_var fails.
@Suite struct LegacyClientSecretTests {
    func unlocked(_ h: Harness) throws -> UnlockedVault {
        let context = Context(
            environment: h.environment, console: CapturingConsole(), terminal: nil,
            readStandardInput: { Data() }, kdfParameters: cheapKDF)
        return try UnlockedVault.unlock(try SQLiteVault.open(at: h.vaultPath), source: .environment, context: context)
    }

    /// Re-seals the integration's client secret under the label tokenvault 0.1.0 used.
    func sealUnderTheOldLabel(_ h: Harness) throws -> [UInt8] {
        let vault = try unlocked(h)
        let integration = try vault.database.integration(named: "webex1")
        let secret = try vault.clientSecret(of: integration)
        let old = try vault.seal(secret, label: SealLabel.legacyClientSecret(integration))
        try tamper(h, "UPDATE integration SET client_secret_sealed = ?", [Data(old)])
        return old
    }

    func storedSecret(_ h: Harness) throws -> [UInt8] {
        let queue = try DatabaseQueue(path: h.vaultPath)
        defer { try? queue.close() }
        return try queue.read { try [UInt8](Data.fetchOne($0, sql: "SELECT client_secret_sealed FROM integration")!) }
    }

    @Test func anOldVaultIsUpgradedOnceAndThenBindsEnvVar() async throws {
        let (h, access, _) = try await Harness.withAccount()
        let old = try sealUnderTheOldLabel(h)
        let result = await h.run(["env", "alice"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.out == "export WEBEX_ACCESS_TOKEN='\(access)'\n")
        let upgraded = try storedSecret(h)
        #expect(upgraded != old)
        let vault = try unlocked(h)
        let integration = try vault.database.integration(named: "webex1")
        _ = try vault.open(upgraded, label: SealLabel.clientSecret(integration), what: "the upgraded secret")
        // Bound now: another name fails the check.
        try tamper(h, "UPDATE integration SET env_var = 'OTHER_TOKEN'")
        #expect(await h.run(["env", "alice"]).code == 7)
    }

    @Test func anOldVaultWithAReservedNameIsNotUpgraded() async throws {
        let (h, access, _) = try await Harness.withAccount()
        let old = try sealUnderTheOldLabel(h)
        try tamper(h, "UPDATE integration SET env_var = 'LD_PRELOAD'")
        let result = await h.run(["env", "alice"])
        #expect(result.code == 7, "\(result.err)")
        #expect(result.err.contains("LD_PRELOAD"))
        #expect(!result.out.contains(access))
        #expect(try storedSecret(h) == old)
    }
}
