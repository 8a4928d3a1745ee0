import Foundation
import TokenVaultCore
import VaultAgent
import VaultOAuth
import VaultStore

// What `--json` prints, one type per report; `Format.json` writes any of them. A property that is optional is
// left out when nil, unless the report's `encode(to:)` writes it as null (the endpoints and provider options of an
// integration are always there). Times are `Date`s, written by the formatter as ISO 8601 UTC whole seconds.

/// One account of `list --json`.
struct AccountReport: Encodable, Sendable {
    var account: String
    var integration: String
    var provider: String
    var state: String
    var email: String?
    var displayName: String?
    var orgId: String?
    var accessExpiresAt: Date?
    var refreshExpiresAt: Date?
    var accessExpiresInSeconds: Int?
    var refreshExpiresInSeconds: Int?
    var scopes: [String]?

    enum CodingKeys: String, CodingKey {
        case account, integration, provider, state, email, scopes
        case displayName = "display_name"
        case orgId = "org_id"
        case accessExpiresAt = "access_expires_at"
        case refreshExpiresAt = "refresh_expires_at"
        case accessExpiresInSeconds = "access_expires_in_seconds"
        case refreshExpiresInSeconds = "refresh_expires_in_seconds"
    }
}

extension AccountReport {

    /// `integrations` and `providers` by integration id ("?" for one not found); `state` is the account's state
    /// as `list` shows it.
    init(_ a: AccountSummary, integrations: [String: String], providers: [String: String], state: String, now: Date) {
        account = a.name
        integration = integrations[a.integrationId] ?? "?"
        provider = providers[a.integrationId] ?? "?"
        self.state = state
        email = a.email
        displayName = a.displayName
        orgId = a.orgId
        accessExpiresAt = a.accessExpiresAt
        refreshExpiresAt = a.refreshExpiresAt
        accessExpiresInSeconds = a.accessExpiresAt.map { Int($0.timeIntervalSince(now)) }
        refreshExpiresInSeconds = a.refreshExpiresAt.map { Int($0.timeIntervalSince(now)) }
        scopes = a.grantedScopes
    }
}

/// One entry of `audit --json`.
struct AuditEntryReport: Encodable, Sendable {
    var seq: Int64
    var at: Date
    var account: String
    var event: String
    var trigger: String
    var outcome: String
    var integration: String?
    var accessExpiresBefore: Date?
    var accessExpiresAfter: Date?
    var refreshExpiresBefore: Date?
    var refreshExpiresAfter: Date?
    var refreshTokenChanged: Bool?
    var detail: String?

    enum CodingKeys: String, CodingKey {
        case seq, at, account, event, trigger, outcome, integration, detail
        case accessExpiresBefore = "access_expires_before"
        case accessExpiresAfter = "access_expires_after"
        case refreshExpiresBefore = "refresh_expires_before"
        case refreshExpiresAfter = "refresh_expires_after"
        case refreshTokenChanged = "refresh_token_changed"
    }
}

extension AuditEntryReport {
    init(_ entry: AuditEntry) {
        let d = entry.draft
        seq = entry.seq
        at = d.at
        account = d.account
        event = d.event.rawValue
        trigger = d.trigger.rawValue
        outcome = d.outcome.rawValue
        integration = d.integration
        accessExpiresBefore = d.accessExpiresBefore
        accessExpiresAfter = d.accessExpiresAfter
        refreshExpiresBefore = d.refreshExpiresBefore
        refreshExpiresAfter = d.refreshExpiresAfter
        refreshTokenChanged = d.refreshTokenChanged
        detail = d.detail
    }
}

/// `audit --verify --json`.
struct AuditVerificationReport: Encodable, Sendable {
    var entries: Int
    var intact: Bool
    var problems: [String]
    var head: String
    var headSeq: Int64

    enum CodingKeys: String, CodingKey {
        case entries, intact, problems, head
        case headSeq = "head_seq"
    }
}

/// `refresh-all --json`: the run and each account's outcome.
struct RefreshAllReport: Encodable, Sendable {
    var startedAt: Date
    /// Rounded to the millisecond.
    var durationSeconds: Double
    var total: Int
    var refreshed: Int
    var fresh: Int
    var needsReauth: Int
    var failed: Int
    var skipped: Int
    var pending: Int
    var accounts: [RefreshOutcomeReport]
    /// The log's head after the run (hex), for `audit --verify --expect-head`.
    var auditHead: String?
    var auditHeadSeq: Int64?

