import Foundation
import GRDB

extension VaultWriter {
    /// Everything, read on this transaction's connection: what `keys rotate` re-seals, so that no write from another
    /// process can come between reading a value and replacing it. The same queries as `SQLiteVault.snapshot()`,
    /// which reads in a read transaction of its own.
    public func snapshot() throws -> VaultSnapshot {
        guard let meta = try Row.fetchOne(db, sql: "SELECT * FROM vault_meta WHERE id = 1") else {
            throw StoreError.invalidRecord("the vault's header row is missing")
        }
        return VaultSnapshot(
            header: VaultHeader(row: meta), auditHeadSeq: meta["audit_head_seq"] ?? 0,
            auditHeadMAC: (meta["audit_head_mac"] as Data?).map { [UInt8]($0) },
            keySlots: try keySlots(),
            integrations: try Row.fetchAll(db, sql: "SELECT * FROM integration ORDER BY name").map(
                Integration.init(row:)),
            accounts: try Row.fetchAll(db, sql: "SELECT * FROM account ORDER BY name").map(Account.init(row:)),
            auditEntries: try Row.fetchAll(db, sql: "SELECT * FROM audit_entry ORDER BY seq").map(
                AuditEntry.init(row:)),
            notifications: try Row.fetchAll(db, sql: "SELECT account, event, at FROM notification ORDER BY account").map
            {
                NotificationRecord(account: $0["account"], event: $0["event"], at: Date(unix: $0["at"]))
            })
    }
}
