import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// Commands that use the network once created `~/.cache/org.swift.foundation.URLCache/tokenvault/` and
    /// `$XDG_DATA_HOME/debug/` (Foundation's URL cache and cookie store). A secrets tool leaves no files but its own.
    @Suite struct StrayFiles {
        @Test func networkCommandsLeaveNoFilesButTheVaults() async throws {
            try await SandboxWorkspace.with { s in
                let browser = try s.ws.browserStandIn("follow")
                #expect(
                    try await s.run(["authorize", "alice", "--timeout", "30"], environment: ["BROWSER": browser]).code
                        == 0)
                #expect(try await s.run(["refresh", "alice"]).code == 0)
                #expect(try await s.run(["whoami", "alice"]).code == 0)
                #expect(try await s.run(["refresh-all", "--skip-recent", "0"]).code == 0)
                // HOME is the workspace and XDG_DATA_HOME its data/: nothing but tokenvault's own directory there.
                #expect(
                    !FileManager.default.fileExists(atPath: s.ws.dir + "/.cache"), "a cache directory appeared in HOME")
                #expect(try FileManager.default.contentsOfDirectory(atPath: s.ws.dir + "/data") == ["tokenvault"])
            }
        }
    }
}
