import Foundation
import Testing
import VaultCrypto
import VaultOAuth
import VaultStore

@testable import TokenVaultCore

/// Each stored pair's id, bound into its labels and recorded by its audit entry: a rolled-back row is refused, a
/// row merely read before another process stored a newer pair is not (that race is not tampering).
@Suite struct PairBindingTests {
    func storeNewPair(_ v: CoreVault, _ name: String, access: String) throws -> Account {
        var account = try v.database.account(named: name)
        let before = account
        try TokenStore.apply(
            TokenResponse(accessToken: access, expiresIn: 3600, refreshToken: "RT_" + access), to: &account,
            vault: v.vault, now: v.now)
        let stored = account
        try v.database.write { w in
            try w.update(stored)
            try v.vault.appendAudit(
                AuditDraft(
                    at: v.now, account: name, integration: "webex", event: .refreshed, trigger: .refresh,
                    outcome: .ok, accessExpiresBefore: before.accessExpiresAt, pair: stored.pair), in: w)
        }
        return stored
    }

    @Test func aRowReadBeforeANewerPairIsStaleNotTampered() throws {
        let v = try CoreVault()
        defer { v.remove() }
        _ = try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(60))
        let first = try storeNewPair(v, "alice", access: "AT_one")
        let readEarlier = try v.database.account(named: "alice")
        #expect(readEarlier.pair == first.pair && first.pair?.count == 32)
        let second = try storeNewPair(v, "alice", access: "AT_two")
        #expect(second.pair != first.pair)
        // Another process stored `second` after this one read the row: its token still opens.
        #expect(try v.vault.accessToken(of: readEarlier).copyToString() == "AT_one")
        #expect(try v.vault.accessToken(of: try v.database.account(named: "alice")).copyToString() == "AT_two")
        // The same old row written back into the store is a rollback: refused.
        try v.database.write { try $0.update(readEarlier) }
        let error = #expect(throws: VaultError.self) { try v.vault.accessToken(of: readEarlier) }
        #expect(
            error?.localizedDescription.contains("its row does not hold the pair audit entry") == true,
            "\(String(describing: error))")
        // A kept refresh token (the provider sent none) moves to the new pair's label and still opens.
        try v.database.write { try $0.update(second) }
        var kept = second
        try TokenStore.apply(
            TokenResponse(accessToken: "AT_three", expiresIn: 3600), to: &kept, vault: v.vault, now: v.now)
        #expect(kept.pair != second.pair)
        #expect(
            try v.vault.open(kept.refreshTokenSealed!, label: SealLabel.refreshToken(kept), what: "r").copyToString()
                == "RT_AT_two")
    }
}
