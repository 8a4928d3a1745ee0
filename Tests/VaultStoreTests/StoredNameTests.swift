import Foundation
import Testing
import TokenVaultLab

@testable import VaultStore

/// Names read back from either store obey the rule they were created under (letters, digits, '.', '_', '-', '@';
/// 1 to 64): a name someone wrote into the file or the database behind tokenvault's back (a terminal escape, a
/// newline, `$(…)`) is refused as tampering, naming the row by its id, before any command can print it.
@Suite struct StoredNameTests {
    /// A name that sets the terminal's clipboard (OSC 52), clears the screen and carries a command substitution.
    static func hostile(_ kind: StoreKind) -> String {
        let chr = kind == .sqlite ? "char" : "chr"
        return
            "'x' || \(chr)(27) || ']52;c;aGk=' || \(chr)(7) || \(chr)(27) || '[2J$(touch /tmp/pwned)' || \(chr)(10) || 'y'"
    }

    @Test(arguments: StoreKind.allCases)
    func anAccountNameWrittenBehindTheStoresBackIsRefused(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create()
        defer { try? store.close() }
        let integration = sampleIntegration()
        let alice = fullAccount("alice", integration: integration)
        try store.write { w in
            try w.insert(integration)
            try w.insert(alice)
        }
        try place.rawSQL("UPDATE account SET name = \(Self.hostile(kind)) WHERE id = '\(alice.id)'")
        try expectRefused(naming: alice.id) { _ = try store.accounts() }
        try expectRefused(naming: alice.id) { _ = try store.accountSummaries() }
        try expectRefused(naming: alice.id) {
            _ = try store.accounts(accessExpiringBefore: .distantFuture, orStoredAfter: nil)
        }
        // Reopened, as the next command would.
        let again = try place.open()
        defer { try? again.close() }
        try expectRefused(naming: alice.id) { _ = try again.accountSummaries() }
    }

    @Test(arguments: StoreKind.allCases)
    func anIntegrationNameWrittenBehindTheStoresBackIsRefused(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create()
        defer { try? store.close() }
        let integration = sampleIntegration()
        try store.write { try $0.insert(integration) }
        try place.rawSQL("UPDATE integration SET name = \(Self.hostile(kind)) WHERE id = '\(integration.id)'")
        try expectRefused(naming: integration.id) { _ = try store.integrations() }
        try expectRefused(naming: integration.id) { _ = try store.integration(id: integration.id) }
    }

    @Test(arguments: StoreKind.allCases)
    func aKeySlotNameWrittenBehindTheStoresBackIsRefused(_ kind: StoreKind) async throws {
        let place = try await StorePlace(kind)
        let store = try place.create()
        defer { try? store.close() }
        try store.write { try $0.insert(sampleSlot("ci-host")) }
        try place.rawSQL("UPDATE key_slot SET name = \(Self.hostile(kind)) WHERE name = 'ci-host'")
        // A key slot has no id: it is named by its name with every character outside the rule escaped.
        do {
            _ = try store.keySlots()
            Issue.record("a key slot with a hostile name was read")
        } catch let error as StoreError {
            guard case .invalidRecord(let what) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(what.contains("key slot \"x\\u{1b}\\u{5d}52") && what.contains("\\u{24}\\u{28}touch"), "\(what)")
            expectPrintable(error)
        }
    }

    /// The rule itself, as `init`, `add`, `import`, `authorize` and `keys add` apply it.
    @Test func theRule() {
        for good in ["alice", "alice@example.com", "ci-host_2.b", String(repeating: "a", count: 64), "main"] {
            #expect(StoredName.isValid(good), "\(good)")
        }
        for bad in [
            "", String(repeating: "a", count: 65), "a b", "a\u{1b}", "é", "a/b", "$(x)", "a'b", "a\nb", "a\u{202e}b",
        ] {
            #expect(!StoredName.isValid(bad), "\(bad.debugDescription)")
        }
        #expect(StoredName.visible("a\u{1b}$b") == "\"a\\u{1b}\\u{24}b\"")
    }

    func expectRefused(naming id: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void)
        throws
    {
        do {
            try body()
            Issue.record("a row with a hostile name was read", sourceLocation: sourceLocation)
        } catch let error as StoreError {
            guard case .invalidRecord(let what) = error else {
                Issue.record("\(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(what.contains(id), "\(what)", sourceLocation: sourceLocation)
            expectPrintable(error, sourceLocation: sourceLocation)
        }
    }

    func expectPrintable(_ error: StoreError, sourceLocation: SourceLocation = #_sourceLocation) {
        let text = (error.errorDescription ?? "") + (error.hint ?? "")
        #expect(
            !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }, "\(text.debugDescription)",
            sourceLocation: sourceLocation)
        #expect(!text.contains("$(touch"), sourceLocation: sourceLocation)
    }
}
