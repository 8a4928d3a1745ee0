import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// Under umask 000 every file tokenvault makes is still private.
enum Permissions {
    static func run(_ report: Report, _ options: Options) {
        report.part(
            "Permissions",
            "every command run as `sh -c 'umask 000; exec tokenvault …'` on a vault in a directory that does not exist yet; modes read while a refresh (its request held at the sandbox's gate) has the database open"
        )
        let ws = Workspace("permissions", tokenvault: options.tokenvault, nested: true)
        defer { ws.remove() }
        let sandbox: Sandbox
        do { sandbox = try Sandbox(rotation: .on) } catch {
            report.check(false, "sandbox starts", "\(error)")
            return
        }
        defer { sandbox.stop() }
        if let problem = ws.setUp(apiBase: sandbox.url, client: sandbox.client, umask000: true) {
            report.check(false, "vault set up under umask 000", problem)
            return
        }
        guard let pairs = try? sandbox.issuePairs(count: 2, prefix: "p") else {
            report.check(false, "pairs issued")
            return
        }
        let lines = pairs.map {
            #"{"account":"\#($0.account)","access_token":"\#($0.access)","expires_in":1209599,"refresh_token":"\#($0.refresh)","refresh_token_expires_in":7776000,"token_type":"Bearer"}"#
        }
        let imported =
            (try? ws.spawn(
                ["import", "--batch", "--integration", "w"], stdin: lines.joined(separator: "\n"), umask000: true))?
            .closeStdinAndWait()
        let refreshed = (try? ws.spawn(["refresh", pairs[1].account], umask000: true))?.closeStdinAndWait()
        report.check(
            imported?.code == 0 && refreshed?.code == 0, "init, add, import and refresh succeed under umask 000",
            shortDescription((imported?.err ?? "") + (refreshed?.err ?? ""), limit: 200))

        // The refresh takes its lock and opens the database before it sends its request; the gate holds that request,
        // so the files are read while it waits there, however slow the machine.
        sandbox.closeGate()
        defer { sandbox.openGate() }
        guard let slow = try? ws.spawn(["refresh", pairs[0].account], umask000: true) else {
            report.check(false, "spawn a slow refresh")
            return
        }
        let held = waitUntil { sandbox.requestsInFlight >= 1 || !slow.isRunning }
        report.check(held && slow.isRunning, "the refresh's request reached the sandbox and is held there")
        var modes: [(String, String, mode_t)] = [
            (
                "directory made for the vault's parent",
                URL(fileURLWithPath: ws.vaultDirectory).deletingLastPathComponent().path, 0o700
            ),
            ("directory", ws.vaultDirectory, 0o700), ("vault.db", ws.vault, 0o600),
            ("vault.db-wal", ws.vault + "-wal", 0o600),
            ("vault.db-shm", ws.vault + "-shm", 0o600), ("lock directory", ws.locksDirectory, 0o700),
        ]
        let lockFiles = (try? FileManager.default.contentsOfDirectory(atPath: ws.locksDirectory)) ?? []
        for name in lockFiles.sorted() {
            modes.append(("lock file \(name.prefix(8))…", ws.locksDirectory + "/" + name, 0o600))
        }
        var observed: [(String, String, mode_t, mode_t?)] = []
        for (title, path, wanted) in modes {
            var info = stat()
            observed.append((title, path, wanted, stat(path, &info) == 0 ? info.st_mode & 0o7777 : nil))
        }
        let wasRunning = slow.isRunning
        sandbox.openGate()
        let result = slow.closeStdinAndWait()
        report.check(
            wasRunning && result.code == 0,
            "the held refresh was still running when the modes were read, and succeeded",
            shortDescription(result.err, limit: 160))
        for (title, _, wanted, mode) in observed {
            report.check(
                mode == wanted, "\(title): mode \(String(wanted, radix: 8))",
                mode.map { "found \(String($0, radix: 8))" } ?? "missing")
        }
        report.check(lockFiles.count == 2, "one lock file per refreshed account (\(lockFiles.count) for 2)")
    }
}