    enum CodingKeys: String, CodingKey {
        case total, refreshed, fresh, failed, skipped, pending, accounts
        case startedAt = "started_at"
        case durationSeconds = "duration_seconds"
        case needsReauth = "needs_reauth"
        case auditHead = "audit_head"
        case auditHeadSeq = "audit_head_seq"
    }
}

/// One account of `refresh-all --json`.
struct RefreshOutcomeReport: Encodable, Sendable {
    var account: String
    var integration: String
    var status: String
    var accessExpiresBefore: Date?
    var accessExpiresAt: Date?
    var refreshExpiresBefore: Date?
    var refreshExpiresAt: Date?
    var refreshTokenChanged: Bool?
    var error: String?
    var trackingId: String?

    enum CodingKeys: String, CodingKey {
        case account, integration, status, error
        case accessExpiresBefore = "access_expires_before"
        case accessExpiresAt = "access_expires_at"
        case refreshExpiresBefore = "refresh_expires_before"
        case refreshExpiresAt = "refresh_expires_at"
        case refreshTokenChanged = "refresh_token_changed"
        case trackingId = "tracking_id"
    }

    init(_ o: RefreshOutcome) {
        account = o.account
        integration = o.integration
        status = o.status.rawValue
        accessExpiresBefore = o.accessExpiresBefore
        accessExpiresAt = o.accessExpiresAfter
        refreshExpiresBefore = o.refreshExpiresBefore
        refreshExpiresAt = o.refreshExpiresAfter
        refreshTokenChanged = o.refreshTokenChanged
        error = o.reason
        trackingId = o.trackingId
    }
}

/// One account of `check --json`.
struct AttentionReport: Encodable, Sendable {
    var account: String
    var integration: String
    var event: String
    var detail: String

    init(_ a: Attention) {
        account = a.account
        integration = a.integration
        event = a.event.rawValue
        detail = a.detail
    }
}

/// `whoami --json`.
struct IdentityReport: Encodable, Sendable {
    var account: String
    var id: String
    var email: String?
    var displayName: String?
    var orgId: String?
    var type: String?

    enum CodingKeys: String, CodingKey {
        case account, id, email, type
        case displayName = "display_name"
        case orgId = "org_id"
    }

    init(account: String, _ identity: Identity) {
        self.account = account
        id = identity.id
        email = identity.email
        displayName = identity.displayName
        orgId = identity.orgId
        type = identity.type
    }
}

/// One key slot of `keys list --json`.
struct KeySlotReport: Encodable, Sendable {
    var name: String
    var form: String
    var kdfLevel: String
    var kdfOpslimit: UInt64
    var kdfMemlimit: UInt64
    var createdAt: Date
    var changedAt: Date

    enum CodingKeys: String, CodingKey {
        case name, form
        case kdfLevel = "kdf_level"
        case kdfOpslimit = "kdf_opslimit"
        case kdfMemlimit = "kdf_memlimit"
        case createdAt = "created_at"
        case changedAt = "changed_at"
    }
}

/// One integration of `integration list --json`, and `integration show --json` (without `provider_options`).
struct IntegrationReport: Encodable, Sendable {
    var name: String
    var provider: String
    var clientId: String
    var redirectURI: String
    var scopes: [String]
    var apiBase: String
    var envVar: String
    var accounts: Int
    /// Null when the integration's provider or API base cannot be read.
    var endpoints: EndpointsReport?
    /// Left out (`show`); null (no options, or options that cannot be read); or the options.
    var providerOptions: ProviderOptionsReport??

    enum CodingKeys: String, CodingKey {
        case name, provider, scopes, accounts, endpoints
        case clientId = "client_id"
        case redirectURI = "redirect_uri"
        case apiBase = "api_base"
        case envVar = "env_var"
        case providerOptions = "provider_options"
    }

