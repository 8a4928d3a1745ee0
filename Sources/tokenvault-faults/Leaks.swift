import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// A canary pair issued by the sandbox must never appear in plaintext where it should not.
enum Leaks {
    static func run(_ report: Report, _ options: Options) {
        report.part(
            "Leaks",
            "a sandbox-issued canary pair (and the client secret) searched for in vault.db, -wal, -shm (kept on disk by a python3 connection), in the stdout/stderr of list/audit/refresh/refresh-all and of --verbose runs, in /proc/PID/cmdline of tokenvault and of a child of `exec … -- sleep 3`; core-size limit read from /proc/PID/limits of a running tokenvault"
        )
        let ws = Workspace("leaks", tokenvault: options.tokenvault)
        defer { ws.remove() }
        let sandbox: Sandbox
        do { sandbox = try Sandbox(rotation: .off) } catch {
            report.check(false, "sandbox starts", "\(error)")
            return
        }
        defer { sandbox.stop() }
        if let problem = ws.setUp(apiBase: sandbox.url, client: sandbox.client) {
            report.check(false, "vault set up", problem)
            return
        }
        guard let pairs = try? sandbox.issuePairs(count: 2, prefix: "canary"), ws.importPairs(pairs).code == 0 else {
            report.check(false, "canary pair imported")
            return
        }
        let account = pairs[0].account
        // Webex-shaped tokens end in `_<cluster>_<orgId>`, shared by all; the random head is the secret part.
        func head(_ token: String) -> String { String(token.split(separator: "_").first ?? Substring(token)) }
        var canaries = [
            ("access token", head(pairs[0].access)), ("refresh token", head(pairs[0].refresh)),
            ("client secret", sandbox.client.clientSecret),
        ]
        func leaked(_ text: String) -> [String] {
            canaries.filter { text.contains($0.1) || text.contains(String($0.1.prefix(16))) }.map(\.0)
        }
        func leaked(_ data: Data) -> [String] {
            canaries.filter { data.contains($0.1) || data.contains(String($0.1.prefix(16))) }.map(\.0)
        }

        let holder = try? Python.holdOpen(ws.vault)
        var outputs: [(String, String)] = []
        func record(_ name: String, _ arguments: [String], stdoutIsSecret: Bool = false) -> RunResult {
            let result = ws.run(arguments)
            outputs.append(("\(name) stderr", result.err))
            if !stdoutIsSecret { outputs.append(("\(name) stdout", result.out)) }
            return result
        }
        let refreshed = record("refresh --verbose", ["refresh", account, "--verbose"])
        let token = record("token --verbose", ["token", account, "--verbose"], stdoutIsSecret: true)
        let newAccess = token.out.trimmingCharacters(in: .whitespacesAndNewlines)
        if !newAccess.isEmpty { canaries.append(("new access token", head(newAccess))) }
        report.check(
            refreshed.code == 0 && token.code == 0 && newAccess != pairs[0].access
                && sandbox.isAccessTokenValid(newAccess),
            "the canary account refreshes, and `token` returns its new access token",
            "refresh exit \(refreshed.code), token exit \(token.code): \(shortDescription(refreshed.err + token.err, limit: 200))"
        )
        _ = record("env --verbose", ["env", account, "--verbose", "--min-valid", "20d"], stdoutIsSecret: true)  // forces a refresh
        _ = record("refresh-all --verbose --json", ["refresh-all", "--skip-recent", "0", "--verbose", "--json"])
        let latest = ws.run(["token", account]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        if !latest.isEmpty && latest != newAccess { canaries.append(("latest access token", head(latest))) }
        for (name, arguments) in [
            ("list", ["list"]), ("list --json", ["list", "--json"]), ("audit", ["audit"]),
            ("audit --json", ["audit", "--json"]),
            ("audit --verify", ["audit", "--verify"]), ("integrations --json", ["integrations", "--json"]),
        ] {
            _ = record(name, arguments)
        }
        let traced = outputs.filter { $0.0.contains("--verbose") && $0.1.contains("tokenvault: http:") }.count
        report.check(traced >= 3, "--verbose runs did trace HTTP requests (\(traced) runs traced)")
        let leaky = outputs.compactMap { output in
            leaked(output.1).isEmpty ? nil : "\(output.0): \(leaked(output.1).joined(separator: ", "))"
        }
        report.check(
            leaky.isEmpty,
            "no canary (\(canaries.count) secrets) in the output of \(outputs.count / 2 + 1) list/audit/integrations/refresh/--verbose runs",
            leaky.prefix(4).joined(separator: "; "))
        let files = ws.vaultFiles()
        let fileLeaks = files.compactMap { file in
            leaked(file.1).isEmpty ? nil : "\(file.0): \(leaked(file.1).joined(separator: ", "))"
        }
        report.check(
            files.count == 3 && fileLeaks.isEmpty,
            "no canary in plaintext in \(files.map { URL(fileURLWithPath: $0.0).lastPathComponent }.joined(separator: ", ")) (\(files.map(\.1.count).reduce(0, +)) bytes)",
            files.count == 3 ? fileLeaks.joined(separator: "; ") : "only \(files.count) files were on disk")
        holder?.closeStdin()
        _ = holder?.closeStdinAndWait()
        let afterClose = ws.vaultFiles()
        report.check(
            afterClose.allSatisfy { leaked($0.1).isEmpty },
            "no canary in vault.db after the last connection closed (checkpointed)")

        // /proc/PID/cmdline and limits of a tokenvault that is busy: a refresh whose request the sandbox holds.
        sandbox.closeGate()
        if let slow = try? ws.spawn(["refresh", account]) {
            let held = waitUntil { sandbox.requestsInFlight >= 1 || !slow.isRunning }
            report.check(held && slow.isRunning, "the refresh's request reached the sandbox and is held there")
            let cmdline = slow.proc("cmdline") ?? ""
            let limits = slow.proc("limits") ?? ""
            sandbox.openGate()
            let result = slow.closeStdinAndWait()
            report.check(
                !cmdline.isEmpty && leaked(cmdline).isEmpty,
                "/proc/PID/cmdline of a refreshing tokenvault holds no canary", shortDescription(cmdline, limit: 120))
            report.check(
                coreLimitIsZero(limits), "core dumps are off in a refreshing tokenvault (/proc/PID/limits)",
                coreLine(limits))
            report.check(result.code == 0, "the slow refresh completes", shortDescription(result.err, limit: 160))
        } else {
            report.check(false, "spawn a slow refresh")
        }
        sandbox.openGate()

        // While it waits for the passphrase on a pipe we hold open (--passphrase-fd 0).
        if let waiting = try? ws.spawn(
            ["token", account, "--passphrase-fd", "0"], stdin: nil, env: ["TOKENVAULT_PASSPHRASE": nil])
        {
            // Read once it is blocked reading the pipe: start-up (where the limit is set) is over by then.
            let blocked = waitUntil { waiting.isBlockedReadingPipe || !waiting.isRunning }
            report.check(
                blocked && waiting.isRunning, "tokenvault blocks reading the passphrase pipe (its /proc wait channel)")
            let limits = waiting.proc("limits") ?? ""
            let cmdline = waiting.proc("cmdline") ?? ""
            waiting.send(Workspace.passphrase + "\n")
            let result = waiting.closeStdinAndWait()
            report.check(
                coreLimitIsZero(limits),
                "core dumps are off while tokenvault waits at the passphrase (--passphrase-fd on an open pipe)",
                coreLine(limits))
            report.check(
                leaked(cmdline).isEmpty && !cmdline.contains(Workspace.passphrase),
                "its cmdline holds neither canary nor passphrase")
            report.check(
                result.code == 0 && !result.out.isEmpty, "the token comes once the passphrase arrives",
                shortDescription(result.err, limit: 160))
        } else {
            report.check(false, "spawn tokenvault waiting at the passphrase")
        }

        // exec: tokenvault becomes the child (execve); its argv is the child's own.
        if let child = try? ws.spawn(["exec", account, "--", "sleep", "3"]) {
            var cmdline = ""
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                cmdline = child.proc("cmdline") ?? ""
                if cmdline.hasPrefix("sleep") || !child.isRunning { break }
                usleep(50_000)
            }
            let environ = child.proc("environ") ?? ""
            let result = child.closeStdinAndWait()
            report.check(
                cmdline.hasPrefix("sleep") && leaked(cmdline).isEmpty,
                "/proc/PID/cmdline of the exec'd child holds no canary", shortDescription(cmdline, limit: 80))
            report.check(
                environ.contains("WEBEX_ACCESS_TOKEN=") && !environ.contains("TOKENVAULT_PASSPHRASE"),
                "the child got the token in its environment (readable by its user only) and not the vault passphrase")
            report.check(result.code == 0, "the exec'd child exits 0", shortDescription(result.err, limit: 160))
        } else {
            report.check(false, "spawn exec")
        }
    }

    static func coreLine(_ limits: String) -> String {
        limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") }.map {
            String($0).replacingOccurrences(of: "  ", with: " ")
        } ?? "no limits read"
    }

    static func coreLimitIsZero(_ limits: String) -> Bool {
        let fields = coreLine(limits).split(separator: " ").map(String.init)
        // "Max core file size 0 0 bytes"
        return fields.count >= 6 && fields[4] == "0" && fields[5] == "0"
    }
}
