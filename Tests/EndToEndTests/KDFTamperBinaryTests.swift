import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// Edited KDF parameters, with the built binary (real interactive and moderate costs): only the costs tokenvault
    /// writes are accepted, refused before the KDF runs.
    @Suite struct KDFTamper {
        // MARK: KDF parameters

        @Test func kdfParametersTokenvaultNeverWritesAreTamperingWithoutRunningTheKDF() async throws {
            try await SandboxWorkspace.with { s in
                // Within the caps, but not a level tokenvault writes: 4 passes over 1 GiB + 64 MiB would take seconds.
                try sqlite(s.ws.vault, "UPDATE key_slot SET kdf_opslimit = 4, kdf_memlimit = \((1 << 30) + (64 << 20))")
                let started = Date()
                let result = try await s.run(["audit", "--verify"])
                let seconds = Date().timeIntervalSince(started)
                #expect(result.code == 7, "\(result.err)")
                #expect(
                    result.err.contains("tokenvault: error: the vault's key-derivation parameters were changed"),
                    "\(result.err)")
                #expect(result.err.contains("tokenvault: hint:"))
                #expect(!result.err.contains("wrong passphrase"))
                #expect(seconds < 1.5, "took \(seconds) s: the KDF ran")
                // Over the caps (the sensitive preset plus a margin): refused as before.
                try sqlite(s.ws.vault, "UPDATE key_slot SET kdf_opslimit = 6, kdf_memlimit = 67108864")
                #expect(try await s.run(["audit", "--verify"]).code == 7)
            }
        }

        @Test func interactiveRaisedToModerateIsReportedAsTampering() async throws {
            try await SandboxWorkspace.with { s in
                try sqlite(s.ws.vault, "UPDATE key_slot SET kdf_opslimit = 3, kdf_memlimit = 268435456")
                let result = try await s.run(["audit", "--verify"])
                #expect(result.code == 7, "\(result.err)")
                #expect(
                    result.err.contains(
                        "the vault's key-derivation parameters were changed: key slot 'main' opens with the interactive level, the file says moderate"
                    ), "\(result.err)")
                let wrong = try await s.run(
                    ["audit", "--verify"], environment: ["TOKENVAULT_PASSPHRASE": "not the passphrase"])
                #expect(wrong.code == 3, "a wrong passphrase opens no level: \(wrong.err)")
                // Put back: it opens again.
                try sqlite(s.ws.vault, "UPDATE key_slot SET kdf_opslimit = 2, kdf_memlimit = 67108864")
                #expect(try await s.run(["audit", "--verify"]).code == 0)
            }
        }
    }
}
