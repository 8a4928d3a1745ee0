import Foundation
import GRDB

// Row mapping kept apart from the plain models (GRDB's own advice): integrations and accounts are Codable GRDB
// records (snake_case columns) turned into the plain models after their fields are checked; the models stay free
// of persistence concerns. Dates are stored as Unix seconds (REAL).

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
func checkedId(_ value: String?, column: String, of what: String) throws -> String {
    guard let value, let uuid = UUID(uuidString: value), uuid.uuidString.lowercased() == value else {
        throw StoreError.invalidRecord(
            "\(what) has an invalid \(column) \(String(reflecting: String((value ?? "NULL").prefix(80))))")
    }
    return value
}

/// The `integration` table's row, as GRDB reads and writes it (Codable, snake_case columns). The model
/// (``Integration``) is built from it after the plain fields are checked.
struct IntegrationRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "integration"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase

    var id: String
    var name: String
    var provider: String
    var clientId: String
    var clientSecretSealed: Data
    var redirectUri: String
    var scopes: String
    var apiBase: String
    var envVar: String
    var createdAt: Double
    var providerOptions: String?

    init(_ i: Integration) {
        id = i.id
        name = i.name
        provider = i.provider
        clientId = i.clientId
        clientSecretSealed = Data(i.clientSecretSealed)
        redirectUri = i.redirectURI
        scopes = i.scopes.joined(separator: " ")
        apiBase = i.apiBase
        envVar = i.envVar
        createdAt = i.createdAt.unix
        providerOptions = i.providerOptions
    }
}

extension Integration {
    init(_ r: IntegrationRecord) throws {
        let id = try checkedId(r.id, column: "id", of: "an integration")
        self.init(
            id: id, name: try checkedName(r.name, of: "integration \(id)"), provider: r.provider,
            clientId: r.clientId, clientSecretSealed: [UInt8](r.clientSecretSealed), redirectURI: r.redirectUri,
            scopes: splitScopes(r.scopes) ?? [], apiBase: r.apiBase, envVar: r.envVar,
            createdAt: Date(unix: r.createdAt),
            providerOptions: r.providerOptions)
    }

    init(row: Row) throws { try self.init(IntegrationRecord(row: row)) }
}

/// The `account` table's row, as GRDB reads and writes it.
struct AccountRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "account"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase

    var id: String
    var name: String
    var integrationId: String
    var accessTokenSealed: Data?
    var refreshTokenSealed: Data?
    var accessExpiresAt: Double?
    var refreshExpiresAt: Double?
    var grantedScopes: String?
    var email: String?
    var displayName: String?
    var orgId: String?
    var personId: String?
    var state: String
    var createdAt: Double
    var updatedAt: Double
    var pair: String?

    /// Written by hand (reading stays Codable): an import or a refresh-all writes one per account, and Codable
    /// encoding with the snake_case strategy was a fifth of an import's time in the profile.
    func encode(to container: inout PersistenceContainer) {
        container["id"] = id
        container["name"] = name
        container["integration_id"] = integrationId
        container["access_token_sealed"] = accessTokenSealed
        container["refresh_token_sealed"] = refreshTokenSealed
        container["access_expires_at"] = accessExpiresAt
        container["refresh_expires_at"] = refreshExpiresAt
        container["granted_scopes"] = grantedScopes
        container["email"] = email
        container["display_name"] = displayName
        container["org_id"] = orgId
        container["person_id"] = personId
        container["state"] = state
        container["created_at"] = createdAt
        container["updated_at"] = updatedAt
        container["pair"] = pair
    }

    init(_ a: Account) {
        id = a.id
        name = a.name
        integrationId = a.integrationId
        accessTokenSealed = a.accessTokenSealed.map { Data($0) }
        refreshTokenSealed = a.refreshTokenSealed.map { Data($0) }
        accessExpiresAt = a.accessExpiresAt?.unix
        refreshExpiresAt = a.refreshExpiresAt?.unix
        grantedScopes = a.grantedScopes?.joined(separator: " ")
        email = a.email
        displayName = a.displayName
        orgId = a.orgId
        personId = a.personId
        state = a.state.rawValue
        createdAt = a.createdAt.unix
        updatedAt = a.updatedAt.unix
        pair = a.pair
    }
}

