import Foundation
import Testing

@testable import TokenVaultCLI

/// Commands that name the vault's location without opening it (`lock`, `agent status`) never repeat a password
/// a PostgreSQL location carries; neither do those that open it, when it does not even parse.
@Suite struct LocationNamingTests {
    @Test func aLocationWithAPasswordIsNamedWithoutIt() async throws {
        let h = Harness()
        h.environment["XDG_RUNTIME_DIR"] = h.dir
        let secret = "s3cret" + randomToken(8)
        for location in [
            "postgresql://alice:\(secret)@db.example/vault", "postgresql://alice:\(secret)@[::1/vault",
            "host=/tmp password=\(secret) dbname",
        ] {
            for command in [["lock"], ["agent", "status"], ["list"], ["unlock"], ["token", "alice"]] {
                let result = await h.run(command + ["--vault", location])
                #expect(command == ["lock"] || result.code != 0, "\(command) \(location)")
                #expect(!(result.out + result.err).contains(secret), "\(command): \(result.out)\(result.err)")
            }
        }
    }
}
