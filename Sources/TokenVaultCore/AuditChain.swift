import Foundation
import VaultCrypto
import VaultStore

/// The audit log as a chain: each entry carries a keyed MAC over its content and the previous entry's MAC, and the
/// head record (in the header row) names the newest entry with a MAC of its own, so an edited, reordered, removed or
/// rolled-back entry is found by `verifyAudit`.
extension UnlockedVault {
    /// Appends an entry chained to the previous one, inside the caller's transaction, after checking there that
    /// this key is still the vault's (see `checkKeyIsCurrent(in:)`). `keyChecked`: the caller already checked it in
    /// this same transaction (a batch of appends; no other writer can rotate the key before it ends).
    @discardableResult
    public func appendAudit(_ draft: AuditDraft, in writer: any VaultTransaction, keyChecked: Bool = false) throws
        -> AuditEntry
    {
        if !keyChecked { try checkKeyIsCurrent(in: writer) }
        let keys = keys
        return try writer.appendAudit(
            draft,
            mac: { seq, entry, previous in
                try Self.entryMAC(keys: keys, seq: seq, draft: entry, previousMAC: previous)
            }, headMAC: { seq, entryMAC in try Self.auditHeadMAC(keys: keys, seq: seq, entryMAC: entryMAC) })
    }

    /// An entry's MAC: its content, its place and the previous entry's MAC, under the audit label.
    static func entryMAC(keys: any KeyHolder, seq: Int64, draft: AuditDraft, previousMAC: [UInt8]) throws -> [UInt8] {
        try keys.mac(
            AuditEntry.canonicalBytes(seq: seq, draft: draft, previousMAC: previousMAC), label: SealLabel.audit)
    }

    /// Every entry's MAC and the head's, made anew under `keys` from the entries' content (`keys rotate`).
    static func chainMACs(_ entries: [AuditEntry], headSeq: Int64, keys: any KeyHolder) throws -> (
        macs: [Int64: [UInt8]], head: [UInt8]
    ) {
        var macs: [Int64: [UInt8]] = [:]
        var previous: [UInt8] = []
        for entry in entries {
            previous = try entryMAC(keys: keys, seq: entry.seq, draft: entry.draft, previousMAC: previous)
            macs[entry.seq] = previous
        }
        return (macs, try auditHeadMAC(keys: keys, seq: headSeq, entryMAC: previous))
    }

    /// The head record's MAC: which entry is the newest (entry 0 for an empty log) and that entry's MAC.
    static func auditHeadMAC(keys: any KeyHolder, seq: Int64, entryMAC: [UInt8]) throws -> [UInt8] {
        try keys.mac(Array("tokenvault-audit-head-v1:\(seq):".utf8) + entryMAC, label: SealLabel.audit)
    }

    /// Whether `keys` is this vault's key, shown without opening a secret: it must reproduce the MAC of the audit
    /// log's head. A vault whose head has no MAC (one written before heads were MAC'd) proves nothing this way:
    /// nil.
    public static func keyMatches(_ keys: any KeyHolder, database: any VaultStorage) throws -> Bool? {
        let head = try database.auditHead()
        guard !head.mac.isEmpty else { return nil }
        let newest = try database.newestAuditEntry()
        guard (newest?.seq ?? 0) == head.seq else { return nil }
        return MAC.constantTimeEqual(try auditHeadMAC(keys: keys, seq: head.seq, entryMAC: newest?.mac ?? []), head.mac)
    }

    /// What `audit --verify` found.
    public struct AuditVerification: Sendable {
        public var problems: [String]
        public var count: Int
        /// The head MAC as stored (hex), to keep outside the vault and pass back as `--expect-head`.
        public var head: String
        public var headSeq: Int64
    }

    /// Walks the chain from the first entry: an edited, reordered or deleted entry breaks it; so does a head
    /// record that does not name the newest entry with a valid MAC (entry 0 included: an emptied log is caught),
    /// and any `tamper-detected` entry tokenvault wrote when it found the head wrong. With `expectHead`, the
    /// log must also still contain that head (a head printed earlier and kept elsewhere): a vault rolled back to
    /// an older copy does not.
    public func verifyAudit(expectHead: String? = nil) throws -> AuditVerification {
        let head = try database.auditHead()
        let entries = try database.auditEntries()
        var verification = try Self.verifyAudit(
            entries, headSeq: head.seq, headMAC: head.mac, keys: keys,
            expectHead: expectHead)
        verification.problems += Self.rowsDisagreeingWithTheLog(try database.accounts(), entries: entries)
        return verification
    }