extension Account {
    init(_ r: AccountRecord) throws {
        let id = try checkedId(r.id, column: "id", of: "an account")
        self.init(
            id: id, name: try checkedName(r.name, of: "account \(id)"),
            integrationId: try checkedId(r.integrationId, column: "integration_id", of: "account \(id)"),
            accessTokenSealed: r.accessTokenSealed.map { [UInt8]($0) },
            refreshTokenSealed: r.refreshTokenSealed.map { [UInt8]($0) },
            accessExpiresAt: r.accessExpiresAt.map(Date.init(unix:)),
            refreshExpiresAt: r.refreshExpiresAt.map(Date.init(unix:)),
            grantedScopes: splitScopes(r.grantedScopes), email: r.email, displayName: r.displayName, orgId: r.orgId,
            personId: r.personId,
            // An unknown state (an edit) is the cautious one: the account is not used until authorized again.
            state: AccountState(rawValue: r.state) ?? .needsReauth,
            createdAt: Date(unix: r.createdAt), updatedAt: Date(unix: r.updatedAt), pair: r.pair)
    }

    init(row: Row) throws { try self.init(AccountRecord(row: row)) }
}

extension AuditEntry {
    init(row: Row) throws {
        guard let event = AuditEvent(rawValue: row["event"]) else {
            throw StoreError.database(
                "audit entry \(row["seq"] as Int64) has an unknown event '\(row["event"] as String)'")
        }
        let draft = AuditDraft(
            at: Date(unix: row["at"]), account: row["account"], integration: row["integration"], event: event,
            trigger: AuditTrigger(row["trigger"]), outcome: AuditOutcome(row["outcome"]),
            accessExpiresBefore: date(row, "access_expires_before"),
            accessExpiresAfter: date(row, "access_expires_after"),
            refreshExpiresBefore: date(row, "refresh_expires_before"),
            refreshExpiresAfter: date(row, "refresh_expires_after"),
            refreshTokenChanged: (row["refresh_token_changed"] as Int64?).map { $0 != 0 }, detail: row["detail"],
            pair: row["pair"])
        self.init(seq: row["seq"], draft: draft, mac: bytes(row, "mac") ?? [])
    }
}

extension Database {
    /// INSERT built from a column dictionary; column names are ours, never user input.
    func insert(into table: String, _ columns: [String: (any DatabaseValueConvertible)?]) throws {
        let names = columns.keys.sorted()
        let sql =
            "INSERT INTO \(table) (\(names.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", ")))"
        try execute(sql: sql, arguments: StatementArguments(names.map { columns[$0]! }))
    }
}

extension KeySlot {
    init(row: Row) throws {
        self.init(
            name: try checkedSlotName(row["name"]), kdfAlgorithm: row["kdf_algorithm"],
            kdfSalt: bytes(row, "kdf_salt") ?? [],
            kdfOpsLimit: UInt64(max(0, row["kdf_opslimit"] as Int64)),
            kdfMemLimit: UInt64(max(0, row["kdf_memlimit"] as Int64)),
            publicKey: bytes(row, "public_key"), secretKeySealed: bytes(row, "secret_key_sealed"),
            masterKeySealed: bytes(row, "master_key_sealed") ?? [],
            createdAt: Date(unix: row["created_at"]), changedAt: Date(unix: row["changed_at"]))
    }

    /// In the column order of the INSERT: name first.
    var databaseValues: [(any DatabaseValueConvertible)?] {
        [
            name, kdfAlgorithm, Data(kdfSalt), Int64(kdfOpsLimit), Int64(kdfMemLimit), publicKey.map { Data($0) },
            secretKeySealed.map { Data($0) }, Data(masterKeySealed), createdAt.unix, changedAt.unix,
        ]
    }
}