    /// `withOptions`: whether `provider_options` is there at all.
    init(_ i: Integration, accounts: Int, withOptions: Bool) {
        name = i.name
        provider = i.provider
        clientId = i.clientId
        redirectURI = i.redirectURI
        scopes = i.scopes
        apiBase = i.apiBase
        envVar = i.envVar
        self.accounts = accounts
        endpoints = IntegrationEndpoints.of(i).map(EndpointsReport.init)
        if withOptions {
            providerOptions = .some(
                (try? ProviderOptions.decode(i.providerOptions)).flatMap { $0 }.map(ProviderOptionsReport.init))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(provider, forKey: .provider)
        try c.encode(clientId, forKey: .clientId)
        try c.encode(redirectURI, forKey: .redirectURI)
        try c.encode(scopes, forKey: .scopes)
        try c.encode(apiBase, forKey: .apiBase)
        try c.encode(envVar, forKey: .envVar)
        try c.encode(accounts, forKey: .accounts)
        try c.encode(endpoints, forKey: .endpoints)  // null when nil
        if let providerOptions { try c.encode(providerOptions, forKey: .providerOptions) }  // null when .some(nil)
    }
}

/// Where an integration's requests go (null for an endpoint the provider does not have).
struct EndpointsReport: Encodable, Sendable {
    var authorize: URL
    var token: URL
    var deviceAuthorization: URL?
    var revocation: URL?
    var userinfo: URL?

    enum CodingKeys: String, CodingKey {
        case authorize, token, revocation, userinfo
        case deviceAuthorization = "device_authorization"
    }

    init(_ e: Provider.ResolvedEndpoints) {
        authorize = e.authorize
        token = e.token
        deviceAuthorization = e.deviceAuthorize
        revocation = e.revoke
        userinfo = e.identity
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(authorize.absoluteString, forKey: .authorize)
        try c.encode(token.absoluteString, forKey: .token)
        try c.encode(deviceAuthorization?.absoluteString, forKey: .deviceAuthorization)
        try c.encode(revocation?.absoluteString, forKey: .revocation)
        try c.encode(userinfo?.absoluteString, forKey: .userinfo)
    }
}

/// An integration's provider options (those not set are left out).
struct ProviderOptionsReport: Encodable, Sendable {
    var tenant: String?
    var issuer: String?
    var authorizeURL: String?
    var tokenURL: String?
    var deviceURL: String?
    var revokeURL: String?
    var userinfoURL: String?
    var clientAuth: String?

    enum CodingKeys: String, CodingKey {
        case tenant, issuer
        case authorizeURL = "authorize_url"
        case tokenURL = "token_url"
        case deviceURL = "device_url"
        case revokeURL = "revoke_url"
        case userinfoURL = "userinfo_url"
        case clientAuth = "client_auth"
    }

    init(_ o: ProviderOptions) {
        tenant = o.tenant
        issuer = o.issuer
        authorizeURL = o.authorizeURL
        tokenURL = o.tokenURL
        deviceURL = o.deviceURL
        revokeURL = o.revokeURL
        userinfoURL = o.userinfoURL
        clientAuth = o.clientAuth?.rawValue
    }
}

/// `agent status --json` while an agent runs: what the agent says of itself, and where its socket is.
struct AgentStatusReport: Encodable, Sendable {
    var running = true
    var vault: String?
    var pid: Int?
    var identity: String?
    var since: Date?
    var until: Date?
    var idleSeconds: Int?
    var refreshEverySeconds: Int?
    var socket: String
    var socketFallbackReason: String?
    /// The agent's token endpoint (docs/lending.md), when it listens.
    var tokenSocket: String?

    enum CodingKeys: String, CodingKey {
        case running, vault, pid, identity, since, until, socket
        case tokenSocket = "token_socket"
        case idleSeconds = "idle_seconds"
        case refreshEverySeconds = "refresh_every_seconds"
        case socketFallbackReason = "socket_fallback_reason"
    }

    /// `status`: the agent's answer.
    init(status: AgentStatus, socket: String, fallbackReason: String?) {
        vault = status.vault
        pid = status.pid
        identity = status.identity
        since = status.sinceDate
        until = status.untilDate
        idleSeconds = status.idleSeconds
        refreshEverySeconds = status.refreshEverySeconds
        self.socket = socket
        socketFallbackReason = fallbackReason
        let token = Lending.agentSocketPath(keySocket: socket)
        tokenSocket = FileManager.default.fileExists(atPath: token) ? token : nil
    }
}
