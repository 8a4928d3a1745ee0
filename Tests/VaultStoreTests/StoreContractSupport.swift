import Foundation
import GRDB
import Testing
import TokenVaultLab

@testable import VaultStore

/// The two stores the contract runs on.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgresql
    var testDescription: String { rawValue }
}

/// A place for one new vault of a kind (a file in a temporary directory, or a fresh database on the test process's
/// throwaway PostgreSQL server), with ways to open more stores on it and to edit it behind the store's back.
final class StorePlace: @unchecked Sendable {
    let kind: StoreKind
    let location: String
    let database: String?
    private let dir: TempDir?

    init(_ kind: StoreKind) async throws {
        self.kind = kind
        switch kind {
        case .sqlite:
            let dir = TempDir()
            self.dir = dir
            location = dir.file("vault.db")
            database = nil
        case .postgresql:
            let server = try await PostgresServer.sharedOffPool()
            let name = try server.createDatabase()
            dir = nil
            database = name
            location = server.location(database: name)
        }
    }

    func create(header: VaultHeader = sampleHeader(), auditHeadMAC: [UInt8]? = nil) throws -> any VaultStorage {
        try VaultStores.create(location, header: header, auditHeadMAC: auditHeadMAC)
    }

    func open() throws -> any VaultStorage { try VaultStores.open(location) }

    /// Runs SQL on another connection, outside any store (a careless tool, an administrator). Throws what the
    /// database answered.
    func rawSQL(_ sql: String) throws {
        switch kind {
        case .sqlite:
            let queue = try DatabaseQueue(path: location)
            defer { try? queue.close() }
            try queue.inDatabase { try $0.execute(sql: sql) }
        case .postgresql:
            try PostgresServer.shared().psql(database!, sql)
        }
    }
}

let t0 = Date(timeIntervalSince1970: 1_700_000_000.25)

/// An account with every field set, dates with fractions of a second (binary fractions: a Date, kept as seconds
/// since 2001, turns into Unix seconds and back exactly only for those, in either store).
func fullAccount(_ name: String, integration: Integration, at: Date = t0) -> Account {
    Account(
        name: name, integrationId: integration.id, accessTokenSealed: Array(0...255),
        refreshTokenSealed: [0, 1, 0, 255],
        accessExpiresAt: at.addingTimeInterval(1_209_599.125), refreshExpiresAt: at.addingTimeInterval(7_775_999.5),
        grantedScopes: ["spark:people_read", "spark:kms"], email: "\(name)@example.com", displayName: "Ålice Ünïcode",
        orgId: "org-1", personId: "person-\(name)", state: .ok, createdAt: at,
        updatedAt: at.addingTimeInterval(0.0009765625))
}

func draft(_ account: String = "alice", event: AuditEvent = .imported, detail: String? = nil, changed: Bool? = nil)
    -> AuditDraft
{
    AuditDraft(
        at: t0, account: account, integration: "reporting", event: event, trigger: "import", outcome: "ok",
        accessExpiresBefore: nil, accessExpiresAfter: t0.addingTimeInterval(100), refreshExpiresBefore: t0,
        refreshExpiresAfter: t0.addingTimeInterval(1000.5), refreshTokenChanged: changed, detail: detail)
}

/// A stand-in for the vault's keyed MAC, stable and chained: FNV-1a over the entry's canonical bytes (which
/// include the previous MAC). The store treats MACs as opaque bytes; this lets a test check the chain's links.
func chainMAC(_ seq: Int64, _ draft: AuditDraft, _ previous: [UInt8]) -> [UInt8] {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in AuditEntry.canonicalBytes(seq: seq, draft: draft, previousMAC: previous) {
        hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
    }
    return withUnsafeBytes(of: hash.bigEndian, Array.init)
}

func headMAC(_ seq: Int64, _ mac: [UInt8]) -> [UInt8] { chainMAC(seq, draft("head"), mac) }

/// Appends through the stand-in MAC.
@discardableResult
func append(_ store: any VaultStorage, _ d: AuditDraft) throws -> AuditEntry {
    try store.write { try $0.appendAudit(d, mac: chainMAC, headMAC: headMAC) }
}

/// The chain's problems: gaps or repeats in numbering, a link that does not match, a head that is not the newest.
func chainProblems(_ store: any VaultStorage) throws -> [String] {
    var problems: [String] = []
    var previous: [UInt8] = []
    let entries = try store.auditEntries()
    for (index, entry) in entries.enumerated() {
        if entry.seq != Int64(index + 1) { problems.append("entry \(index + 1) is numbered \(entry.seq)") }
        if entry.mac != chainMAC(entry.seq, entry.draft, previous) {
            problems.append("entry \(entry.seq) does not chain")
        }
        previous = entry.mac
    }
    let head = try store.auditHead()
    if head.seq != Int64(entries.count) { problems.append("head at \(head.seq), \(entries.count) entries") }
    if head.mac != headMAC(head.seq, previous) { problems.append("head MAC does not match") }
    return problems
}

func sampleSlot(_ name: String, at: Date = t0) -> KeySlot {
    KeySlot(
        name: name, kdfAlgorithm: "argon2id13", kdfSalt: Array(repeating: 3, count: 16), kdfOpsLimit: 3,
        kdfMemLimit: 1 << 28, publicKey: Array(repeating: 4, count: 32),
        secretKeySealed: Array(repeating: 5, count: 72),
        masterKeySealed: Array(repeating: 6, count: 80), createdAt: at, changedAt: at)
}

/// Fills a store with some of everything a snapshot holds.
func fill(_ store: any VaultStorage) throws {
    let integration = sampleIntegration()
    var other = sampleIntegration("zeta")
    other.providerOptions = #"{"tenant":"contoso"}"#
    try store.write { w in
        try w.insert(sampleSlot("main"))
        try w.insert(sampleSlot("ci-host", at: t0.addingTimeInterval(5)))
        try w.insert(integration)
        try w.insert(other)
        try w.insert(fullAccount("alice", integration: integration))
        try w.insert(fullAccount("Bob", integration: other))
        try w.insert(Account(name: "carol", integrationId: integration.id, createdAt: t0, updatedAt: t0))
        try w.setNotified(account: "carol", event: "needs-reauth", at: t0.addingTimeInterval(3))
    }
    for i in 0..<5 {
        try append(store, draft(i % 2 == 0 ? "alice" : "Bob", event: .refreshed, detail: "n\(i)", changed: i % 2 == 0))
    }
}

/// Waits on a Dispatch thread (off the cooperative pool) for blocking work.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
