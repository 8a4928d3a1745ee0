import Foundation
import Testing
import VaultStore

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// `keys add|list|remove` and `passwd --slot` in-process: prompts at a terminal, refusals before any passphrase is
/// asked, and nothing written on a wrong one (the built binary's tests are in KeySlotBinaryTests).
@Suite struct KeySlotCommandTests {
    static let bob = "bob's passphrase 42"
    let atTerminal: [String: String?] = ["TOKENVAULT_PASSPHRASE": nil]

    func slots(_ h: Harness) throws -> [String] { try VaultStores.open(h.vaultPath).keySlots().map(\.name) }

    @Test func keysAddAtATerminalGivesThreeTriesThenAsksTheNewPassphraseTwice() async throws {
        let (h, access, _) = try await Harness.withAccount()
        let terminal = ScriptedTerminal(["not it", Harness.passphrase, Self.bob, Self.bob])
        let added = await h.run(
            ["keys", "add", "bob", "--kdf", "interactive"], terminal: terminal, environment: atTerminal)
        #expect(added.code == 0, "\(added.err)")
        #expect(
            terminal.prompts == [
                "Vault passphrase: ", "Vault passphrase: ", "Passphrase for key slot 'bob': ", "Repeat it: ",
            ])
        #expect(added.err.contains("wrong passphrase; try again (2 more attempts)"), "\(added.err)")
        #expect(try slots(h).sorted() == ["bob", "main"])
        #expect(await h.run(["token", "alice"], environment: ["TOKENVAULT_PASSPHRASE": Self.bob]).out == access + "\n")
        #expect(!(added.out + added.err).contains(Self.bob) && !(added.out + added.err).contains(Harness.passphrase))
    }

    @Test func aMistypedNewPassphraseAddsNothing() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let before = h.vaultBytes()
        let mismatch = await h.run(["keys", "add", "bob"], terminal: ScriptedTerminal([Self.bob, Self.bob + "x"]))
        #expect(mismatch.code == 3 && mismatch.err.contains("the two passphrases differ"), "\(mismatch.err)")
        let short = await h.run(["keys", "add", "bob"], terminal: ScriptedTerminal(["short", "short"]))
        #expect(short.code == 3, "\(short.err)")
        #expect(h.vaultBytes() == before)
        let noTerminal = await h.run(["keys", "add", "bob"])
        #expect(noTerminal.code == 2 && noTerminal.err.contains("--new-passphrase-fd"), "\(noTerminal.err)")
        #expect(await h.run(["keys", "add", "bad name"]).code == 2)
        #expect(try slots(h) == ["main"])
        let weak = await h.run(
            ["keys", "add", "bob", "--allow-weak-passphrase"], terminal: ScriptedTerminal(["short", "short"]))
        #expect(weak.code == 0 && weak.err.contains("warning: the passphrase has only 5 characters"), "\(weak.err)")
    }

    /// Three wrong passphrases at a terminal, each tried on both slots: exit 3 and the file as it was.
    @Test func threeWrongPassphrasesAtATerminalChangeNothing() async throws {
        let (h, _, _) = try await Harness.withAccount()
        // The current passphrase from the environment, the new one twice on the terminal.
        let added = await h.run(["keys", "add", "bob"], terminal: ScriptedTerminal([Self.bob, Self.bob]))
        #expect(added.code == 0, "\(added.err)")
        let before = h.vaultBytes()
        for command in [["keys", "remove", "bob"], ["keys", "rotate"], ["passwd"]] {
            let terminal = ScriptedTerminal(["one", "two", "three"])
            let result = await h.run(command, terminal: terminal, environment: atTerminal)
            #expect(result.code == 3 && result.err.contains("(1 more attempt)"), "\(command): \(result.err)")
            #expect(terminal.prompts.count == 3, "\(command)")
            #expect(h.vaultBytes() == before, "\(command) wrote to the vault")
        }
        #expect(try slots(h).sorted() == ["bob", "main"])
    }

    @Test func refusalsComeBeforeAnyPassphrase() async throws {
        let (h, _, _) = try await Harness.withAccount()
        // A terminal with no answers: a command that asked would fail with "ran out of answers".
        let silent = ScriptedTerminal([])
        let unknown = await h.run(["keys", "remove", "carol"], terminal: silent, environment: atTerminal)
        #expect(unknown.code == 4 && unknown.err.contains("no key slot named 'carol'"), "\(unknown.err)")
        let last = await h.run(["keys", "remove", "main"], terminal: silent, environment: atTerminal)
        #expect(last.code == 2 && last.err.contains("only one"), "\(last.err)")
        let passwd = await h.run(["passwd", "--slot", "carol"], terminal: silent, environment: atTerminal)
        #expect(passwd.code == 4, "\(passwd.err)")
        let duplicate = await h.run(["keys", "add", "main"], terminal: silent, environment: atTerminal)
        #expect(duplicate.code == 2 && duplicate.err.contains("already exists"), "\(duplicate.err)")
        #expect(silent.prompts.isEmpty)
    }
}
