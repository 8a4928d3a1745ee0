import Foundation
import VaultCrypto
import VaultOAuth
import VaultStore

/// The vault's writes that keep an invariant, as named operations (GRDB's `AppDatabase` write methods are the
/// model): a new pair is stored with its audit entry, an integration is added, edited or removed with its entries,
/// a revocation removes the pair with its entry, in one transaction each. Commands, the agent and any other front
/// end call these and present the result; none opens a write transaction of its own. A refresh stores its pair
/// through `Refresher` (its commits are shared between concurrent refreshes).
extension UnlockedVault {
    // MARK: Token pairs

    /// A token pair obtained elsewhere, to store for an account (`importPairs`).
    public struct NewPair: Sendable {
        public var account: String
        public var response: TokenResponse
        /// The account's row as read before (nil: a new account). A response without a refresh token keeps this
        /// row's refresh token.
        public var replacing: Account?

        public init(account: String, response: TokenResponse, replacing: Account?) {
            self.account = account
            self.response = response
            self.replacing = replacing
        }
    }

    /// Stores token pairs obtained elsewhere (`import`) into `integration`, each with its audit entry, all in one
    /// transaction: either every pair and entry is stored, or none. An account in `replacing` is updated, any
    /// other inserted (a name taken meanwhile fails the whole batch).
    public func importPairs(_ pairs: [NewPair], integration: Integration, now: Date) throws {
        var prepared: [PreparedPair] = []
        for pair in pairs {
            let before = pair.replacing
            var record =
                before ?? Account(name: pair.account, integrationId: integration.id, createdAt: now, updatedAt: now)
            try TokenStore.apply(pair.response, to: &record, vault: self, now: now)
            prepared.append(
                PreparedPair(
                    record: record, isNew: before == nil,
                    entry: AuditDraft(
                        at: now, account: pair.account, integration: integration.name, event: .imported,
                        trigger: .import,
                        outcome: .ok, accessExpiresBefore: before?.accessExpiresAt,
                        accessExpiresAfter: record.accessExpiresAt,
                        refreshExpiresBefore: before?.refreshExpiresAt, refreshExpiresAfter: record.refreshExpiresAt,
                        refreshTokenChanged: before == nil ? nil : pair.response.refreshToken != nil, pair: record.pair)
                ))
        }
        try store(prepared)
    }

    /// What `storeAuthorizedPair` stored.
    public struct AuthorizedPair: Sendable {
        /// The account's row as stored.
        public var account: Account
        /// Set when the account belonged to another person before (a login CSRF looks exactly like this).
        public var personChange: PersonChange?
    }

    /// The same account name now acting as another person: who it was and who it is (emails where known).
    public struct PersonChange: Sendable, Equatable {
        public var previous: String
        public var current: String
    }

    /// Stores the pair an authorization gave (`authorize`) with its audit entry, in one transaction. A new pair
    /// replaces an existing account's old one entirely, refresh token and granted scopes included; `identity`
    /// (plain metadata) is recorded with it. An account that belonged to another person is audited as such and
    /// reported in the result.
    public func storeAuthorizedPair(
        _ response: TokenResponse, account name: String, integration: Integration,
        identity: Identity?, trigger: AuditTrigger, now: Date
    ) throws -> AuthorizedPair {
        let before = try? database.account(named: name)
        var record = before ?? Account(name: name, integrationId: integration.id, createdAt: now, updatedAt: now)
        if before != nil {
            record.refreshTokenSealed = nil
            record.refreshExpiresAt = nil
            record.grantedScopes = nil
        }
        try TokenStore.apply(response, to: &record, vault: self, now: now)
        if let identity { Self.setIdentity(identity, on: &record) }
        var outcome: AuditOutcome = before == nil ? .ok : .replacedPair
        var detail: String?
        var change: PersonChange?
        if let before, let previous = before.personId, let identity, identity.id != previous {
            outcome = .replacedPairAnotherPerson
            detail =
                "was \(previous)\(before.email.map { " <\($0)>" } ?? ""), now \(identity.id)\(identity.email.map { " <\($0)>" } ?? "")"
            change = PersonChange(previous: before.email ?? previous, current: identity.email ?? identity.id)
        }
        try store([
            PreparedPair(
                record: record, isNew: before == nil,
                entry: AuditDraft(
                    at: now, account: name, integration: integration.name, event: .authorized, trigger: trigger,
                    outcome: outcome,
                    accessExpiresBefore: before?.accessExpiresAt, accessExpiresAfter: record.accessExpiresAt,
                    refreshExpiresBefore: before?.refreshExpiresAt, refreshExpiresAfter: record.refreshExpiresAt,
                    refreshTokenChanged: before == nil ? nil : true, detail: detail, pair: record.pair))
        ])
        return AuthorizedPair(account: record, personChange: change)
    }

    struct PreparedPair {
        var record: Account
        var isNew: Bool
        var entry: AuditDraft
    }

