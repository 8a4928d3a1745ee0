import Foundation

/// The vault's header row: how the passphrase becomes a key, and the master key sealed under it.
public struct VaultHeader: Sendable, Equatable {
    public var kdfAlgorithm: String
    public var kdfSalt: [UInt8]
    public var kdfOpsLimit: UInt64
    public var kdfMemLimit: UInt64
    public var masterKeySealed: [UInt8]
    public var createdAt: Date
    public var passphraseChangedAt: Date

    public init(
        kdfAlgorithm: String, kdfSalt: [UInt8], kdfOpsLimit: UInt64, kdfMemLimit: UInt64,
        masterKeySealed: [UInt8], createdAt: Date, passphraseChangedAt: Date
    ) {
        self.kdfAlgorithm = kdfAlgorithm
        self.kdfSalt = kdfSalt
        self.kdfOpsLimit = kdfOpsLimit
        self.kdfMemLimit = kdfMemLimit
        self.masterKeySealed = masterKeySealed
        self.createdAt = createdAt
        self.passphraseChangedAt = passphraseChangedAt
    }
}

/// A registered OAuth integration (a Webex Integration's client id, sealed secret, redirect URI, scopes).
public struct Integration: Sendable, Equatable {
    public var id: String
    public var name: String
    public var provider: String
    public var clientId: String
    public var clientSecretSealed: [UInt8]
    public var redirectURI: String
    public var scopes: [String]
    public var apiBase: String
    public var envVar: String
    public var createdAt: Date
    /// Provider settings as JSON (schema v2): a Microsoft tenant, a generic provider's endpoints. Nil for a preset
    /// used as it is. Plain text, but bound into the client secret's seal label.
    public var providerOptions: String?

    public init(
        id: String = UUID().uuidString.lowercased(), name: String, provider: String, clientId: String,
        clientSecretSealed: [UInt8], redirectURI: String, scopes: [String], apiBase: String,
        envVar: String, createdAt: Date, providerOptions: String? = nil
    ) {
        self.id = id
        self.name = name
        self.provider = provider
        self.clientId = clientId
        self.clientSecretSealed = clientSecretSealed
        self.redirectURI = redirectURI
        self.scopes = scopes
        self.apiBase = apiBase
        self.envVar = envVar
        self.createdAt = createdAt
        self.providerOptions = providerOptions
    }
}

/// Whether an account's token pair can still be used without a browser.
public enum AccountState: String, Sendable, Codable {
    case ok
    /// The provider refused the refresh token (invalid_grant): only `authorize` brings it back.
    case needsReauth = "needs-reauth"
}

/// One user's token pair under an integration. Secrets are sealed; lifetimes and identity are plain metadata.
public struct Account: Sendable, Equatable {
    public var id: String
    public var name: String
    public var integrationId: String
    public var accessTokenSealed: [UInt8]?
    public var refreshTokenSealed: [UInt8]?
    public var accessExpiresAt: Date?
    public var refreshExpiresAt: Date?
    public var grantedScopes: [String]?
    public var email: String?
    public var displayName: String?
    public var orgId: String?
    public var personId: String?
    public var state: AccountState
    public var createdAt: Date
    public var updatedAt: Date
    /// The stored pair's random id (schema v5): bound into its tokens' seal labels and recorded by the audit entry
    /// that stored it. nil for a pair stored before v5.
    public var pair: String?

