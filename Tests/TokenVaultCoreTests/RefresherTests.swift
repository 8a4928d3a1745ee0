import Foundation
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultOAuth
import VaultStore

@testable import TokenVaultCore

/// An unlocked vault in memory (the SQLite store's in-memory form) with a key holder of its own: the refresher's
/// unit tests need no file, no KDF and no network.
struct MemoryVault {
    let vault: UnlockedVault
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    var database: any VaultStorage { vault.database }

    init() throws {
        let keys = InProcessKeyHolder.generate()
        let head = try UnlockedVault.auditHeadMAC(keys: keys, seq: 0, entryMAC: [])
        vault = UnlockedVault(
            database: try SQLiteVault.inMemory(header: .keySlotsOnly(createdAt: now, now: now), auditHeadMAC: head),
            keys: keys)
    }

    /// An integration of `provider` served at `base`, and one account whose access token lapses in a minute.
    @discardableResult
    func add(
        _ name: String, provider: Provider.ID, base: String = "http://127.0.0.1:9", refreshToken: String = "RT_old",
        state: AccountState = .ok
    ) throws -> Account {
        var integration =
            try database.integrations().first { $0.provider == provider.rawValue }
            ?? {
                var i = Integration(
                    name: provider.rawValue, provider: provider.rawValue, clientId: "cid", clientSecretSealed: [],
                    redirectURI: "http://127.0.0.1:8765/cb", scopes: ["s"], apiBase: base,
                    envVar: Provider.preset(provider).defaultEnvironmentVariable, createdAt: now)
                i.clientSecretSealed = try vault.seal("secret", label: SealLabel.clientSecret(i))
                try database.write { try $0.insert(i) }
                return i
            }()
        _ = integration.id
        var account = Account(
            name: name, integrationId: integration.id, accessExpiresAt: now.addingTimeInterval(60),
            refreshExpiresAt: now.addingTimeInterval(30 * 86_400), state: state, createdAt: now, updatedAt: now)
        account.accessTokenSealed = try vault.seal("AT_old", label: SealLabel.accessToken(account))
        account.refreshTokenSealed = try vault.seal(refreshToken, label: SealLabel.refreshToken(account))
        try database.write { try $0.insert(account) }
        integration = try database.integration(id: integration.id)!
        return account
    }

    func services(_ transport: any HTTPTransport) -> VaultServices {
        let now = now
        return VaultServices(
            console: CapturingConsole(), now: { now }, sleep: { _ in }, makeTransport: { _ in transport },
            refreshOnUseBudget: 30)
    }

    func refreshToken(_ name: String) throws -> String? {
        try vault.refreshToken(of: try database.account(named: name)).copyToString()
    }
}

func answer(_ status: Int, _ body: String, form: Bool = false) -> HTTPResponse {
    HTTPResponse(
        status: status, headers: ["Content-Type": form ? "application/x-www-form-urlencoded" : "application/json"],
        body: Data(body.utf8))
}

@Suite struct RefresherTests {
    let slackPair =
        #"{"ok":true,"access_token":"xoxe.xoxp-new","refresh_token":"xoxe-1-new","expires_in":43200,"token_type":"user"}"#

