import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// Two refresh-all runs and 20 env/token loops at once over 200 accounts, under strict rotation (so a refresh
/// token sent twice would show as a failure, not just in a counter).
enum Concurrency {
    static let busyWords = ["SQLITE_BUSY", "database is locked", "database table is locked"]

    static func run(_ report: Report, _ options: Options) {
        let accounts = 200
        let loops = 20
        let iterations = options.full ? 6 : 2
        report.part(
            "Concurrency",
            "2 × `refresh-all --concurrency 8` (default --skip-recent, pairs aged an hour) and \(loops) loops of `token`/`env` (\(iterations) runs each\(options.full ? ", and on until both refresh-alls end" : "")) at once over \(accounts) accounts; sandbox in strict rotation, latency \(options.full ? 20 : 5) ms"
        )
        let ws = Workspace("concurrency", tokenvault: options.tokenvault)
        defer { ws.remove() }
        let sandbox: Sandbox
        do { sandbox = try Sandbox(rotation: .on, latency: options.full ? 0.02 : 0.005) } catch {
            report.check(false, "sandbox starts", "\(error)")
            return
        }
        defer { sandbox.stop() }
        if let problem = ws.setUp(apiBase: sandbox.url, client: sandbox.client) {
            report.check(false, "vault set up", problem)
            return
        }
        guard let pairs = try? sandbox.issuePairs(count: accounts, prefix: "c"), ws.importPairs(pairs).code == 0 else {
            report.check(false, "\(accounts) sandbox pairs imported")
            return
        }
        // The imported pairs are "recent". Making them an hour old (updated_at is plain metadata) lets both runs
        // consider every account under the default --skip-recent of 10 minutes, with no sleep; and the verdict no
        // longer depends on when each of the 22 processes gets through its KDF: a pair the other run refreshed is
        // either changed since this run read it (re-read under the account's lock) or refreshed well within 10
        // minutes, however late this run starts.
        let aged = Python.query(ws.vault, "UPDATE account SET updated_at = updated_at - 3600")
        guard aged.code == 0 else {
            report.check(false, "imported pairs aged by an hour", shortDescription(aged.err))
            return
        }
        let grantsBefore = sandbox.counters.refreshGrants

        final class Collected: @unchecked Sendable {
            let lock = NSLock()
            var runs = 0
            var failures: [String] = []
            var busy: [String] = []
            var tokens: [(String, String)] = []
        }
        let collected = Collected()
        let refreshers = (0..<2).compactMap { _ in try? ws.spawn(["refresh-all", "--concurrency", "8", "--json"]) }
        let group = DispatchGroup()
        for loop in 0..<loops {
            group.enter()
            Thread {
                var done = 0
                while done < iterations || (options.full && refreshers.contains(where: \.isRunning)) {
                    let account = pairs.randomElement()!.account
                    let useEnv = (loop + done) % 2 == 0
                    let result = ws.run(useEnv ? ["env", account] : ["token", account])
                    done += 1
                    var token = result.out.trimmingCharacters(in: .whitespacesAndNewlines)
                    if useEnv, let quote = token.firstIndex(of: "'") {  // export WEBEX_ACCESS_TOKEN='…'
                        token = String(token[token.index(after: quote)...].dropLast())
                    }
                    collected.lock.withLock {
                        collected.runs += 1
                        if result.code != 0 {
                            collected.failures.append(
                                "\(useEnv ? "env" : "token") \(account): exit \(result.code) \(shortDescription(result.err, limit: 160))"
                            )
                        }
                        if busyWords.contains(where: { result.err.contains($0) }) {
                            collected.busy.append(shortDescription(result.err, limit: 160))
                        }
                        collected.tokens.append((account, token))
                    }
                }
                group.leave()
            }.start()
        }
        let results = refreshers.map { $0.closeStdinAndWait(timeout: 600) }
        group.wait()

        var refreshed = 0
        var fresh = 0
        for (i, result) in results.enumerated() {
            if busyWords.contains(where: { result.err.contains($0) }) {
                collected.busy.append("refresh-all \(i): \(shortDescription(result.err, limit: 160))")
            }
            if let data = result.out.data(using: .utf8),
                let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                refreshed += o["refreshed"] as? Int ?? 0
                fresh += o["fresh"] as? Int ?? 0
            }
        }
        report.check(
            results.count == 2 && results.allSatisfy { $0.code == 0 }, "both refresh-all runs exit 0",
            results.map { "exit \($0.code) \(shortDescription($0.err, limit: 200))" }.joined(separator: "; "))
        report.check(
            refreshed == accounts && refreshed + fresh == 2 * accounts,
            "between them the two runs refreshed each account once (\(refreshed) refreshed, \(fresh) left as fresh by the other run)"
        )
        let uses = pairs.map { sandbox.uses(ofRefreshToken: $0.refresh) }
        let counters = sandbox.counters
        report.check(
            uses.allSatisfy { $0 == 1 }, "each of the \(accounts) refresh tokens was used exactly once (sandbox count)",
            "uses: \(Dictionary(grouping: uses, by: { $0 }).mapValues(\.count).sorted { $0.key < $1.key }.map { "\($0.value)×\($0.key)" }.joined(separator: ", "))"
        )
        report.check(
            counters.refreshGrants - grantsBefore == accounts && counters.rotatedRefreshTokenReuses == 0,
            "the sandbox saw \(counters.refreshGrants - grantsBefore) refresh grants (want \(accounts)) and \(counters.rotatedRefreshTokenReuses) reuses of rotated tokens (want 0)"
        )
        report.check(
            collected.busy.isEmpty,
            "0 SQLITE_BUSY / \"database is locked\" in any stderr (\(collected.runs + 2) processes)",
            collected.busy.prefix(3).joined(separator: "; "))
        report.check(
            collected.failures.isEmpty, "0 failures among \(collected.runs) env/token runs",
            "\(collected.failures.count): " + collected.failures.prefix(3).joined(separator: "; "))
        let rejected = collected.tokens.filter { !$0.1.isEmpty && !sandbox.isAccessTokenValid($0.1) }
        report.check(
            rejected.isEmpty && collected.tokens.allSatisfy { !$0.1.isEmpty },
            "every token env/token printed is accepted by the sandbox (\(collected.tokens.count - rejected.count)/\(collected.tokens.count))",
            rejected.prefix(3).map(\.0).joined(separator: ", "))
        let audit = ws.run(["audit", "--verify"])
        report.check(
            audit.code == 0, "audit --verify ok afterwards",
            audit.code == 0 ? shortDescription(audit.out) : shortDescription(audit.err))
        let integrity = Python.integrityCheck(ws.vault)
        report.check(integrity == "ok", "integrity_check ok afterwards", integrity)
    }
}
