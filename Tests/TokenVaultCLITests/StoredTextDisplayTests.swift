import Foundation
import Testing
@testable import TokenVaultCLI
@testable import TokenVaultCore

/// Issue 7 §9: provider text reaches a person's terminal through `list` long after it was stored (an older
/// vault, or an edited file): it is cleaned again where it is shown.
@Suite struct StoredTextDisplayTests {
    @Test func listStripsTerminalEscapesFromStoredIdentities() async throws {
        let (h, _, _) = try await Harness.withAccount()
        try tamper(h, "UPDATE account SET email = ?", ["x\u{1b}]0;pwned\u{07}\u{1b}[31mred@example.com\u{202e}moc"])
        let result = await h.run(["list"], environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(result.code == 0, "\(result.err)")
        #expect(!result.out.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 || $0.value == 0x202e }, "\(result.out.debugDescription)")
        #expect(result.out.contains("red@example.com"))
    }
}