    /// The one place a new pair is stored outside a refresh: rows and their entries in one transaction, after
    /// checking there, once, that this key is still the vault's (no `keys rotate` can come in before it ends).
    private func store(_ pairs: [PreparedPair]) throws {
        try database.write { w in
            try checkKeyIsCurrent(in: w)
            for pair in pairs {
                if pair.isNew { try w.insert(pair.record) } else { try w.update(pair.record) }
                try appendAudit(pair.entry, in: w, keyChecked: true)
            }
        }
    }

    // MARK: Identity and state

    /// Records who the account's token belongs to (plain metadata, not a lifetime change: no audit entry). The row
    /// is read in the write transaction, so the sealed pair written back is the one stored now, not one a refresh or
    /// `keys rotate` in another process has just replaced.
    public func recordIdentity(_ identity: Identity, account name: String) throws {
        try database.write { w in
            var record = try w.account(named: name)
            Self.setIdentity(identity, on: &record)
            try w.update(record)
        }
    }

    /// Marks an account whose access token the provider refused as needing re-authorization (list shows it, no run
    /// retries it), with its audit entry; the row is read in the write transaction, as in `recordIdentity`.
    public func markAccessTokenRejected(
        account name: String, integration: String?, trigger: AuditTrigger,
        detail: String, now: Date
    ) throws {
        try database.write { w in
            var record = try w.account(named: name)
            let before = record
            record.state = .needsReauth
            record.updatedAt = now
            try w.update(record)
            try appendAudit(
                AuditDraft(
                    at: now, account: name, integration: integration, event: .accessTokenRejected, trigger: trigger,
                    outcome: .needsReauthorizationAccessTokenRefused,
                    accessExpiresBefore: before.accessExpiresAt, accessExpiresAfter: record.accessExpiresAt,
                    refreshExpiresBefore: before.refreshExpiresAt, refreshExpiresAfter: record.refreshExpiresAt,
                    detail: detail), in: w)
        }
    }

    private static func setIdentity(_ identity: Identity, on record: inout Account) {
        record.personId = identity.id
        record.email = identity.email
        record.displayName = identity.displayName
        record.orgId = identity.orgId
    }

    // MARK: Revocation

    /// How an account's tokens were revoked, for `revoke(_:integration:revocation:now:)`.
    public struct Revocation: Sendable {
        public var trigger: AuditTrigger
        /// Revoked at the provider, removed locally only, or the provider refused.
        public var outcome: AuditOutcome
        /// What the provider said or why it was not asked.
        public var detail: String?
        /// The id of a provider whose revocation reached every token the person gave the integration's client
        /// (Webex's `DELETE /authorizations?clientId=…`); nil when only this account's tokens were revoked.
        public var personWideAt: String?

        public init(trigger: AuditTrigger, outcome: AuditOutcome, detail: String?, personWideAt: String?) {
            self.trigger = trigger
            self.outcome = outcome
            self.detail = detail
            self.personWideAt = personWideAt
        }
    }

    /// The other accounts of the integration a person-wide revocation reached.
    public struct RevokedWith: Sendable {
        /// Accounts of the same person: marked needs-reauth (audited).
        public var samePerson: [Account] = []
        /// Accounts whose person is unknown (no `whoami` recorded it): they may have lost their tokens too.
        public var unknownPerson: [Account] = []
    }

    /// Deletes a revoked account's pair with its audit entry (`pair: ""`) and, after a person-wide revocation, marks
    /// the same person's other accounts of the integration needs-reauth (audited; their pairs stay), in one
    /// transaction; then erases the deleted secrets from the store's files.
    @discardableResult
    public func revoke(_ record: Account, integration: Integration?, revocation: Revocation, now: Date) throws
        -> RevokedWith
    {
        var with = RevokedWith()
        if revocation.personWideAt != nil {
            let others = try database.accounts().filter {
                $0.integrationId == record.integrationId && $0.name != record.name
            }
            with.samePerson = others.filter { record.personId != nil && $0.personId == record.personId }
            with.unknownPerson = record.personId == nil ? others : others.filter { $0.personId == nil }
        }
        try database.write { w in
            try w.deleteAccount(id: record.id)
            try appendAudit(
                AuditDraft(
                    at: now, account: record.name, integration: integration?.name, event: .revoked,
                    trigger: revocation.trigger, outcome: revocation.outcome,
                    accessExpiresBefore: record.accessExpiresAt, refreshExpiresBefore: record.refreshExpiresAt,
                    detail: revocation.detail, pair: ""), in: w)
            for planned in with.samePerson {
                var other = try w.account(named: planned.name)
                guard other.state != .needsReauth else { continue }
                other.state = .needsReauth
                other.updatedAt = now
                try w.update(other)
                // The pair stays (pair: nil, unchanged); only the state changes.
                try appendAudit(
                    AuditDraft(
                        at: now, account: other.name, integration: integration?.name, event: .revoked,
                        trigger: revocation.trigger,
                        outcome: .other(
                            "needs re-authorization: revoked at \(revocation.personWideAt ?? "?") with '\(record.name)' (the same person)"
                        ),
                        accessExpiresBefore: other.accessExpiresAt, refreshExpiresBefore: other.refreshExpiresAt), in: w
                )
            }
        }
        try database.purgeDeletedData()
        return with
    }

