import Foundation
import GRDB
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultOAuth
import VaultStore

@testable import TokenVaultCore

/// Grants (MAC'd audit entries) and the token lender's decisions, over a real vault file and real libsodium. The
/// built binary's side (sockets, other uids) is in EndToEndTests' LendingBinaryTests.
@Suite struct LendingTests {
    func tamper(_ v: CoreVault, _ sql: String) throws {
        let queue = try DatabaseQueue(path: v.path)
        defer { try? queue.close() }
        try queue.write { try $0.execute(sql: sql) }
    }

    @Test func grantsAreAuditedFoldedAndWithdrawn() throws {
        let v = try CoreVault()
        defer { v.remove() }
        try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(3600))
        #expect(try v.vault.grant(account: "alice", to: .uid(33), name: "www-data", now: v.now))
        #expect(try v.vault.grant(account: "alice", to: .gid(44), name: nil, now: v.now))
        #expect(try !v.vault.grant(account: "alice", to: .uid(33), name: "www-data", now: v.now), "already granted")
        #expect(throws: StoreError.self) { try v.vault.grant(account: "nobody", to: .uid(33), name: nil, now: v.now) }
        #expect(Set(try v.vault.grants().map(\.grantee)) == [.uid(33), .gid(44)])
        #expect(try v.vault.grants().first { $0.grantee == .uid(33) }?.name == "www-data")

        #expect(try v.vault.ungrant(account: "alice", from: .uid(33), now: v.now))
        #expect(try !v.vault.ungrant(account: "alice", from: .uid(33), now: v.now), "nothing left to withdraw")
        #expect(try v.vault.grants().map(\.grantee) == [.gid(44)])
        // Granted again after a withdrawal: standing again.
        #expect(try v.vault.grant(account: "alice", to: .uid(33), name: nil, now: v.now))
        #expect(Set(try v.vault.grants().map(\.grantee)) == [.uid(33), .gid(44)])

