import Foundation
import GRDB
import Testing
import TokenVaultTestSupport
import VaultCrypto

@testable import TokenVaultCLI
@testable import TokenVaultCore

// The vault's Argon2id parameters edited with SQL. Only the costs tokenvault writes are accepted;
// a swap between two of them is told apart from a wrong passphrase.

/// Three distinct cheap KDF levels, so that a swap between two known levels can be staged in-process
/// (the usual `cheapKDF` gives every level the same cost).
let leveledCheapKDF: @Sendable (KDFParameters.Level) -> KDFParameters = { level in
    let (ops, mem): (UInt64, UInt64) =
        switch level {
        case .interactive: (1, 8192)
        case .moderate: (2, 8192)
        case .sensitive: (2, 16384)
        }
    return KDFParameters(opsLimit: ops, memLimit: mem, salt: Random.bytes(KDFParameters.saltBytes))
}

extension Harness {
    /// Runs a command with `leveledCheapKDF` instead of `cheapKDF` (no provider, no browser, no exec).
    func runLeveled(_ arguments: [String], passphrase: String = Harness.passphrase, newPassphrase: String? = nil) async
        -> RunResult
    {
        var env = environment
        env["TOKENVAULT_PASSPHRASE"] = passphrase
        let console = CapturingConsole()
        let clock = now
        let context = Context(
            environment: env, console: console, terminal: newPassphrase.map { ScriptedTerminal([$0, $0]) },
            now: { clock },
            readStandardInput: { Data() }, kdfParameters: leveledCheapKDF,
            makeTransport: { LoopbackOnlyTransport(tracer: $0) })
        let code = await TokenVault.run(arguments: arguments, context: context)
        return RunResult(code: code, out: console.output, err: console.errors)
    }
}

@Suite struct KDFParameterTamperTests {
    @Test func parametersTokenvaultNeverWritesAreTamperingAndNoKDFRuns() async throws {
        let (h, access, _) = try await Harness.withAccount()
        // cheapKDF writes (1 pass, 8 KiB); any other cost within the caps is an edit.
        for (ops, mem) in [(2, 8192), (1, 16384), (4, 1 << 30)] as [(Int64, Int64)] {
            try tamper(h, "UPDATE key_slot SET kdf_opslimit = ?, kdf_memlimit = ? WHERE name = 'main'", [ops, mem])
            let started = Date()
            let result = await h.run(["token", "alice"])
            #expect(result.code == 7, "(\(ops), \(mem)): \(result.err)")
            #expect(result.err.contains("key-derivation parameters were changed"), "\(result.err)")
            #expect(!result.err.contains("wrong passphrase"))
            #expect(!result.out.contains(access))
            // (4, 1 GiB) would take seconds and 1 GiB if the KDF ran.
            #expect(
                Date().timeIntervalSince(started) < 1, "(\(ops), \(mem)) took \(Date().timeIntervalSince(started)) s")
        }
    }

    @Test func capsAreTheSensitivePresetPlusAMargin() throws {
        let salt = [UInt8](repeating: 1, count: KDFParameters.saltBytes)
        #expect(throws: VaultCryptoError.self) { try KDFParameters(opsLimit: 6, memLimit: 8192, salt: salt).validate() }
        #expect(throws: VaultCryptoError.self) {
            try KDFParameters(opsLimit: 1, memLimit: 2 << 30, salt: salt).validate()
        }
        try KDFParameters.fresh(.sensitive).validate()
    }

    @Test func aKnownLevelRaisedToADearerOneIsTamperingNotAWrongPassphrase() async throws {
        let h = Harness()
        #expect(await h.runLeveled(["init", "--kdf", "interactive"]).code == 0)
        let sensitive = leveledCheapKDF(.sensitive)
        try tamper(
            h, "UPDATE key_slot SET kdf_opslimit = ?, kdf_memlimit = ? WHERE name = 'main'",
            [Int64(sensitive.opsLimit), Int64(sensitive.memLimit)])
        let result = await h.runLeveled(["audit", "--verify"])
        #expect(result.code == 7, "\(result.err)")
        #expect(
            result.err.contains(
                "the vault's key-derivation parameters were changed: key slot 'main' opens with the interactive level, the file says sensitive"
            ), "\(result.err)")
        // A real wrong passphrase is still one.
        #expect(await h.runLeveled(["audit", "--verify"], passphrase: "not it").code == 3)
    }

    @Test func aLoweredLevelCannotBeToldFromAWrongPassphrase() async throws {
        let h = Harness()
        #expect(await h.runLeveled(["init", "--kdf", "sensitive"]).code == 0)
        let interactive = leveledCheapKDF(.interactive)
        try tamper(
            h, "UPDATE key_slot SET kdf_opslimit = ?, kdf_memlimit = ? WHERE name = 'main'",
            [Int64(interactive.opsLimit), Int64(interactive.memLimit)])
        #expect(await h.runLeveled(["audit", "--verify"]).code == 3)
    }

    @Test func passwdStillChangesTheLevel() async throws {
        let h = Harness()
        #expect(await h.runLeveled(["init", "--kdf", "interactive"]).code == 0)
        let changed = await h.runLeveled(["passwd", "--kdf", "moderate"], newPassphrase: "new passphrase")
        #expect(changed.code == 0, "\(changed.err)")
        #expect(await h.runLeveled(["audit", "--verify"], passphrase: "new passphrase").code == 0)
        #expect(await h.runLeveled(["audit", "--verify"]).code == 3)
        let kept = await h.runLeveled(["passwd"], passphrase: "new passphrase", newPassphrase: "third")
        #expect(kept.code == 0, "\(kept.err)")
        #expect(await h.runLeveled(["audit", "--verify"], passphrase: "third").code == 0)
    }
}