    // MARK: Integrations

    /// Adds an integration with its client secret sealed under its settings (the label binds them). Not audited,
    /// so the key is checked in the transaction: a secret sealed under a key `keys rotate` replaced meanwhile would
    /// open for no one.
    @discardableResult
    public func addIntegration(_ integration: Integration, clientSecret: SecretBytes) throws -> Integration {
        var integration = integration
        integration.clientSecretSealed = try seal(clientSecret, label: SealLabel.clientSecret(integration))
        try database.write { w in
            try checkKeyIsCurrent(in: w)
            try w.insert(integration)
        }
        return integration
    }

    /// One changed setting of an integration, as its audit entry names it (the secret itself never).
    public struct IntegrationChange: Sendable, Equatable {
        public var field: String
        public var detail: String?

        /// What differs between two settings of an integration, in the order the audit log lists them.
        public static func between(_ old: Integration, _ new: Integration, secretReplaced: Bool) -> [IntegrationChange]
        {
            var changes: [IntegrationChange] = []
            if new.scopes != old.scopes {
                changes.append(
                    .init(
                        field: "scopes",
                        detail: "\(old.scopes.joined(separator: " ")) -> \(new.scopes.joined(separator: " "))"))
            }
            if new.apiBase != old.apiBase {
                changes.append(.init(field: "API base", detail: "\(old.apiBase) -> \(new.apiBase)"))
            }
            if new.redirectURI != old.redirectURI {
                changes.append(.init(field: "redirect URI", detail: "\(old.redirectURI) -> \(new.redirectURI)"))
            }
            if new.envVar != old.envVar {
                changes.append(.init(field: "variable", detail: "\(old.envVar) -> \(new.envVar)"))
            }
            if secretReplaced { changes.append(.init(field: "client secret", detail: nil)) }
            return changes
        }
    }

    /// Changes an integration's settings from `old` (as read before) to `new`, re-sealing its client secret (the
    /// replacement, else the current one) bound to the new settings, with one audit entry per changed field, in one
    /// transaction. Opening the current secret first checks the stored settings it is bound to; an integration
    /// changed by someone else since `old` was read is refused (busy), as the edit would undo that change.
    /// Returns the changes written (none: nothing was written).
    @discardableResult
    public func editIntegration(
        _ old: Integration, to new: Integration, clientSecret replacement: SecretBytes?,
        now: Date
    ) throws -> [IntegrationChange] {
        let changes = IntegrationChange.between(old, new, secretReplaced: replacement != nil)
        guard !changes.isEmpty else { return [] }
        let current = try clientSecret(of: old)
        // Read again: a legacy re-seal may just have replaced the sealed bytes; any other difference is an edit
        // made meanwhile, and this one would undo it.
        let stored = try database.integration(named: old.name)
        var unsealed = stored
        unsealed.clientSecretSealed = old.clientSecretSealed
        guard unsealed == old else {
            throw VaultError.busy(
                "integration '\(old.name)' changed while it was being edited", hint: "run the edit again")
        }
        var new = new
        new.clientSecretSealed = try seal(replacement ?? current, label: SealLabel.clientSecret(new))
        try database.write { [new] w in
            try w.update(new, previousSecret: stored.clientSecretSealed)
            for change in changes {
                try appendAudit(
                    AuditDraft(
                        at: now, account: "", integration: old.name, event: .integrationEdited,
                        trigger: .integrationEdit,
                        outcome: .integrationChanged(
                            integration: old.name, field: change.field, replaced: change.field == "client secret"),
                        detail: change.detail), in: w)
            }
        }
        return changes
    }

    /// Removes an integration together with the accounts that use it (`accounts`, read before): one audit entry per
    /// account (deleted locally, not revoked; `pair: ""`) and the removal in one transaction; then erases the
    /// deleted secrets from the store's files. With no accounts, ``removeUnusedIntegration(_:from:)`` needs no key.
    public func removeIntegration(_ integration: Integration, accounts: [Account], now: Date) throws {
        try database.write { w in
            for account in accounts {
                try appendAudit(
                    AuditDraft(
                        at: now, account: account.name, integration: integration.name, event: .revoked,
                        trigger: .removeIntegration, outcome: .removedLocally,
                        accessExpiresBefore: account.accessExpiresAt, refreshExpiresBefore: account.refreshExpiresAt,
                        pair: ""), in: w)
            }
            try w.deleteIntegration(id: integration.id)
        }
        try database.purgeDeletedData()
    }

    /// Removes an integration no account used when it was read: nothing to audit, so no key is needed (no
    /// passphrase is asked). Then erases its sealed secret from the store's files.
    public static func removeUnusedIntegration(_ integration: Integration, from database: any VaultStorage) throws {
        try database.write { try $0.deleteIntegration(id: integration.id) }
        try database.purgeDeletedData()
    }
}