        let events = try v.database.auditEntries().map(\.draft.event)
        #expect(events == [.granted, .granted, .ungranted, .granted])
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }

    /// Someone who can write the file but has no key: an edited grant, or a withdrawal removed, is refused.
    @Test func anEditedOrRemovedGrantEntryIsRefused() throws {
        for sql in [
            "DROP TRIGGER audit_entry_no_update; UPDATE audit_entry SET detail = 'to uid 0' WHERE event = 'granted'",
            "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry WHERE event = 'ungranted'",
            "INSERT INTO audit_entry (at, account, event, trigger, outcome, detail, mac) VALUES (0, 'alice', 'granted', 'grant', 'ok', 'to uid 4344', x'00')",
        ] {
            let v = try CoreVault()
            defer { v.remove() }
            try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(3600))
            try v.vault.grant(account: "alice", to: .uid(4343), name: nil, now: v.now)
            try v.vault.grant(account: "alice", to: .uid(4345), name: nil, now: v.now)
            try v.vault.ungrant(account: "alice", from: .uid(4345), now: v.now)
            try tamper(v, sql)
            #expect(throws: VaultError.self, "\(sql)") { try v.vault.grants() }
        }
    }

    func lender(_ v: CoreVault, policy: TokenLender.Policy) -> TokenLender {
        // No refresh is due (tokens valid for an hour): any request to a provider is a failure of the test.
        let transport = FakeTransport { _ in nil }
        return TokenLender(
            service: TokenService(vault: v.vault, services: v.services(transport), verbose: false), policy: policy,
            minValid: 600)
    }

    @Test func theOwnerGetsTheTokenAndOnlyTheAccountsItWasGiven() async throws {
        let v = try CoreVault()
        defer { v.remove() }
        try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(3600), accessToken: "AT_alice")
        let all = lender(v, policy: .init(ownerUID: 1000, lendToOthers: false, trigger: AuditTrigger("agent")))
        guard
            case .token(let lent, let notes) = await all.answer(path: "/v1/accounts/alice/token", uid: 1000, groups: [])
        else {
            Issue.record("the owner was refused")
            return
        }
        #expect(lent.accessToken == "AT_alice" && lent.tokenType == "Bearer" && lent.account == "alice")
        #expect(lent.integration == "webex" && lent.expiresIn == 3600)
        #expect(notes == .init(variable: "WEBEX_ACCESS_TOKEN", warnings: []), "the owner is told the variable")
        #expect(!TokenLender.json(lent).contains("RT_old") && !TokenLender.json(lent).contains("client secret"))
        if case .refused(let status, _) = await all.answer(path: "/v1/accounts/bob/token", uid: 1000, groups: []) {
            #expect(status == 404)
        } else {
            Issue.record("an unknown account was answered")
        }
        for path in ["/v1/accounts/alice", "/v2/accounts/alice/token", "/v1/accounts//token", "/"] {
            if case .refused(let status, _) = await all.answer(path: path, uid: 1000, groups: []) {
                #expect(status == 404, "\(path)")
            } else {
                Issue.record("\(path) was answered")
            }
        }
        // Another uid on an owner-only endpoint: 403, even for a known account.
        if case .refused(let status, _) = await all.answer(path: "/v1/accounts/alice/token", uid: 33, groups: [33]) {
            #expect(status == 403)
        } else {
            Issue.record("another uid was lent a token on an owner-only endpoint")
        }
        let some = lender(
            v, policy: .init(ownerUID: 1000, accounts: ["bob"], lendToOthers: false, trigger: AuditTrigger("exec")))
        if case .refused(let status, _) = await some.answer(path: "/v1/accounts/alice/token", uid: 1000, groups: []) {
            #expect(status == 403)
        } else {
            Issue.record("exec --serve lent an account it was not given")
        }
        // The synchronous path answers a token that needs no refresh, and leaves a lapsing one to the async path.
        if case .token(let now, _)? = all.answerNow(path: "/v1/accounts/alice/token", uid: 1000, groups: []) {
            #expect(now.accessToken == "AT_alice")
        } else {
            Issue.record("answerNow did not answer a fresh token")
        }
        #expect(all.answerNow(path: "/v1/accounts/alice/token", query: "min_valid=7200", uid: 1000, groups: []) == nil)
        if case .refused(let status, _)? = all.answerNow(path: "/v1/accounts/bob/token", uid: 1000, groups: []) {
            #expect(status == 404)
        } else {
            Issue.record("answerNow answered an unknown account")
        }
        #expect(try v.database.auditEntries().isEmpty, "the owner's requests are not audited as loans")
    }

    @Test func aGranteeIsLentItsAccountsOnceAuditedPerToken() async throws {
        let v = try CoreVault()
        defer { v.remove() }
        try v.addAccount("alice", accessExpiresAt: v.now.addingTimeInterval(3600), accessToken: "AT_alice")
        let serve = lender(v, policy: .init(ownerUID: 1000, lendToOthers: true, trigger: AuditTrigger("serve")))
        func status(_ name: String, uid: UInt32, groups: [UInt32]) async -> Int {
            switch await serve.answer(path: "/v1/accounts/\(name)/token", uid: uid, groups: groups) {
            case .token: 200
            case .refused(let status, _): status
            }
        }
        #expect(await status("alice", uid: 33, groups: [33]) == 403)
        #expect(await status("nobody", uid: 33, groups: [33]) == 403, "an unknown name looks like an ungranted one")
        try v.vault.grant(account: "alice", to: .gid(50), name: "deploy", now: v.now)
        #expect(await status("alice", uid: 33, groups: [33, 50]) == 200, "granted through a group")
        #expect(await status("alice", uid: 34, groups: [34]) == 403)
        try v.vault.grant(account: "alice", to: .uid(34), name: nil, now: v.now)
        for _ in 0..<3 { #expect(await status("alice", uid: 34, groups: [34]) == 200) }
        var lent = try v.database.auditEntries().filter { $0.draft.event == .lent }
        #expect(lent.count == 2, "once per grantee and token: \(lent.map(\.draft.detail))")
        let grantees = Set(lent.compactMap { $0.draft.detail?.split(separator: ",").first.map(String.init) })
        #expect(grantees == ["to uid 33", "to uid 34"])

        // A new pair is a new token: lent (and audited) again, once.
        let row = try v.database.account(named: "alice")
        try v.vault.importPairs(
            [
                .init(
                    account: "alice",
                    response: TokenResponse(accessToken: "AT_new", expiresIn: 3600, refreshToken: nil),
                    replacing: row)
            ], integration: try #require(try v.database.integration(named: "webex")), now: v.now)
        for _ in 0..<2 { #expect(await status("alice", uid: 34, groups: [34]) == 200) }
        lent = try v.database.auditEntries().filter { $0.draft.event == .lent }
        #expect(lent.count == 3)

        // Withdrawn: refused at the next request.
        try v.vault.ungrant(account: "alice", from: .uid(34), now: v.now)
        #expect(await status("alice", uid: 34, groups: [34]) == 403)
        #expect(try v.vault.verifyAudit().problems.isEmpty)
    }
}
