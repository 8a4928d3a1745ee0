import Foundation
import Spawning
import Testing

/// ``SpawnedProcess``: exit codes, the timeout, and waits that hold no thread of the cooperative pool.
@Suite struct SpawnedProcessTests {
    func shell(_ script: String) throws -> SpawnedProcess {
        try SpawnedProcess.spawn(
            "/bin/sh", arguments: ["/bin/sh", "-c", script], environment: ["PATH": "/usr/bin:/bin"])
    }

    @Test func reportsHowAChildEnded() async throws {
        #expect(try await shell("exit 3").exit() == .exited(3))
        #expect(try await shell("exit 0").exit(timeout: 30) == .exited(0))
        #expect(try await shell("kill -KILL $$").exit() == .signalled(SIGKILL))
        // Asked again after it ended: the same answer, at once.
        let child = try shell("exit 7")
        #expect(child.waitForExit() == .exited(7))
        #expect(await child.exit() == .exited(7))
    }

    @Test func aChildThatOutlivesTheTimeoutIsLeftRunning() async throws {
        let child = try shell("sleep 30")
        #expect(await child.exit(timeout: 0.2) == nil)
        #expect(kill(child.pid, 0) == 0)
        kill(child.pid, SIGKILL)
        #expect(await child.exit() == .signalled(SIGKILL))
    }

    @Test func aMissingProgramIsAFailureToSpawn() {
        #expect(throws: SpawnedProcess.Failure.self) {
            try SpawnedProcess.spawn("/nonexistent/program", arguments: ["program"], environment: [:])
        }
    }

    /// More children awaited at once than the pool has threads, which can only end when another task on the pool
    /// runs: waits that blocked a pool thread each (waitpid, or polling it with usleep) would never let it.
    @Test(.timeLimit(.minutes(1))) func waitsHoldNoThreadOfThePool() async throws {
        let flag = FileManager.default.temporaryDirectory.path + "/tokenvault-spawn-\(UUID().uuidString)"
        defer { unlink(flag) }
        let count = ProcessInfo.processInfo.activeProcessorCount + 2
        let children = try (0..<count).map { _ in try shell("while [ ! -e '\(flag)' ]; do sleep 0.05; done; exit 5") }
        let exits = await withTaskGroup(of: SpawnedProcess.Exit.self) { group in
            for child in children { group.addTask { await child.exit() } }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(200))
                _ = FileManager.default.createFile(atPath: flag, contents: Data())
                return .exited(5)
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(exits == Array(repeating: .exited(5), count: count + 1))
    }
}
