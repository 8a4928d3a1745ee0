import Foundation
import Testing
import VaultAgent
import VaultOAuth

@testable import TokenVaultCLI
@testable import TokenVaultCore
@testable import VaultStore

/// `--json` reports are Codable types written by JSONEncoder. Their output is byte for byte what the dictionaries
/// they replaced gave through JSONSerialization (`.prettyPrinted, .sortedKeys, .withoutEscapingSlashes`, whose
/// bytes the hand-written writer before them matched): the same keys, nulls where there were nulls, keys left out
/// where they were left out, the same numbers and times. The dictionaries below are the old code, kept as the
/// reference.
@Suite struct ReportJSONTests {
    private func foundation(_ value: Any) -> String {
        String(
            decoding: try! JSONSerialization.data(
                withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    private var generator = SystemRandomNumberGenerator()
    private let pieces = [
        "a", "Z", "_", "é", "€", "/", "\"", "\\", "\n", "\r", "\t", "\u{01}", "\u{08}", "\u{0C}", "\u{1F}", "\u{7F}",
        " ", "😀", "<", "&",
    ]
    private mutating func text() -> String {
        (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }
    private mutating func maybe<T>(_ make: (inout Self) -> T) -> T? {
        Bool.random(using: &generator) ? make(&self) : nil
    }
    private mutating func date() -> Date {
        // Fractions of a second too (the hand-written timestamp rounds to the millisecond first).
        Date(timeIntervalSince1970: Double.random(in: -2_000_000_000...40_000_000_000, using: &generator))
    }

    @Test mutating func listIsWhatItWas() {
        let now = Date(timeIntervalSince1970: 1_800_000_000.25)
        for _ in 0..<300 {
            let a = AccountSummary(
                name: text(), integrationId: text(), hasAccessToken: true, hasRefreshToken: true,
                accessExpiresAt: maybe { $0.date() }, refreshExpiresAt: maybe { $0.date() },
                grantedScopes: maybe { s in (0..<Int.random(in: 0...3)).map { _ in s.text() } },
                email: maybe { $0.text() }, displayName: maybe { $0.text() }, orgId: maybe { $0.text() },
                state: .ok, updatedAt: now)
            let integrations = Bool.random() ? [a.integrationId: text()] : [:]
            let providers = Bool.random() ? [a.integrationId: text()] : [:]
            let state = text()
            var o: [String: Any] = [
                "account": a.name, "integration": integrations[a.integrationId] ?? "?",
                "provider": providers[a.integrationId] ?? "?", "state": state,
            ]
            o["email"] = a.email
            o["display_name"] = a.displayName
            o["org_id"] = a.orgId
            o["access_expires_at"] = a.accessExpiresAt.map(Format.timestamp)
            o["refresh_expires_at"] = a.refreshExpiresAt.map(Format.timestamp)
            o["access_expires_in_seconds"] = a.accessExpiresAt.map { Int($0.timeIntervalSince(now)) }
            o["refresh_expires_in_seconds"] = a.refreshExpiresAt.map { Int($0.timeIntervalSince(now)) }
            o["scopes"] = a.grantedScopes
            let report = AccountReport(a, integrations: integrations, providers: providers, state: state, now: now)
            #expect(Format.json([report]) == foundation([o]))
        }
        #expect(Format.json([AccountReport]()) == foundation([Any]()))
    }

    @Test mutating func auditIsWhatItWas() {
        for seq in 0..<300 {
            let d = AuditDraft(
                at: date(), account: text(), integration: maybe { $0.text() },
                event: AuditEvent.allCases.randomElement()!,
                trigger: [.refreshAll, .other(text()), .whoami].randomElement()!,
                outcome: [.ok, .replacedPair, .other(text())].randomElement()!,
                accessExpiresBefore: maybe { $0.date() }, accessExpiresAfter: maybe { $0.date() },
                refreshExpiresBefore: maybe { $0.date() }, refreshExpiresAfter: maybe { $0.date() },
                refreshTokenChanged: maybe { _ in Bool.random() }, detail: maybe { $0.text() })
            let entry = AuditEntry(seq: Int64(seq) * 7_919, draft: d, mac: [])
            var object: [String: Any] = [
                "seq": entry.seq, "at": Format.timestamp(d.at), "account": d.account, "event": d.event.rawValue,
                "trigger": d.trigger.rawValue, "outcome": d.outcome.rawValue,
            ]
            object["integration"] = d.integration
            object["access_expires_before"] = d.accessExpiresBefore.map(Format.timestamp)
            object["access_expires_after"] = d.accessExpiresAfter.map(Format.timestamp)
            object["refresh_expires_before"] = d.refreshExpiresBefore.map(Format.timestamp)
            object["refresh_expires_after"] = d.refreshExpiresAfter.map(Format.timestamp)
            object["refresh_token_changed"] = d.refreshTokenChanged
            object["detail"] = d.detail
            #expect(Format.json([AuditEntryReport(entry)]) == foundation([object]))
        }
        let verification = AuditVerificationReport(
            entries: 12, intact: false, problems: [text(), text()], head: "ab01", headSeq: 11)
        #expect(
            Format.json(verification)
                == foundation(
                    [
                        "entries": verification.entries, "intact": verification.intact,
                        "problems": verification.problems,
                        "head": verification.head, "head_seq": verification.headSeq,
                    ] as [String: Any]))
    }

    @Test mutating func refreshAllIsWhatItWas() {
        for _ in 0..<100 {
            var outcomes: [RefreshOutcome] = []
            for _ in 0..<Int.random(in: 0...4) {
                var o = RefreshOutcome(
                    account: text(), integration: text(),
                    status: [.refreshed, .alreadyFresh, .failed, .pending].randomElement()!,
                    accessExpiresBefore: maybe { $0.date() }, accessExpiresAfter: maybe { $0.date() })
                o.refreshExpiresBefore = maybe { $0.date() }
                o.refreshExpiresAfter = maybe { $0.date() }
                o.refreshTokenChanged = maybe { _ in Bool.random() }
                o.trackingId = maybe { $0.text() }
                if Bool.random() { o.failure = CLIError.usage(text()) }
                outcomes.append(o)
            }
            let start = date()
            let seconds = [0, 1.5, 0.1234567, 3, 1234.5678, Double.random(in: 0...100_000)].randomElement()!
            let head: (seq: Int64, mac: [UInt8])? =
                Bool.random() ? (Int64.random(in: 0...1_000_000), [1, 2, 0xfe]) : nil
            var old: [String: Any] = [
                "started_at": Format.timestamp(start), "duration_seconds": (seconds * 1000).rounded() / 1000,
                "total": outcomes.count, "refreshed": outcomes.filter { $0.status == .refreshed }.count,
                "fresh": outcomes.filter { $0.status == .alreadyFresh }.count, "needs_reauth": 0,
                "failed": outcomes.filter { $0.status == .failed }.count, "skipped": 0,
                "pending": outcomes.filter { $0.status == .pending }.count,
                "accounts": outcomes.map { outcome -> [String: Any] in
                    var o: [String: Any] = [
                        "account": outcome.account, "integration": outcome.integration,
                        "status": outcome.status.rawValue,
                    ]
                    o["access_expires_before"] = outcome.accessExpiresBefore.map(Format.timestamp)
                    o["access_expires_at"] = outcome.accessExpiresAfter.map(Format.timestamp)
                    o["refresh_expires_before"] = outcome.refreshExpiresBefore.map(Format.timestamp)
                    o["refresh_expires_at"] = outcome.refreshExpiresAfter.map(Format.timestamp)
                    o["refresh_token_changed"] = outcome.refreshTokenChanged
                    o["error"] = outcome.reason
                    o["tracking_id"] = outcome.trackingId
                    return o
                },
            ]
            old["audit_head"] = head.map { UnlockedVault.hex($0.mac) }
            old["audit_head_seq"] = head?.seq
            #expect(
                Format.json(TokenVault.RefreshAll.report(outcomes, start: start, seconds: seconds, auditHead: head))
                    == foundation(old))
        }
    }

    @Test mutating func integrationsAreWhatTheyWere() throws {
        let webex = Integration(
            id: "i1", name: "work", provider: "webex", clientId: "C1/\"x", clientSecretSealed: [],
            redirectURI: "http://127.0.0.1:8765/callback", scopes: ["spark:all", "a/b"],
            apiBase: "https://webexapis.com/v1", envVar: "WEBEX_TOKEN", createdAt: Date())
        var broken = webex
        broken.provider = "no-such-provider"
        var withOptions = webex
        withOptions.provider = "microsoft"
        withOptions.providerOptions = ProviderOptions(tenant: "contoso.onmicrosoft.com").encoded()
        for i in [webex, broken, withOptions] {
            let endpoints: Any =
                IntegrationEndpoints.of(i).map { e -> Any in
                    func text(_ url: URL?) -> Any { url.map { $0.absoluteString } ?? NSNull() }
                    return [
                        "authorize": e.authorize.absoluteString, "token": e.token.absoluteString,
                        "device_authorization": text(e.deviceAuthorize), "revocation": text(e.revoke),
                        "userinfo": text(e.identity),
                    ] as [String: Any]
                } ?? NSNull()
            var shown: [String: Any] = [
                "name": i.name, "provider": i.provider, "client_id": i.clientId, "redirect_uri": i.redirectURI,
                "scopes": i.scopes, "api_base": i.apiBase, "env_var": i.envVar, "accounts": 3, "endpoints": endpoints,
            ]
            #expect(Format.json(IntegrationReport(i, accounts: 3, withOptions: false)) == foundation(shown))
            shown["provider_options"] =
                (try? ProviderOptions.decode(i.providerOptions)).flatMap { $0 }.map { o -> [String: Any] in
                    var d: [String: Any] = [:]
                    d["tenant"] = o.tenant
                    d["issuer"] = o.issuer
                    d["authorize_url"] = o.authorizeURL
                    d["token_url"] = o.tokenURL
                    d["device_url"] = o.deviceURL
                    d["revoke_url"] = o.revokeURL
                    d["userinfo_url"] = o.userinfoURL
                    d["client_auth"] = o.clientAuth?.rawValue
                    return d
                } ?? NSNull()
            #expect(Format.json([IntegrationReport(i, accounts: 3, withOptions: true)]) == foundation([shown]))
        }
    }

    @Test mutating func smallReportsAreWhatTheyWere() {
        let identity = Identity(
            id: text(), email: maybe { $0.text() }, displayName: maybe { $0.text() }, orgId: nil, type: "person")
        var o: [String: Any] = ["account": "alice", "id": identity.id]
        o["email"] = identity.email
        o["display_name"] = identity.displayName
        o["org_id"] = identity.orgId
        o["type"] = identity.type
        #expect(Format.json(IdentityReport(account: "alice", identity)) == foundation(o))

        let created = date()
        let changed = date()
        #expect(
            Format.json([
                KeySlotReport(
                    name: "main", form: "wrapped", kdfLevel: "moderate", kdfOpslimit: 3, kdfMemlimit: 268_435_456,
                    createdAt: created, changedAt: changed)
            ])
                == foundation([
                    [
                        "name": "main", "form": "wrapped", "kdf_level": "moderate", "kdf_opslimit": UInt64(3),
                        "kdf_memlimit": UInt64(268_435_456),
                        "created_at": Format.timestamp(created), "changed_at": Format.timestamp(changed),
                    ] as [String: Any]
                ]))

        let attention = Attention(account: text(), integration: text(), event: .needsReauth, detail: text())
        #expect(
            Format.json([AttentionReport(attention)])
                == foundation([
                    [
                        "account": attention.account, "integration": attention.integration,
                        "event": attention.event.rawValue, "detail": attention.detail,
                    ]
                ]))

        // The agent's answer (epoch seconds) as `agent status --json` gives it.
        for until in [Int?.some(1_800_000_600), nil] {
            var status: [String: Any] = [
                "vault": "/v/vault.db", "pid": 4242, "since": 1_800_000_000, "identity": "2049-77",
            ]
            status["until"] = until
            status["idle_seconds"] = until.map { _ in 900 }
            var old = status
            old["running"] = true
            for key in ["since", "until"] {
                if let seconds = old[key] as? Int {
                    old[key] = Format.timestamp(Date(timeIntervalSince1970: TimeInterval(seconds)))
                }
            }
            old["socket"] = "/run/user/1000/tokenvault/2049-77.sock"
            old["socket_fallback_reason"] = until.map { _ in "it belongs to uid 0" }
            #expect(
                Format.json(
                    AgentStatusReport(
                        status: AgentStatus(
                            vault: "/v/vault.db", pid: 4242, identity: "2049-77", since: 1_800_000_000, until: until,
                            idleSeconds: until.map { _ in 900 }), socket: "/run/user/1000/tokenvault/2049-77.sock",
                        fallbackReason: until.map { _ in "it belongs to uid 0" })) == foundation(old))
        }
    }
}
