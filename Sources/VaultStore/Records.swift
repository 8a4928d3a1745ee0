import Foundation
import GRDB

// Row mapping kept apart from the plain models (GRDB's own advice), and written by hand:
// the models stay free of persistence concerns and dates are stored as Unix seconds (REAL).

extension Date {
    init(unix: Double) { self.init(timeIntervalSince1970: unix) }
    var unix: Double { timeIntervalSince1970 }
}

private func bytes(_ row: Row, _ column: String) -> [UInt8]? {
    (row[column] as Data?).map { [UInt8]($0) }
}

private func date(_ row: Row, _ column: String) -> Date? {
    (row[column] as Double?).map(Date.init(unix:))
}

private func splitScopes(_ text: String?) -> [String]? {
    text.map { $0.split(separator: " ").map(String.init) }
}

extension VaultHeader {
    init(row: Row) {
        self.init(
            kdfAlgorithm: row["kdf_algorithm"], kdfSalt: bytes(row, "kdf_salt") ?? [],
            kdfOpsLimit: UInt64(max(0, row["kdf_opslimit"] as Int64)),
            kdfMemLimit: UInt64(max(0, row["kdf_memlimit"] as Int64)),
            masterKeySealed: bytes(row, "master_key_sealed") ?? [],
            createdAt: Date(unix: row["created_at"]), passphraseChangedAt: Date(unix: row["passphrase_changed_at"]))
    }
}

/// Ids are plain fields that name files (the per-account lock): anything but a canonical lowercase UUID, as
/// tokenvault writes them, is an edited file and is refused before it is used.
func checkedId(_ row: Row, _ column: String, of what: String) throws -> String {
    let value: String? = row[column]
    guard let value, let uuid = UUID(uuidString: value), uuid.uuidString.lowercased() == value else {
        throw StoreError.invalidRecord("\(what) has an invalid \(column) \(String(reflecting: String((value ?? "NULL").prefix(80))))")
    }
    return value
}

extension Integration {
    init(row: Row) throws {
        let name: String = row["name"]
        self.init(
            id: try checkedId(row, "id", of: "integration '\(name)'"), name: row["name"], provider: row["provider"], clientId: row["client_id"],
            clientSecretSealed: bytes(row, "client_secret_sealed") ?? [], redirectURI: row["redirect_uri"],
            scopes: splitScopes(row["scopes"]) ?? [], apiBase: row["api_base"], envVar: row["env_var"],
            createdAt: Date(unix: row["created_at"]), providerOptions: row["provider_options"])
    }

    var columns: [String: (any DatabaseValueConvertible)?] {
        [
            "provider_options": providerOptions,
            "id": id, "name": name, "provider": provider, "client_id": clientId,
            "client_secret_sealed": Data(clientSecretSealed), "redirect_uri": redirectURI,
            "scopes": scopes.joined(separator: " "), "api_base": apiBase, "env_var": envVar,
            "created_at": createdAt.unix,
        ]
    }
}

extension Account {
    init(row: Row) throws {
        let name: String = row["name"]
        self.init(
            id: try checkedId(row, "id", of: "account '\(name)'"), name: name,
            integrationId: try checkedId(row, "integration_id", of: "account '\(name)'"),
            accessTokenSealed: bytes(row, "access_token_sealed"), refreshTokenSealed: bytes(row, "refresh_token_sealed"),
            accessExpiresAt: date(row, "access_expires_at"), refreshExpiresAt: date(row, "refresh_expires_at"),
            grantedScopes: splitScopes(row["granted_scopes"]), email: row["email"], displayName: row["display_name"],
            orgId: row["org_id"], personId: row["person_id"],
            state: AccountState(rawValue: row["state"]) ?? .needsReauth,
            createdAt: Date(unix: row["created_at"]), updatedAt: Date(unix: row["updated_at"]))
    }

    var columns: [String: (any DatabaseValueConvertible)?] {
        [
            "id": id, "name": name, "integration_id": integrationId,
            "access_token_sealed": accessTokenSealed.map { Data($0) },
            "refresh_token_sealed": refreshTokenSealed.map { Data($0) },
            "access_expires_at": accessExpiresAt?.unix, "refresh_expires_at": refreshExpiresAt?.unix,
            "granted_scopes": grantedScopes?.joined(separator: " "), "email": email, "display_name": displayName,
            "org_id": orgId, "person_id": personId, "state": state.rawValue,
            "created_at": createdAt.unix, "updated_at": updatedAt.unix,
        ]
    }
}

extension AuditEntry {
    init(row: Row) throws {
        guard let event = AuditEvent(rawValue: row["event"]) else {
            throw StoreError.database("audit entry \(row["seq"] as Int64) has an unknown event '\(row["event"] as String)'")
        }
        let draft = AuditDraft(
            at: Date(unix: row["at"]), account: row["account"], integration: row["integration"], event: event,
            trigger: AuditTrigger(row["trigger"]), outcome: AuditOutcome(row["outcome"]),
            accessExpiresBefore: date(row, "access_expires_before"), accessExpiresAfter: date(row, "access_expires_after"),
            refreshExpiresBefore: date(row, "refresh_expires_before"),
            refreshExpiresAfter: date(row, "refresh_expires_after"),
            refreshTokenChanged: (row["refresh_token_changed"] as Int64?).map { $0 != 0 }, detail: row["detail"])
        self.init(seq: row["seq"], draft: draft, mac: bytes(row, "mac") ?? [])
    }
}

extension Database {
    /// INSERT built from a column dictionary; column names are ours, never user input.
    func insert(into table: String, _ columns: [String: (any DatabaseValueConvertible)?]) throws {
        let names = columns.keys.sorted()
        let sql = "INSERT INTO \(table) (\(names.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", ")))"
        try execute(sql: sql, arguments: StatementArguments(names.map { columns[$0]! }))
    }

    func update(_ table: String, id: String, _ columns: [String: (any DatabaseValueConvertible)?]) throws {
        let names = columns.keys.sorted().filter { $0 != "id" }
        let sql = "UPDATE \(table) SET \(names.map { "\($0) = ?" }.joined(separator: ", ")) WHERE id = ?"
        try execute(sql: sql, arguments: StatementArguments(names.map { columns[$0]! } + [id]))
    }
}
