import Foundation
import VaultCrypto
import VaultStore

/// Who may be lent an account's access token besides the vault's owner: a uid or a gid.
public enum Grantee: Sendable, Hashable, CustomStringConvertible {
    case uid(UInt32)
    case gid(UInt32)

    /// "uid 33", "gid 999": the form stored in the audit entry's detail.
    public var description: String {
        switch self {
        case .uid(let n): "uid \(n)"
        case .gid(let n): "gid \(n)"
        }
    }

    /// Parses "uid N" / "gid N" at the start of `text`.
    init?(prefixOf text: Substring) {
        let words = text.split(separator: " ", maxSplits: 2)
        guard words.count >= 2 else { return nil }
        let digits = words[1].prefix { $0.isNumber }
        guard !digits.isEmpty, let n = UInt32(digits) else { return nil }
        switch words[0] {
        case "uid": self = .uid(n)
        case "gid": self = .gid(n)
        default: return nil
        }
    }
}

/// One standing grant: `grantee` may be lent `account`'s access token.
public struct Grant: Sendable, Hashable {
    public var account: String
    public var grantee: Grantee
    /// The user or group name when it was granted ("www-data"), for display only; the number decides.
    public var name: String?
    public var at: Date
}

/// Grants are entries of the audit log (`granted`, `ungranted`): each is MAC'd with the vault's key and chained to
/// the one before, the log's head is MAC'd, so a grant added, edited or a withdrawal removed by anyone without the
/// key (a file writer, a database administrator) breaks the chain, and the grants are then refused as tampering
/// (exit 7), never read. No table of their own, and `keys rotate` re-keys them with the log.
extension UnlockedVault {
    /// The standing grants, read from a verified audit log. Throws `VaultError.integrity` when the log does not
    /// verify.
    public func grants() throws -> [Grant] {
        let head = try database.auditHead()
        let entries = try database.auditEntries()
        let verification = try Self.verifyAudit(entries, headSeq: head.seq, headMAC: head.mac, keys: keys)
        guard verification.problems.isEmpty else {
            throw VaultError.integrity(
                "the audit log, which holds the grants, does not verify: \(verification.problems[0])",
                hint: "run 'tokenvault audit --verify'; restore the vault from a backup")
        }
        return Self.grants(from: entries)
    }

    /// The grants the entries leave standing, in the order they were made.
    static func grants(from entries: [AuditEntry]) -> [Grant] {
        var standing: [Grant] = []
        for entry in entries where entry.draft.event == .granted || entry.draft.event == .ungranted {
            guard let detail = entry.draft.detail, detail.hasPrefix("to "),
                let grantee = Grantee(prefixOf: detail.dropFirst(3))
            else { continue }
            let account = entry.draft.account
            standing.removeAll { $0.account == account && $0.grantee == grantee }
            if entry.draft.event == .granted {
                let name = detail.firstRange(of: "(").map {
                    String(detail[$0.upperBound...].prefix { $0 != ")" })
                }
                standing.append(Grant(account: account, grantee: grantee, name: name, at: entry.draft.at))
            }
        }
        return standing
    }

    /// Grants `grantee` (named `name` for display) the account's access token, audited; false when it already had
    /// it (nothing written). The account must exist.
    @discardableResult
    public func grant(account: String, to grantee: Grantee, name: String?, now: Date) throws -> Bool {
        let record = try database.account(named: account)
        let integration = try database.integration(id: record.integrationId)?.name
        guard try !grants().contains(where: { $0.account == account && $0.grantee == grantee }) else { return false }
        try database.write { w in
            try appendAudit(
                AuditDraft(
                    at: now, account: account, integration: integration, event: .granted,
                    trigger: AuditTrigger("grant"), outcome: .ok,
                    detail: "to \(grantee)" + (name.map { " (\($0))" } ?? "")), in: w)
        }
        return true
    }

    /// Withdraws a grant, audited; false when there was none. Takes effect at the grantee's next request: the
    /// endpoint reads the grants again whenever the log's head moved.
    @discardableResult
    public func ungrant(account: String, from grantee: Grantee, now: Date) throws -> Bool {
        guard let standing = try grants().first(where: { $0.account == account && $0.grantee == grantee }) else {
            return false
        }
        let integration = (try? database.account(named: account)).flatMap {
            try? database.integration(id: $0.integrationId)?.name
        }
        try database.write { w in
            try appendAudit(
                AuditDraft(
                    at: now, account: account, integration: integration, event: .ungranted,
                    trigger: AuditTrigger("ungrant"), outcome: .ok,
                    detail: "to \(grantee)" + (standing.name.map { " (\($0))" } ?? "")), in: w)
        }
        return true
    }

    /// A `lent` entry's detail: the grantee and which token (the pair's id, or the token's expiry for a pair
    /// stored before pairs had ids), never the token itself.
    public static func lentDetail(uid: UInt32, account: Account) -> String {
        let which =
            account.pair.map { "pair \($0)" }
            ?? "token expiring \(account.accessExpiresAt.map { Int($0.timeIntervalSince1970) } ?? 0)"
        return "to uid \(uid), \(which)"
    }

    /// Records that the account's current access token was handed to `uid` (blocks on the store).
    public func recordLent(account: Account, integration: String, uid: UInt32, trigger: AuditTrigger, now: Date)
        throws
    {
        let draft = AuditDraft(
            at: now, account: account.name, integration: integration, event: .lent, trigger: trigger, outcome: .ok,
            accessExpiresAfter: account.accessExpiresAt, detail: Self.lentDetail(uid: uid, account: account))
        try database.write { w in try appendAudit(draft, in: w) }
    }
}
