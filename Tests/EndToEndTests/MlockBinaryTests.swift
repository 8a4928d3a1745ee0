import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab
import TokenVaultTestSupport

extension MachineSupport {
    /// The command prefix that runs a program with no lockable memory: `prlimit --memlock=0`, and as root also
    /// without CAP_IPC_LOCK (which ignores the limit).
    static let noLockableMemory: [String]? = {
        guard let prlimit else { return nil }
        if geteuid() != 0 { return [prlimit, "--memlock=0:0"] }
        guard let setpriv else { return nil }
        let probe = try? runProcess(
            setpriv, ["--bounding-set=-ipc_lock", prlimit, "--memlock=0:0", "true"],
            environment: ["PATH": "/usr/bin:/bin"])
        return probe?.code == 0 ? [setpriv, "--bounding-set=-ipc_lock", prlimit, "--memlock=0:0"] : nil
    }()
}

extension OAuthBinaryTests {
    /// A failed mlock (for example under `ulimit -l 0`) is said once under --verbose, instead of nothing.
    @Suite struct MlockWarning {
        // MARK: mlock

        @Test(
            .enabled(
                if: MachineSupport.noLockableMemory != nil || MachineSupport.isCI, "needs prlimit (and setpriv as root)"
            ))
        func aFailedMlockIsReportedOnceWithVerbose() async throws {
            let prefix = try #require(
                MachineSupport.noLockableMemory, "CI=true: prlimit (and setpriv as root) must be available")
            let ws = Workspace()
            try ws.expectOK(["init", "--kdf", "interactive"])
            try ws.expectOK(
                [
                    "add", "w", "--client-id", "C1", "--redirect-uri", "http://localhost:8765/callback",
                    "--scopes", "spark:people_read", "--api-base", "http://127.0.0.1:9/v1", "--client-secret-stdin",
                ], stdin: "cs-\(generatedToken())")
            let access = generatedToken()
            try ws.expectOK(
                ["import", "alice", "--integration", "w"], stdin: tokenJSON(access: access, refresh: generatedToken()))
            func run(_ arguments: [String]) throws -> ProcessResult {
                try runProcess(
                    prefix[0], Array(prefix.dropFirst()) + [tokenvaultBinary] + arguments, environment: ws.environment)
            }
            let marker = "tokenvault: warning: could not lock secret memory into RAM (mlock:"
            let verbose = try run(["token", "alice", "--verbose"])
            #expect(verbose.code == 0, "\(verbose.err)")
            #expect(verbose.out == access + "\n")
            #expect(verbose.err.components(separatedBy: marker).count - 1 == 1, "\(verbose.err)")
            let verify = try run(["audit", "--verify", "--verbose"])
            #expect(verify.err.components(separatedBy: marker).count - 1 == 1, "\(verify.err)")
            let quiet = try run(["token", "alice"])
            #expect(quiet.code == 0)
            #expect(!quiet.err.contains("mlock"))
            // With lockable memory, nothing to say.
            #expect(!(try ws.tokenvault(["token", "alice", "--verbose"]).err.contains("mlock")))
        }
    }
}
