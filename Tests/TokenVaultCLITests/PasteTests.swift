import Foundation
import ProviderSandbox
import Testing
import VaultOAuth

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// What "the user" pastes at each prompt, computed from what tokenvault printed so far.
final class PasteScript: @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [@Sendable (_ authorizeURL: URL) -> String?]
    private(set) var asked = 0
    init(_ answers: [@Sendable (_ authorizeURL: URL) -> String?]) { self.answers = answers }

    func answer(console: String) -> String? {
        let next: (@Sendable (URL) -> String?)? = lock.withLock {
            asked += 1
            return answers.isEmpty ? nil : answers.removeFirst()
        }
        guard let next, let url = Self.authorizeURL(in: console) else { return nil }
        return next(url)
    }

    /// The authorization URL tokenvault printed (the user opens it).
    static func authorizeURL(in console: String) -> URL? {
        console.split(separator: "\n").first { $0.contains("/authorize?") }
            .flatMap { URL(string: $0.trimmingCharacters(in: .whitespaces)) }
    }

    static func state(_ url: URL) -> String {
        URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?.first { $0.name == "state" }?.value ?? ""
    }
}

/// A bad paste is explained and asked for again, up to three times. The pastes that need the
/// browser's real landing URL run against the binary (PromptBinaryTests): fetching it from inside the paste
/// callback would block a thread of the two-thread cooperative pool that the in-process sandbox also needs.
@Suite struct PasteTests {
    func run(_ s: SandboxHarness, _ script: PasteScript, _ arguments: [String]) async -> RunResult {
        s.h.paste = { script.answer(console: $0) }
        return await s.h.run(arguments)
    }

    @Test func threeBadPastesEndWithTheUsageExitCode() async throws {
        let s = try await SandboxHarness()
        let script = PasteScript([
            { _ in "two words" }, { _ in "http://127.0.0.1:1/callback" },
            { _ in "http://127.0.0.1:1/callback?code=abc" },
        ])
        let result = await run(s, script, ["authorize", "alice", "--no-browser"])
        #expect(result.code == 2, "\(result.err)")
        #expect(script.asked == 3)
        #expect(result.err.contains("tokenvault: that is neither a URL nor an authorization code"), "\(result.err)")
        #expect(result.err.contains("tokenvault: error: that URL has no state= in it"), "\(result.err)")
        #expect(await s.sandbox.counters.codesRedeemed == 0)
        await s.stop()
    }

    @Test func threeRefusedCodesEndWithTheUsageExitCodeAndTheRightWords() async throws {
        let s = try await SandboxHarness()
        let refused = PasteScript([{ _ in "MadeUpCode1" }, { _ in "MadeUpCode2" }, { _ in "MadeUpCode3" }])
        let final = await run(s, refused, ["authorize", "bob", "--no-browser"])
        #expect(final.code == 2, "\(final.err)")
        #expect(
            final.err.contains("tokenvault: error: the authorization code was refused by the provider"), "\(final.err)")
        #expect(final.err.contains("tokenvault: hint: a code works once"), "\(final.err)")
        #expect(!final.err.contains("refresh token"))
        await s.stop()
    }

    @Test func endOfInputIsNotAskedAgain() async throws {
        let s = try await SandboxHarness()
        let script = PasteScript([])
        let result = await run(s, script, ["authorize", "alice", "--no-browser"])
        #expect(result.code == 2)
        #expect(script.asked == 1)
        #expect(result.err.contains("nothing was pasted"))
        await s.stop()
    }
}

/// Passphrases typed at a terminal: a wrong one is asked again up to three times (as sudo and ssh do), and `init`
/// warns below 12 characters and refuses below 8 unless --allow-weak-passphrase.
@Suite struct PassphrasePromptTests {
    @Test func aWrongPassphraseAtTheTerminalIsAskedAgainUpToThreeTimes() async throws {
        let (h, access, _) = try await Harness.withAccount()
        let terminal = ScriptedTerminal(["wrong one", "", Harness.passphrase])
        let result = await h.run(["token", "alice"], terminal: terminal, environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.out == access + "\n")
        #expect(terminal.prompts.count == 3)
        #expect(result.err.contains("tokenvault: wrong passphrase; try again (2 more attempts)"), "\(result.err)")
        #expect(result.err.contains("tokenvault: the passphrase is empty; try again (1 more attempt)"), "\(result.err)")

        let hopeless = ScriptedTerminal(["a", "b", "c", "never asked"])
        let failed = await h.run(["token", "alice"], terminal: hopeless, environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(failed.code == 3)
        #expect(hopeless.prompts.count == 3)
        #expect(failed.out.isEmpty)
        #expect(
            failed.err.hasSuffix(
                "tokenvault: error: wrong passphrase: the passphrase typed does not open the vault's key slot\ntokenvault: hint: run the command again to try again; the vault was not changed\n"
            ), "\(failed.err)")
    }

    @Test func aWrongPassphraseFromANonInteractiveSourceFailsAtOnce() async throws {
        let (h, _, _) = try await Harness.withAccount()
        let terminal = ScriptedTerminal([Harness.passphrase])
        let result = await h.run(
            ["token", "alice"], terminal: terminal, environment: ["TOKENVAULT_PASSPHRASE": "wrong"])
        #expect(result.code == 3)
        #expect(terminal.prompts.isEmpty)
        #expect(!result.err.contains("try again ("))
    }

    @Test func initRefusesAShortPassphraseAndWarnsAboutAWeakOne() async throws {
        let h = Harness()
        let short = await h.run(
            ["init"], terminal: ScriptedTerminal(["1234567", "1234567"]), environment: ["TOKENVAULT_PASSPHRASE": nil])
        #expect(short.code == 3)
        #expect(
            short.err.contains(
                "tokenvault: error: the passphrase has only 7 characters; a new passphrase needs at least 8"),
            "\(short.err)")
        #expect(short.err.contains("--allow-weak-passphrase"))
        #expect(!FileManager.default.fileExists(atPath: h.vaultPath))
        // Characters, not bytes: seven two-byte characters are still seven.
        let accented = await h.run(["init"], environment: ["TOKENVAULT_PASSPHRASE": "ééééééé"])
        #expect(accented.code == 3)
        #expect(accented.err.contains("only 7 characters"), "\(accented.err)")

        let weak = await h.run(["init"], environment: ["TOKENVAULT_PASSPHRASE": "elevenchars"])
        #expect(weak.code == 0, "\(weak.err)")
        #expect(
            weak.err.contains("tokenvault: warning: the passphrase has only 11 characters; 12 or more"), "\(weak.err)")
        #expect(!weak.err.contains("elevenchars"))
    }

    @Test func allowWeakPassphraseKeepsAShortOne() async throws {
        let h = Harness()
        let result = await h.run(["init", "--allow-weak-passphrase"], environment: ["TOKENVAULT_PASSPHRASE": "x"])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.err.contains("tokenvault: warning: the passphrase has only 1 character;"), "\(result.err)")
        #expect(await h.run(["list"], environment: ["TOKENVAULT_PASSPHRASE": "x"]).code == 0)
        let strong = Harness()
        let good = await strong.run(["init"], environment: ["TOKENVAULT_PASSPHRASE": "twelve chars"])
        #expect(good.code == 0)
        #expect(!good.err.contains("warning"))
    }
}