    /// `verifyAudit` over entries and a head already read (inside a transaction, for `keys rotate`).
    static func verifyAudit(
        _ entries: [AuditEntry], headSeq: Int64, headMAC: [UInt8], keys: any KeyHolder,
        expectHead: String? = nil
    ) throws -> AuditVerification {
        let head = (seq: headSeq, mac: headMAC)
        var previous: [UInt8] = []
        var expectedSeq: Int64 = 1
        var problems: [String] = []
        var heads: Set<String> = [Self.hex(try Self.auditHeadMAC(keys: keys, seq: 0, entryMAC: []))]
        for entry in entries {
            if entry.seq != expectedSeq {
                problems.append(
                    "entry \(expectedSeq)\(entry.seq > expectedSeq + 1 ? "-\(entry.seq - 1)" : "") is missing")
            }
            let mac = try Self.entryMAC(keys: keys, seq: entry.seq, draft: entry.draft, previousMAC: previous)
            if !MAC.constantTimeEqual(mac, entry.mac) {
                problems.append(
                    "entry \(entry.seq) (\(entry.draft.event.rawValue), account '\(entry.draft.account)') does not match its MAC: edited, reordered, or an earlier entry was removed"
                )
            } else if entry.draft.event == .tamperDetected {
                problems.append(
                    "entry \(entry.seq): tokenvault found the log tampered with before it appended this entry (\(entry.draft.detail ?? entry.draft.outcome.rawValue))"
                )
            }
            heads.insert(Self.hex(try Self.auditHeadMAC(keys: keys, seq: entry.seq, entryMAC: entry.mac)))
            // Continue from the stored MAC so one bad entry is reported once, not as a cascade.
            previous = entry.mac
            expectedSeq = entry.seq + 1
        }
        // The head in the header row must name the newest entry (or entry 0) with a valid MAC: otherwise the
        // newest entries, or all of them, were removed.
        let newest = entries.last
        if head.mac.isEmpty {
            problems.append(
                "the log's head record has no MAC: it was removed (an emptied or truncated log looks like this)")
        } else if head.seq != (newest?.seq ?? 0) {
            problems.append(
                "the log ends at entry \(newest?.seq ?? 0) but entry \(head.seq) was written: the newest entries were removed"
            )
        } else if !MAC.constantTimeEqual(
            try Self.auditHeadMAC(keys: keys, seq: newest?.seq ?? 0, entryMAC: newest?.mac ?? []), head.mac)
        {
            problems.append(
                newest == nil
                    ? "the log is empty but its head record does not match an empty log: its entries were removed"
                    : "the log's head record does not match entry \(newest!.seq)")
        }
        if let expectHead {
            let wanted = expectHead.lowercased().trimmingCharacters(in: .whitespaces)
            if !heads.contains(wanted) {
                problems.append(
                    "the head you kept (\(wanted.prefix(16))…) is not in this log: the vault was rolled back to an older copy, replaced, or the head belongs to another vault"
                )
            }
        }
        return AuditVerification(problems: problems, count: entries.count, head: Self.hex(head.mac), headSeq: head.seq)
    }

    /// Accounts whose row does not hold the pair their newest pair-setting entry recorded (schema v5): a row rolled
    /// back, replaced, or put back after its revocation.
    static func rowsDisagreeingWithTheLog(_ accounts: [Account], entries: [AuditEntry]) -> [String] {
        var newest: [String: AuditEntry] = [:]
        for entry in entries where entry.draft.pair != nil { newest[entry.draft.account] = entry }
        var problems: [String] = []
        for account in accounts {
            guard let entry = newest[account.name] else {
                if account.pair != nil {
                    problems.append("account '\(account.name)': its row holds a pair no audit entry recorded")
                }
                continue
            }
            if entry.draft.pair == "" {
                problems.append("account '\(account.name)': its row was put back after entry \(entry.seq) removed it")
            } else if entry.draft.pair != account.pair {
                problems.append(
                    "account '\(account.name)': its row does not hold the pair entry \(entry.seq) stored (rolled back to an older copy, or replaced)"
                )
            }
        }
        return problems
    }

    public static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}