    @Test func everyProviderIsRefreshedInItsOwnShapeAndRotatedTokensAreStored() async throws {
        let m = try MemoryVault()
        try m.add("w", provider: .webex, base: "https://webex.test/v1")
        try m.add("g", provider: .google)
        try m.add("s", provider: .slack)
        try m.add("h", provider: .github)
        try m.add("ms", provider: .microsoft)
        let slackPair = slackPair
        let transport = FakeTransport { r in
            switch r.url.absoluteString {
            case "https://webex.test/v1/access_token":
                answer(
                    200,
                    #"{"access_token":"AT_w","expires_in":1209599,"refresh_token":"RT_old","refresh_token_expires_in":7776000}"#
                )
            case "http://127.0.0.1:9/token":
                answer(200, #"{"access_token":"ya29.g","expires_in":3599,"scope":"openid","token_type":"Bearer"}"#)
            case "http://127.0.0.1:9/api/oauth.v2.access": answer(200, slackPair)
            case "http://127.0.0.1:9/login/oauth/access_token":
                answer(
                    200,
                    "access_token=ghu_new&expires_in=28800&refresh_token=ghr_new&refresh_token_expires_in=15811200&token_type=bearer",
                    form: true)
            case "http://127.0.0.1:9/common/oauth2/v2.0/token":
                answer(200, #"{"access_token":"eyJ.ms","expires_in":4000,"refresh_token":"M.new"}"#)
            default: nil
            }
        }
        let refresher = Refresher(vault: m.vault, services: m.services(transport), trigger: .refreshAll, verbose: false)
        for name in ["w", "g", "s", "h", "ms"] {
            let outcome = await refresher.refresh(try m.database.account(named: name)) { _ in true }
            #expect(outcome.status == .refreshed, "\(name): \(outcome.reason ?? "")")
        }
        #expect(transport.requests.count == 5)
        // Google answers without a refresh token: the old one is kept. The rotating ones store the new one.
        #expect(try m.refreshToken("g") == "RT_old" && m.refreshToken("w") == "RT_old")
        #expect(
            try m.refreshToken("s") == "xoxe-1-new" && m.refreshToken("h") == "ghr_new"
                && m.refreshToken("ms") == "M.new")
        let changed = Dictionary(
            uniqueKeysWithValues: try m.database.auditEntries().map { ($0.draft.account, $0.draft.refreshTokenChanged) }
        )
        #expect(changed == ["w": false, "g": false, "s": true, "h": true, "ms": true])
        #expect(try m.vault.verifyAudit().problems.isEmpty)
        // Slack's secret goes in HTTP Basic, GitHub's in the form.
        let slack = try #require(transport.requests.first { $0.url.path == "/api/oauth.v2.access" })
        #expect(slack.header("Authorization")?.hasPrefix("Basic ") == true)
        #expect(String(decoding: slack.body ?? Data(), as: UTF8.self).contains("client_secret") == false)
    }

    @Test func aProvidersOwnWordForADeadRefreshTokenMarksTheAccountWithoutRetrying() async throws {
        let m = try MemoryVault()
        try m.add("h", provider: .github)
        let transport = FakeTransport { _ in
            answer(200, #"{"error":"bad_refresh_token","error_description":"expired"}"#)
        }
        let outcome = await Refresher(
            vault: m.vault, services: m.services(transport), trigger: .refreshAll, verbose: false
        )
        .refresh(try m.database.account(named: "h")) { _ in true }
        #expect(outcome.status == .needsReauth)
        #expect(outcome.reason?.contains("bad_refresh_token") == true)
        #expect(transport.requests.count == 1)
        #expect(try m.database.account(named: "h").state == .needsReauth)
        #expect(try m.database.auditEntries().map(\.draft.outcome) == [.needsReauthorizationInvalidGrant])
        // The pair is unchanged: a later authorize replaces it.
        #expect(try m.refreshToken("h") == "RT_old")
    }

    @Test func aServerErrorIsRetriedAndAFailureLeavesThePairAndIsAudited() async throws {
        let m = try MemoryVault()
        try m.add("s", provider: .slack)
        let count = Counter()
        let slackPair = slackPair
        let flaky = FakeTransport { _ in count.next() == 1 ? answer(503, "") : answer(200, slackPair) }
        let ok = await Refresher(vault: m.vault, services: m.services(flaky), trigger: .refreshAll, verbose: false)
            .refresh(try m.database.account(named: "s")) { _ in true }
        #expect(ok.status == .refreshed && flaky.requests.count == 2)

        try m.add("s2", provider: .slack)
        let down = FakeTransport { _ in answer(503, "") }
        let failed = await Refresher(
            vault: m.vault, services: m.services(down), trigger: .refreshAll, verbose: false,
            retry: RetryPolicy(maxAttempts: 3)
        )
        .refresh(try m.database.account(named: "s2")) { _ in true }
        #expect(failed.status == .failed && down.requests.count == 3)
        #expect(failed.failure is OAuthError)
        #expect(try m.refreshToken("s2") == "RT_old")
        #expect(try m.database.auditEntries(account: "s2").map(\.draft.outcome) == [.failedPairUnchanged])
    }

    @Test func anAccountAlreadyRefusedIsNotSentAgain() async throws {
        let m = try MemoryVault()
        try m.add("g", provider: .google, state: .needsReauth)
        let transport = FakeTransport { _ in nil }
        let outcome = await Refresher(
            vault: m.vault, services: m.services(transport), trigger: .refreshAll, verbose: false
        )
        .refresh(try m.database.account(named: "g")) { _ in true }
        #expect(outcome.status == .needsReauth && outcome.reason == "the provider refused its refresh token earlier")
        #expect(transport.requests.isEmpty)
    }

    @Test func twoRefreshesOfOneAccountSendItsRefreshTokenOnce() async throws {
        let m = try MemoryVault()
        try m.add("s", provider: .slack)
        let slackPair = slackPair
        let gate = Gate()
        let transport = FakeTransport { _ in
            gate.pass()
            return answer(200, slackPair)
        }
        let refresher = Refresher(vault: m.vault, services: m.services(transport), trigger: .refreshAll, verbose: false)
        let planned = try m.database.account(named: "s")
        // The second refresh finds the pair fresh once it gets the lock (the first stored a new one).
        let stillNeeded: @Sendable (Account) -> Bool = { $0.accessExpiresAt == planned.accessExpiresAt }
        async let a = refresher.refresh(planned, stillNeeded: stillNeeded)
        async let b = refresher.refresh(planned, stillNeeded: stillNeeded)
        let statuses = await [a.status, b.status].map(\.rawValue).sorted()
        #expect(statuses == ["fresh", "refreshed"])
        #expect(transport.requests.count == 1)
        #expect(gate.passed == 1)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int {
        lock.withLock {
            value += 1
            return value
        }
    }
}

final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func pass() { lock.withLock { count += 1 } }
    var passed: Int { lock.withLock { count } }
}
