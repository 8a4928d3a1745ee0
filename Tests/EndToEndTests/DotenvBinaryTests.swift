import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

extension MachineSupport {
    /// python-dotenv, read through the system python3 (Debian package python3-dotenv, in the Makefile's deps).
    static let pythonDotenv: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return false }
        return (try? runProcess("/usr/bin/python3", ["-c", "import dotenv"], environment: ["PATH": "/usr/bin:/bin"]))?
            .code == 0
    }()
}

extension OAuthBinaryTests {
    /// `env --format dotenv` read back by python-dotenv and as docker/systemd read it, byte for byte.
    @Suite struct Dotenv {
        // MARK: dotenv

        @Test(
            .enabled(
                if: MachineSupport.pythonDotenv || MachineSupport.isCI, "needs python3-dotenv (make deps installs it)"))
        func dotenvReadsBackByteForByteInPythonDotenvAndDockerEnvFile() async throws {
            try #require(
                MachineSupport.pythonDotenv, "CI=true: python3-dotenv must be installed (Makefile DEB_PACKAGES)")
            let ws = Workspace()
            try ws.expectOK(["init", "--kdf", "interactive"])
            try ws.expectOK(
                [
                    "add", "w", "--client-id", "C1", "--redirect-uri", "http://localhost:8765/callback",
                    "--scopes", "spark:people_read", "--api-base", "http://127.0.0.1:9/v1", "--client-secret-stdin",
                ], stdin: "cs-\(generatedToken())")
            // Every b64token character, at the start, in the middle and at the end, with and without padding.
            let tokens = [
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/",
                "-._~+/AZaz09==", "~x", "+", "/", "a.b_c-d~e+f/g=", "Zm9vYmFy=", "0",
            ]
            let reader = try ws.write(
                "read.py",
                """
                import sys
                from dotenv import dotenv_values
                sys.stdout.write(dotenv_values(sys.argv[1])["WEBEX_ACCESS_TOKEN"])
                """)
            for (index, token) in tokens.enumerated() {
                try ws.expectOK(
                    ["import", "a\(index)", "--integration", "w"],
                    stdin: tokenJSON(access: token, refresh: "r\(index)-\(generatedToken())"))
                let result = try ws.tokenvault(["env", "a\(index)", "--format", "dotenv"])
                #expect(result.code == 0, "\(result.err)")
                #expect(result.out == "WEBEX_ACCESS_TOKEN=\(token)\n")
                let file = try ws.write("a\(index).env", result.out)
                let read = try runProcess(
                    "/usr/bin/python3", [reader, file],
                    environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": ws.dir])
                #expect(read.code == 0, "\(read.err)")
                #expect(
                    read.out == token, "python-dotenv read \(read.out.debugDescription) for \(token.debugDescription)")
                // docker --env-file and systemd EnvironmentFile= take everything after the first '=' literally.
                let line = result.out.dropLast()
                #expect(String(line[line.index(after: line.firstIndex(of: "=")!)...]) == token)
            }
        }
    }
}