    public init(
        id: String = UUID().uuidString.lowercased(), name: String, integrationId: String,
        accessTokenSealed: [UInt8]? = nil, refreshTokenSealed: [UInt8]? = nil,
        accessExpiresAt: Date? = nil, refreshExpiresAt: Date? = nil, grantedScopes: [String]? = nil,
        email: String? = nil, displayName: String? = nil, orgId: String? = nil, personId: String? = nil,
        state: AccountState = .ok, createdAt: Date, updatedAt: Date, pair: String? = nil
    ) {
        self.pair = pair
        self.id = id
        self.name = name
        self.integrationId = integrationId
        self.accessTokenSealed = accessTokenSealed
        self.refreshTokenSealed = refreshTokenSealed
        self.accessExpiresAt = accessExpiresAt
        self.refreshExpiresAt = refreshExpiresAt
        self.grantedScopes = grantedScopes
        self.email = email
        self.displayName = displayName
        self.orgId = orgId
        self.personId = personId
        self.state = state
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// What `list` shows of an account: plain metadata only, no sealed bytes.
public struct AccountSummary: Sendable, Equatable {
    public var name: String
    public var integrationId: String
    public var hasAccessToken: Bool
    public var hasRefreshToken: Bool
    public var accessExpiresAt: Date?
    public var refreshExpiresAt: Date?
    public var grantedScopes: [String]?
    public var email: String?
    public var displayName: String?
    public var orgId: String?
    public var state: AccountState
    /// When the pair was last stored; the expiries are this plus the provider's lifetimes.
    public var updatedAt: Date
}

/// The kinds of event the audit log records: everything that changes a token's lifetime or existence.
public enum AuditEvent: String, Sendable, Codable, CaseIterable {
    case imported, authorized, refreshed, revoked
    case refreshFailed = "refresh-failed"
    /// Written by tokenvault itself when it finds the log's head disagreeing with its newest entry (entries
    /// deleted, the head reset): MAC'd like any entry, so the evidence survives later appends.
    case tamperDetected = "tamper-detected"
    /// The provider refused an account's access token even after a refresh (or with nothing to refresh it with):
    /// the account was marked needs-reauth.
    case accessTokenRejected = "access-token-rejected"
    /// An integration's settings or client secret changed (`integration edit`); `account` is empty.
    case integrationEdited = "integration-edited"
    /// A key slot was added (`keys add`); `account` is empty, the outcome names the slot.
    case keySlotAdded = "key-slot-added"
    /// A key slot was removed (`keys remove`): its passphrase opens this vault no more.
    case keySlotRemoved = "key-slot-removed"
    /// A key slot's passphrase (or KDF cost) changed (`passwd`).
    case passphraseChanged = "passphrase-changed"
    /// A new master key: every secret re-sealed, every slot given the new key, the log re-keyed (`keys rotate`).
    case masterKeyRotated = "master-key-rotated"
    /// Another user or group may be lent the account's access token (`grant`); the detail names the grantee.
    /// Grants live in the log itself: MAC'd and chained like every entry, so no one without the key can add one.
    case granted
    /// A grant was withdrawn (`ungrant`).
    case ungranted
    /// The token endpoint handed the account's access token to another user (once per grantee and token).
    case lent
}

/// What started the change an audit entry records: a command (with the flag that changes its meaning) or a use.
/// The text is what is stored and MAC'd; a value tokenvault does not know (an older or newer version, an edit)
/// is kept as it is.
public enum AuditTrigger: Sendable, Equatable, Hashable, CustomStringConvertible {
    case authorize, authorizeDevice, `import`, refresh, refreshAll, token, env, exec, whoami
    case revoke, revokeLocal, integrationEdit, removeIntegration
    case keysAdd, keysRemove, keysRotate, passwd
    case other(String)

    static let known: [(AuditTrigger, String)] = [
        (.authorize, "authorize"), (.authorizeDevice, "authorize --device"), (.import, "import"), (.refresh, "refresh"),
        (.refreshAll, "refresh-all"), (.token, "token"), (.env, "env"), (.exec, "exec"), (.whoami, "whoami"),
        (.revoke, "revoke"), (.revokeLocal, "revoke --local"), (.integrationEdit, "integration edit"),
        (.removeIntegration, "remove-integration"), (.keysAdd, "keys add"), (.keysRemove, "keys remove"),
        (.keysRotate, "keys rotate"), (.passwd, "passwd"),
    ]

    public init(_ text: String) {
        self = Self.known.first { $0.1 == text }?.0 ?? .other(text)
    }

    /// The stored text.
    public var rawValue: String {
        if case .other(let text) = self { return text }
        return Self.known.first { $0.0 == self }!.1
    }

    public var description: String { rawValue }
}

/// How the change an audit entry records ended. The text is what is stored and MAC'd (and what `audit` shows);
/// a value tokenvault does not know is kept as it is.
public enum AuditOutcome: Sendable, Equatable, Hashable, CustomStringConvertible {
    case ok
    /// `authorize` over an existing pair.
    case replacedPair
    /// `authorize` over an existing pair that belonged to another person.
    case replacedPairAnotherPerson
    /// The provider refused the refresh token.
    case needsReauthorizationInvalidGrant
    /// The provider refused the access token even after a refresh.
    case needsReauthorizationAccessTokenRefused
    case failedPairUnchanged
    case removedLocally
    /// `revoke`: revoked at this provider (its id) and removed.
    case revokedAt(String)
    case revokeFailedRemovedLocally
    /// tokenvault found the log's head disagreeing with its newest entry.
    case headMismatch
    /// `integration edit`: this integration's field changed (or its secret was replaced).
    case integrationChanged(integration: String, field: String, replaced: Bool)
    /// `keys add`, `keys remove`, `passwd`: what happened to which key slot ("added", "removed",
    /// "given a new passphrase").
    case keySlotChanged(slot: String, change: String)
    /// `keys rotate`: a new master key (what was re-sealed is in the entry's detail).
    case masterKeyReplaced
    case other(String)

    public init(_ text: String) {
        switch text {
        case "ok": self = .ok
        case "ok, replaced the previous pair": self = .replacedPair
        case "ok, replaced the previous pair: another person": self = .replacedPairAnotherPerson
        case "needs re-authorization (invalid_grant)": self = .needsReauthorizationInvalidGrant
        case "needs re-authorization (the provider refused the access token)":
            self = .needsReauthorizationAccessTokenRefused
        case "failed, pair unchanged": self = .failedPairUnchanged
        case "removed locally": self = .removedLocally
        case "removed locally; revoking at the provider failed": self = .revokeFailedRemovedLocally
        case Self.headMismatchText: self = .headMismatch
        case "master key replaced": self = .masterKeyReplaced
        default:
            if text.hasPrefix("revoked at "), text.hasSuffix(" and removed locally") {
                self = .revokedAt(String(text.dropFirst("revoked at ".count).dropLast(" and removed locally".count)))
            } else if text.hasPrefix("key slot '"), let end = text.dropFirst("key slot '".count).firstIndex(of: "'"),
                text[end...].hasPrefix("' "), !text[text.index(end, offsetBy: 2)...].isEmpty
            {
                // Slot names hold no quote (letters, digits, '.', '_', '-', '@').
                self = .keySlotChanged(
                    slot: String(text[text.index(text.startIndex, offsetBy: "key slot '".count)..<end]),
                    change: String(text[text.index(end, offsetBy: 2)...]))
            } else {
                self = .other(text)
            }
        }
    }

    static let headMismatchText =
        "the log's head did not match its newest entry: entries were removed or the head was edited"

    /// The stored text.
    public var rawValue: String {
        switch self {
        case .ok: "ok"
        case .replacedPair: "ok, replaced the previous pair"
        case .replacedPairAnotherPerson: "ok, replaced the previous pair: another person"
        case .needsReauthorizationInvalidGrant: "needs re-authorization (invalid_grant)"
        case .needsReauthorizationAccessTokenRefused: "needs re-authorization (the provider refused the access token)"
        case .failedPairUnchanged: "failed, pair unchanged"
        case .removedLocally: "removed locally"
        case .revokedAt(let provider): "revoked at \(provider) and removed locally"
        case .revokeFailedRemovedLocally: "removed locally; revoking at the provider failed"
        case .headMismatch: Self.headMismatchText
        case .integrationChanged(let integration, let field, let replaced):
            "integration '\(integration)': \(field) \(replaced ? "replaced" : "changed")"
        case .keySlotChanged(let slot, let change): "key slot '\(slot)' \(change)"
        case .masterKeyReplaced: "master key replaced"
        case .other(let text): text
        }
    }

    /// Whether the change succeeded (a new pair stored, or a pair removed as asked).
    public var isSuccess: Bool {
        switch self {
        case .ok, .replacedPair, .replacedPairAnotherPerson, .removedLocally, .revokedAt, .integrationChanged,
            .keySlotChanged, .masterKeyReplaced:
            true
        default: false
        }
    }

    public var description: String { rawValue }
}

/// An audit entry before it is written: the store assigns `seq`, the caller supplies the chained MAC.
public struct AuditDraft: Sendable, Equatable {
    public var at: Date
    public var account: String
    public var integration: String?
    public var event: AuditEvent
    public var trigger: AuditTrigger
    public var outcome: AuditOutcome
    public var accessExpiresBefore: Date?
    public var accessExpiresAfter: Date?
    public var refreshExpiresBefore: Date?
    public var refreshExpiresAfter: Date?
    public var refreshTokenChanged: Bool?
    public var detail: String?
    /// The account's pair after this entry (schema v5): the stored pair's id, "" when the entry left none (a
    /// revocation); nil when the entry did not change the pair.
    public var pair: String?

    public init(
        at: Date, account: String, integration: String?, event: AuditEvent, trigger: AuditTrigger,
        outcome: AuditOutcome, accessExpiresBefore: Date? = nil, accessExpiresAfter: Date? = nil,
        refreshExpiresBefore: Date? = nil, refreshExpiresAfter: Date? = nil,
        refreshTokenChanged: Bool? = nil, detail: String? = nil, pair: String? = nil
    ) {
        self.pair = pair
        self.at = at
        self.account = account
        self.integration = integration
        self.event = event
        self.trigger = trigger
        self.outcome = outcome
        self.accessExpiresBefore = accessExpiresBefore
        self.accessExpiresAfter = accessExpiresAfter
        self.refreshExpiresBefore = refreshExpiresBefore
        self.refreshExpiresAfter = refreshExpiresAfter
        self.refreshTokenChanged = refreshTokenChanged
        self.detail = detail
    }
}

/// A stored audit entry with its place in the chain.
public struct AuditEntry: Sendable, Equatable {
    public var seq: Int64
    public var draft: AuditDraft
    public var mac: [UInt8]

    /// The exact bytes the chained MAC covers: every field, in a fixed order, unambiguously separated.
    public static func canonicalBytes(seq: Int64, draft d: AuditDraft, previousMAC: [UInt8]) -> [UInt8] {
        func t(_ date: Date?) -> String { date.map { String(format: "%.3f", $0.timeIntervalSince1970) } ?? "-" }
        let fields: [String] =
            [
                "tokenvault-audit-v1", String(seq), t(d.at), d.account, d.integration ?? "-", d.event.rawValue,
                d.trigger.rawValue, d.outcome.rawValue, t(d.accessExpiresBefore), t(d.accessExpiresAfter),
                t(d.refreshExpiresBefore),
                t(d.refreshExpiresAfter), d.refreshTokenChanged.map { $0 ? "1" : "0" } ?? "-", d.detail ?? "-",
            ] + (d.pair.map { ["pair", $0] } ?? [])  // only when set: entries from before v5 keep their MACs
        // Length-prefix every field so that no choice of values can make two entries encode alike.
        var bytes = previousMAC
        for field in fields {
            let utf8 = Array(field.utf8)
            bytes += Array("\(utf8.count):".utf8) + utf8
        }
        return bytes
    }
}

extension AuditTrigger: ExpressibleByStringLiteral {
    public init(stringLiteral text: String) { self.init(text) }
}

extension AuditOutcome: ExpressibleByStringLiteral {
    public init(stringLiteral text: String) { self.init(text) }
}
