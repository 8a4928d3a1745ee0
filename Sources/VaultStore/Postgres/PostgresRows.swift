import Foundation

// Rows of the PostgreSQL vault turned into the plain models, and the models into bound parameters: the same
// checks as the SQLite records (Records.swift), so that both stores refuse the same edited rows.

extension VaultHeader {
    init(pg row: PGRow) throws {
        self.init(
            kdfAlgorithm: try row.string("kdf_algorithm"), kdfSalt: try row.bytes("kdf_salt"),
            kdfOpsLimit: UInt64(max(0, try row.int("kdf_opslimit"))),
            kdfMemLimit: UInt64(max(0, try row.int("kdf_memlimit"))),
            masterKeySealed: try row.bytes("master_key_sealed"), createdAt: try row.date("created_at"),
            passphraseChangedAt: try row.date("passphrase_changed_at"))
    }
}

private func splitWords(_ text: String?) -> [String]? { text.map { $0.split(separator: " ").map(String.init) } }

extension Integration {
    init(pg row: PGRow) throws {
        let id = try checkedId(try row.optionalString("id"), column: "id", of: "an integration")
        self.init(
            id: id, name: try checkedName(try row.string("name"), of: "integration \(id)"),
            provider: try row.string("provider"), clientId: try row.string("client_id"),
            clientSecretSealed: try row.bytes("client_secret_sealed"), redirectURI: try row.string("redirect_uri"),
            scopes: splitWords(try row.string("scopes")) ?? [], apiBase: try row.string("api_base"),
            envVar: try row.string("env_var"), createdAt: try row.date("created_at"),
            providerOptions: try row.optionalString("provider_options"))
    }

    /// In the column order of ``PostgresTransaction/integrationColumns``.
    var pgValues: [PGValue] {
        [
            .text(id), .text(name), .text(provider), .text(clientId), .bytes(clientSecretSealed), .text(redirectURI),
            .text(scopes.joined(separator: " ")), .text(apiBase), .text(envVar), .double(createdAt.unix),
            PGValue(providerOptions),
        ]
    }
}

extension Account {
    init(pg row: PGRow) throws {
        let id = try checkedId(try row.optionalString("id"), column: "id", of: "an account")
        self.init(
            id: id, name: try checkedName(try row.string("name"), of: "account \(id)"),
            integrationId: try checkedId(
                try row.optionalString("integration_id"), column: "integration_id", of: "account \(id)"),
            accessTokenSealed: try row.optionalBytes("access_token_sealed"),
            refreshTokenSealed: try row.optionalBytes("refresh_token_sealed"),
            accessExpiresAt: try row.optionalDate("access_expires_at"),
            refreshExpiresAt: try row.optionalDate("refresh_expires_at"),
            grantedScopes: splitWords(try row.optionalString("granted_scopes")), email: try row.optionalString("email"),
            displayName: try row.optionalString("display_name"), orgId: try row.optionalString("org_id"),
            personId: try row.optionalString("person_id"),
            // An unknown state (an edit) is the cautious one: the account is not used until authorized again.
            state: AccountState(rawValue: try row.string("state")) ?? .needsReauth,
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
            pair: try row.optionalString("pair"))
    }

    /// In the column order of ``PostgresTransaction/accountColumns``: id first.
    var pgValues: [PGValue] {
        [
            .text(id), .text(name), .text(integrationId), PGValue(accessTokenSealed), PGValue(refreshTokenSealed),
            PGValue(accessExpiresAt), PGValue(refreshExpiresAt), PGValue(grantedScopes?.joined(separator: " ")),
            PGValue(email), PGValue(displayName), PGValue(orgId), PGValue(personId), .text(state.rawValue),
            .double(createdAt.unix), .double(updatedAt.unix), PGValue(pair),
        ]
    }
}

extension AccountSummary {
    init(pg row: PGRow) throws {
        self.init(
            name: try checkedName(try row.string("name"), ofRowKind: "account", id: try? row.optionalString("id")),
            integrationId: try row.string("integration_id"),
            hasAccessToken: try row.bool("has_access_token"), hasRefreshToken: try row.bool("has_refresh_token"),
            accessExpiresAt: try row.optionalDate("access_expires_at"),
            refreshExpiresAt: try row.optionalDate("refresh_expires_at"),
            grantedScopes: splitWords(try row.optionalString("granted_scopes")), email: try row.optionalString("email"),
            displayName: try row.optionalString("display_name"), orgId: try row.optionalString("org_id"),
            state: AccountState(rawValue: try row.string("state")) ?? .needsReauth,
            updatedAt: try row.date("updated_at"))
    }
}

extension AuditEntry {
    init(pg row: PGRow) throws {
        let seq = try row.int("seq")
        guard let event = AuditEvent(rawValue: try row.string("event")) else {
            throw StoreError.database("audit entry \(seq) has an unknown event '\(try row.string("event"))'")
        }
        let draft = AuditDraft(
            at: try row.date("at"), account: try row.string("account"),
            integration: try row.optionalString("integration"),
            event: event, trigger: AuditTrigger(try row.string("trigger")),
            outcome: AuditOutcome(try row.string("outcome")),
            accessExpiresBefore: try row.optionalDate("access_expires_before"),
            accessExpiresAfter: try row.optionalDate("access_expires_after"),
            refreshExpiresBefore: try row.optionalDate("refresh_expires_before"),
            refreshExpiresAfter: try row.optionalDate("refresh_expires_after"),
            refreshTokenChanged: try row.optionalBool("refresh_token_changed"),
            detail: try row.optionalString("detail"),
            pair: try row.optionalString("pair"))
        self.init(seq: seq, draft: draft, mac: try row.bytes("mac"))
    }
}

extension AuditDraft {
    /// In the column order of ``PostgresTransaction/auditColumns``, after `seq` and before `mac`.
    var pgValues: [PGValue] {
        [
            .double(at.unix), .text(account), PGValue(integration), .text(event.rawValue), .text(trigger.rawValue),
            .text(outcome.rawValue), PGValue(accessExpiresBefore), PGValue(accessExpiresAfter),
            PGValue(refreshExpiresBefore),
            PGValue(refreshExpiresAfter), PGValue(refreshTokenChanged), PGValue(detail),
        ]
    }
}

extension KeySlot {
    init(pg row: PGRow) throws {
        self.init(
            name: try checkedSlotName(try row.string("name")), kdfAlgorithm: try row.string("kdf_algorithm"),
            kdfSalt: try row.bytes("kdf_salt"),
            kdfOpsLimit: UInt64(max(0, try row.int("kdf_opslimit"))),
            kdfMemLimit: UInt64(max(0, try row.int("kdf_memlimit"))),
            publicKey: try row.optionalBytes("public_key"), secretKeySealed: try row.optionalBytes("secret_key_sealed"),
            masterKeySealed: try row.bytes("master_key_sealed"), createdAt: try row.date("created_at"),
            changedAt: try row.date("changed_at"))
    }

    /// In the column order of the INSERT: name first.
    var pgValues: [PGValue] {
        [
            .text(name), .text(kdfAlgorithm), .bytes(kdfSalt), .int(Int64(clamping: kdfOpsLimit)),
            .int(Int64(clamping: kdfMemLimit)),
            PGValue(publicKey), PGValue(secretKeySealed), .bytes(masterKeySealed), .double(createdAt.unix),
            .double(changedAt.unix),
        ]
    }
}
