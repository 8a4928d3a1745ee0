import Foundation
import Testing
import VaultCrypto
import VaultOAuth
import VaultStore

@testable import TokenVaultCore

/// The vault's named write operations (VaultWrites.swift) over a real vault file and real libsodium: each stores its
/// rows and their MAC'd audit entries together, or nothing.
@Suite struct VaultWritesTests {
    static func pair(_ access: String, refresh: String? = nil) -> TokenResponse {
        TokenResponse(
            accessToken: access, expiresIn: 3600, refreshToken: refresh,
            refreshTokenExpiresIn: refresh == nil ? nil : 86_400)
    }

    /// A vault with one integration, added through `addIntegration`.
    static func vaultWithIntegration() throws -> (CoreVault, Integration) {
        let v = try CoreVault()
        let integration = try v.vault.addIntegration(
            Integration(
                name: "webex", provider: "webex", clientId: "C1", clientSecretSealed: [],
                redirectURI: "http://localhost:8765/callback", scopes: ["spark:people_read"],
                apiBase: "https://webex.test/v1", envVar: "WEBEX_ACCESS_TOKEN", createdAt: v.now),
            clientSecret: SecretBytes(copying: Array("client secret".utf8)))
        return (v, integration)
    }

    @Test func anAddedIntegrationsSecretOpensBoundToItsSettings() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        let stored = try v.database.integration(named: "webex")
        #expect(stored == integration)
        #expect(try v.vault.clientSecret(of: stored).copyToString() == "client secret")
        var moved = stored
        moved.apiBase = "https://elsewhere.test/v1"
        #expect(throws: VaultError.self) { try v.vault.clientSecret(of: moved) }
        #expect(try v.database.auditEntries().isEmpty)
    }

    @Test func storingAnAuthorizedPairWritesTheRowAndItsMACdEntryTogether() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        let stored = try v.vault.storeAuthorizedPair(
            Self.pair("AT_1", refresh: "RT_1"), account: "alice", integration: integration,
            identity: Identity(id: "person-1", email: "alice@example.test"), trigger: .authorize, now: v.now)
        #expect(stored.personChange == nil)
        let row = try v.database.account(named: "alice")
        #expect(row == stored.account)
        #expect(row.personId == "person-1" && row.email == "alice@example.test")
        #expect(try v.vault.accessToken(of: row).copyToString() == "AT_1")
        #expect(try v.vault.refreshToken(of: row).copyToString() == "RT_1")
        let entries = try v.database.auditEntries()
        #expect(entries.map(\.draft.event) == [.authorized])
        #expect(entries.first?.draft.outcome == .ok)
        #expect(entries.first?.draft.pair == row.pair && row.pair != nil)
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func aNewAuthorizationReplacesThePairEntirelyAndNamesAnotherPerson() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        _ = try v.vault.storeAuthorizedPair(
            Self.pair("AT_1", refresh: "RT_1"), account: "alice", integration: integration,
            identity: Identity(id: "person-1", email: "alice@example.test"), trigger: .authorize, now: v.now)
        // No refresh token in the new answer: authorize keeps none of the old pair (import would keep it).
        let stored = try v.vault.storeAuthorizedPair(
            Self.pair("AT_2"), account: "alice", integration: integration,
            identity: Identity(id: "person-2", email: "mallory@example.test"), trigger: .authorizeDevice, now: v.now)
        #expect(
            stored.personChange
                == UnlockedVault.PersonChange(previous: "alice@example.test", current: "mallory@example.test"))
        let row = try v.database.account(named: "alice")
        #expect(row.refreshTokenSealed == nil && row.refreshExpiresAt == nil)
        #expect(try v.vault.accessToken(of: row).copyToString() == "AT_2")
        let last = try #require(try v.database.auditEntries().last)
        #expect(last.draft.outcome == .replacedPairAnotherPerson)
        #expect(last.draft.trigger == .authorizeDevice)
        #expect(
            last.draft.detail?.contains("was person-1 <alice@example.test>, now person-2 <mallory@example.test>")
                == true)
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func importedPairsAreStoredWithTheirEntriesAndKeepARefreshTokenNotSent() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        try v.vault.importPairs(
            [
                .init(account: "alice", response: Self.pair("AT_1", refresh: "RT_1"), replacing: nil),
                .init(account: "bob", response: Self.pair("AT_b"), replacing: nil),
            ],
            integration: integration, now: v.now)
        let before = try v.database.account(named: "alice")
        try v.vault.importPairs(
            [.init(account: "alice", response: Self.pair("AT_2"), replacing: before)],
            integration: integration, now: v.now)
        let row = try v.database.account(named: "alice")
        #expect(try v.vault.accessToken(of: row).copyToString() == "AT_2")
        #expect(try v.vault.refreshToken(of: row).copyToString() == "RT_1")
        #expect(row.pair != before.pair)
        let entries = try v.database.auditEntries()
        #expect(entries.map(\.draft.account) == ["alice", "bob", "alice"])
        #expect(entries.map(\.draft.event) == [.imported, .imported, .imported])
        #expect(entries.last?.draft.refreshTokenChanged == false)
        #expect(entries.last?.draft.pair == row.pair)
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func aFailedImportLeavesNeitherRowsNorEntries() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        try v.vault.importPairs(
            [.init(account: "bob", response: Self.pair("AT_b"), replacing: nil)],
            integration: integration, now: v.now)
        let head = try v.database.auditHead()
        // "bob" was stored meanwhile (the caller read no row for it): its insert fails, and the whole batch with it.
        #expect(throws: (any Error).self) {
            try v.vault.importPairs(
                [
                    .init(account: "alice", response: Self.pair("AT_1", refresh: "RT_1"), replacing: nil),
                    .init(account: "bob", response: Self.pair("AT_b2"), replacing: nil),
                ],
                integration: integration, now: v.now)
        }
        #expect(throws: StoreError.self) { try v.database.account(named: "alice") }
        #expect(try v.database.auditEntries().map(\.draft.account) == ["bob"])
        #expect(try v.database.auditHead().seq == head.seq)
        #expect(try v.vault.accessToken(of: v.database.account(named: "bob")).copyToString() == "AT_b")
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func aPairSealedUnderAReplacedKeyIsNotStored() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        // Another holder of the same store with a key that is not the vault's (as after a `keys rotate` elsewhere).
        let stale = UnlockedVault(database: v.database, keys: InProcessKeyHolder.generate())
        try v.vault.importPairs(
            [.init(account: "bob", response: Self.pair("AT_b"), replacing: nil)],
            integration: integration, now: v.now)
        // Only slots that bind a public key can tell; without one this test proves nothing, so it must have one.
        try #require(try v.database.keySlots().contains { $0.form == .box && $0.publicKey != nil })
        #expect(throws: VaultError.self) {
            try stale.importPairs(
                [.init(account: "alice", response: Self.pair("AT_1"), replacing: nil)],
                integration: integration, now: v.now)
        }
        #expect(throws: StoreError.self) { try v.database.account(named: "alice") }
        #expect(try v.database.auditEntries().count == 1)
    }

    @Test func recordingAnIdentityChangesOnlyTheMetadata() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        try v.vault.importPairs(
            [.init(account: "alice", response: Self.pair("AT_1", refresh: "RT_1"), replacing: nil)],
            integration: integration, now: v.now)
        let before = try v.database.account(named: "alice")
        try v.vault.recordIdentity(
            Identity(id: "person-1", email: "alice@example.test", displayName: "Alice", orgId: "org-1"),
            account: "alice")
        var row = try v.database.account(named: "alice")
        #expect(
            row.personId == "person-1" && row.email == "alice@example.test" && row.displayName == "Alice"
                && row.orgId == "org-1")
        row.personId = nil
        row.email = nil
        row.displayName = nil
        row.orgId = nil
        #expect(row == before)
        #expect(try v.database.auditEntries().count == 1)
    }

    @Test func aRejectedAccessTokenMarksTheAccountWithItsEntry() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        try v.vault.importPairs(
            [.init(account: "alice", response: Self.pair("AT_1", refresh: "RT_1"), replacing: nil)],
            integration: integration, now: v.now)
        try v.vault.markAccessTokenRejected(
            account: "alice", integration: "webex", trigger: .whoami,
            detail: "HTTP 401", now: v.now.addingTimeInterval(5))
        let row = try v.database.account(named: "alice")
        #expect(row.state == .needsReauth)
        #expect(row.updatedAt == v.now.addingTimeInterval(5))
        let last = try #require(try v.database.auditEntries().last)
        #expect(last.draft.event == .accessTokenRejected)
        #expect(last.draft.outcome == .needsReauthorizationAccessTokenRefused)
        #expect(last.draft.pair == nil)
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func aPersonWideRevocationRemovesThePairAndMarksTheSamePersonsAccounts() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        for name in ["alice", "alice-2", "bob", "nobody"] {
            try v.vault.importPairs(
                [.init(account: name, response: Self.pair("AT_\(name)"), replacing: nil)],
                integration: integration, now: v.now)
        }
        try v.vault.recordIdentity(Identity(id: "person-a"), account: "alice")
        try v.vault.recordIdentity(Identity(id: "person-a"), account: "alice-2")
        try v.vault.recordIdentity(Identity(id: "person-b"), account: "bob")
        let alice = try v.database.account(named: "alice")
        let with = try v.vault.revoke(
            alice, integration: integration,
            revocation: .init(
                trigger: .revoke, outcome: .revokedAt("webex"), detail: nil, personWideAt: "webex"), now: v.now)
        #expect(with.samePerson.map(\.name) == ["alice-2"])
        #expect(with.unknownPerson.map(\.name) == ["nobody"])
        #expect(throws: StoreError.self) { try v.database.account(named: "alice") }
        #expect(try v.database.account(named: "alice-2").state == .needsReauth)
        #expect(try v.database.account(named: "bob").state == .ok)
        let entries = try v.database.auditEntries().suffix(2)
        #expect(entries.map(\.draft.account) == ["alice", "alice-2"])
        #expect(entries.first?.draft.pair == "")
        #expect(entries.last?.draft.pair == nil)
        #expect(
            entries.last?.draft.outcome.rawValue.contains("revoked at webex with 'alice' (the same person)") == true)
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func aLocalRevocationTouchesNoOtherAccount() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        for name in ["alice", "alice-2"] {
            try v.vault.importPairs(
                [.init(account: name, response: Self.pair("AT_\(name)"), replacing: nil)],
                integration: integration, now: v.now)
            try v.vault.recordIdentity(Identity(id: "person-a"), account: name)
        }
        let with = try v.vault.revoke(
            try v.database.account(named: "alice"), integration: integration,
            revocation: .init(
                trigger: .revokeLocal, outcome: .removedLocally, detail: nil, personWideAt: nil), now: v.now)
        #expect(with.samePerson.isEmpty && with.unknownPerson.isEmpty)
        #expect(try v.database.account(named: "alice-2").state == .ok)
        #expect(try v.database.auditEntries().last?.draft.outcome == .removedLocally)
    }

    @Test func anEditReSealsTheSecretUnderTheNewSettingsWithAnEntryPerField() throws {
        let (v, old) = try Self.vaultWithIntegration()
        defer { v.remove() }
        var new = old
        new.scopes = ["spark:all"]
        new.envVar = "REPORTING_TOKEN"
        #expect(UnlockedVault.IntegrationChange.between(old, old, secretReplaced: false).isEmpty)
        let changes = try v.vault.editIntegration(
            old, to: new, clientSecret: SecretBytes(copying: Array("new secret".utf8)), now: v.now)
        #expect(changes.map(\.field) == ["scopes", "variable", "client secret"])
        let stored = try v.database.integration(named: "webex")
        #expect(stored.scopes == ["spark:all"] && stored.envVar == "REPORTING_TOKEN")
        #expect(try v.vault.clientSecret(of: stored).copyToString() == "new secret")
        let entries = try v.database.auditEntries()
        #expect(entries.map(\.draft.event) == [.integrationEdited, .integrationEdited, .integrationEdited])
        #expect(entries.last?.draft.detail == nil)
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func anEditOfAnIntegrationChangedMeanwhileWritesNothing() throws {
        let (v, old) = try Self.vaultWithIntegration()
        defer { v.remove() }
        var other = old
        other.redirectURI = "http://localhost:9999/callback"
        try v.vault.editIntegration(old, to: other, clientSecret: nil, now: v.now)
        let written = try v.database.integration(named: "webex")
        var new = old
        new.scopes = ["spark:all"]
        #expect(throws: VaultError.self) { try v.vault.editIntegration(old, to: new, clientSecret: nil, now: v.now) }
        #expect(try v.database.integration(named: "webex") == written)
        #expect(try v.database.auditEntries().count == 1)
    }

    @Test func removingAnIntegrationAuditsEachOfItsAccounts() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        try v.vault.importPairs(
            [
                .init(account: "alice", response: Self.pair("AT_a"), replacing: nil),
                .init(account: "bob", response: Self.pair("AT_b"), replacing: nil),
            ],
            integration: integration, now: v.now)
        try v.vault.removeIntegration(integration, accounts: try v.database.accounts(), now: v.now)
        #expect(try v.database.integrations().isEmpty)
        #expect(try v.database.accounts().isEmpty)
        let entries = try v.database.auditEntries().suffix(2)
        #expect(entries.map(\.draft.account) == ["alice", "bob"])
        #expect(entries.allSatisfy { $0.draft.trigger == .removeIntegration && $0.draft.pair == "" })
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    @Test func removingAnUnusedIntegrationNeedsNoKey() throws {
        let (v, integration) = try Self.vaultWithIntegration()
        defer { v.remove() }
        try UnlockedVault.removeUnusedIntegration(integration, from: v.database)
        #expect(try v.database.integrations().isEmpty)
        #expect(try v.database.auditEntries().isEmpty)
    }
}
