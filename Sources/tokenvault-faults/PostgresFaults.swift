import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// One PostgreSQL vault refreshed by three refresh-all processes at once (three "hosts"), SIGKILLs of
/// one of them at random moments, and one restart of the PostgreSQL server in the middle of a round: nothing lost,
/// every run that was not killed ends with a documented exit status and says what went wrong in words, the next run
/// refreshes everything, and the audit chain the hosts wrote together verifies.
enum PostgresFaults {
    static func run(_ report: Report, _ options: Options) {
        let rounds = options.full ? 50 : 12
        let accounts = options.full ? 150 : 90
        report.part(
            "PostgreSQL",
            "\(rounds) rounds of three `refresh-all --skip-recent 0 --concurrency 8` processes on one PostgreSQL vault of \(accounts) accounts (sandbox latency 20 ms, refresh tokens rotating with a grace period), one of them SIGKILLed in each round (three rounds in four within 20 ms of its first request, the fourth at any moment), and the server restarted (pg_ctl restart -m fast) in the middle of round \(rounds / 2)"
        )
        guard PostgresServer.findBinaries() != nil else {
            report.check(false, "PostgreSQL: the server's binaries are installed (make deps installs postgresql)")
            return
        }
        let server: PostgresServer
        do { server = try PostgresServer.start() } catch {
            report.check(false, "PostgreSQL: a throwaway server starts", "\(error)")
            return
        }
        defer { server.stop() }
        let ws = Workspace("postgres", tokenvault: options.tokenvault)
        defer { ws.remove() }
        let sandbox: Sandbox
        do { sandbox = try Sandbox(rotation: .grace(seconds: 3600), latency: 0.02) } catch {
            report.check(false, "PostgreSQL: sandbox starts", "\(error)")
            return
        }
        defer { sandbox.stop() }
        guard let database = try? server.createDatabase(prefix: "faults") else {
            report.check(false, "PostgreSQL: a database is created")
            return
        }
        ws.environment["TOKENVAULT_VAULT"] = server.location(database: database)
        if let problem = ws.setUp(apiBase: sandbox.url, client: sandbox.client) {
            report.check(false, "PostgreSQL: vault set up", problem)
            return
        }
        guard let pairs = try? sandbox.issuePairs(count: accounts, prefix: "p"), ws.importPairs(pairs).code == 0 else {
            report.check(false, "PostgreSQL: \(accounts) sandbox pairs imported")
            return
        }
        let arguments = ["refresh-all", "--skip-recent", "0", "--concurrency", "8"]
        guard let sandboxPort = URLComponents(string: sandbox.url)?.port else {
            report.check(false, "PostgreSQL: the sandbox's port is known", sandbox.url)
            return
        }
        // Exit statuses a run may end with when it is not killed: 0, or, in the round of the restart, 1 (a lost
        // lock or connection) or 6 (a refresh that failed); never a crash, 7, or silence about why.
        var unexpected: [String] = []
        var unclear: [String] = []
        var killedMidRefresh = 0
        var restartRound: [Int32] = []
        var restartWords: Set<String> = []
        var listProblems: [String] = []
        for round in 0..<rounds {
            let requestsBefore = sandbox.tokenRequests
            let hosts = (0..<3).compactMap { _ in try? ws.spawn(arguments) }
            guard hosts.count == 3 else {
                unexpected.append("round \(round): cannot spawn")
                continue
            }
            let restarting = round == rounds / 2
            var restartError: String?
            if restarting {
                // Once the round's requests are flowing, the server goes away under all three.
                _ = waitUntil(timeout: 10) {
                    sandbox.tokenRequests > requestsBefore + 5 || hosts.allSatisfy { !$0.isRunning }
                }
                do { try server.restart() } catch { restartError = "\(error)" }
            }
            let victim = hosts.randomElement()!
            if round % 4 != 3 {
                // Three rounds in four: within 20 ms (one request's latency) of the victim's own first request,
                // seen as its connection to the provider, so the kill lands while that process has refreshes in
                // flight. (The provider's request count cannot say which process sent them: a victim still in its
                // KDF while the other two refreshed, or one that had already finished, was counted before.)
                _ = waitUntil(timeout: 10) { !victim.isRunning || isConnected(pid: victim.pid, toPort: sandboxPort) }
                usleep(useconds_t(Double.random(in: 0...0.02) * 1_000_000))
            } else {
                // The rest anywhere in the round, start-up and KDF included.
                usleep(useconds_t(Double.random(in: 0...0.4) * 1_000_000))
            }
            let victimRefreshing = victim.isRunning && isConnected(pid: victim.pid, toPort: sandboxPort)
            victim.signal(SIGKILL)
            for host in hosts {
                let result = host.closeStdinAndWait()
                if host === victim && result.code == 128 + SIGKILL {
                    if victimRefreshing { killedMidRefresh += 1 }
                    continue
                }
                if restarting {
                    restartRound.append(result.code)
                    if let line = result.err.split(separator: "\n").first(where: { $0.hasPrefix("tokenvault: ") }) {
                        restartWords.insert(String(line))
                    }
                }
                let allowed: Set<Int32> = restarting ? [0, 1, 6] : [0]
                if !allowed.contains(result.code) {
                    unexpected.append(
                        "round \(round): exit \(result.code): \(shortDescription(result.err, limit: 200))")
                } else if result.code != 0 && !result.err.contains("tokenvault: ") {
                    unclear.append(
                        "round \(round): exit \(result.code) without an error line: \(shortDescription(result.err, limit: 200))"
                    )
                }
                if result.err.contains("Fatal error") || result.err.contains("Stack dump") {
                    unexpected.append("round \(round): crashed")
                }
            }
            if let restartError { unexpected.append("round \(round): the restart failed: \(restartError)") }
            if round % 4 == 3 || round == rounds - 1 {
                guard let states = ws.states() else {
                    listProblems.append("round \(round): list --json failed")
                    continue
                }
                if states.count != accounts { listProblems.append("round \(round): \(states.count) accounts listed") }
                if let bad = states.first(where: { $0.value == "needs-reauth" }) {
                    listProblems.append("round \(round): \(bad.key) needs-reauth")
                }
            }
        }
        report.note(
            "PostgreSQL: \(killedMidRefresh) of \(rounds) kills landed while the killed process was refreshing (connected to the provider); the runs of the restart round ended \(restartRound.map(String.init).joined(separator: ", ")), saying: \(restartWords.sorted().prefix(3).map { shortDescription($0, limit: 200) }.joined(separator: " / "))"
        )
        report.check(
            killedMidRefresh >= rounds / 2,
            "PostgreSQL: at least half the kills landed while the killed process was refreshing (\(killedMidRefresh) of \(rounds))"
        )
        report.check(
            unexpected.isEmpty,
            "PostgreSQL: every run not killed exited 0 (0, 1 or 6 in the restart's round), none crashed",
            unexpected.prefix(4).joined(separator: "; "))
        report.check(
            unclear.isEmpty, "PostgreSQL: every failed run said why on stderr",
            unclear.prefix(3).joined(separator: "; "))
        report.check(
            listProblems.isEmpty,
            "PostgreSQL: all \(accounts) accounts listed, none lost or flagged, after the kills and the restart",
            listProblems.prefix(3).joined(separator: "; "))
        let audit = ws.run(["audit", "--verify"])
        report.check(
            audit.code == 0, "PostgreSQL: audit --verify ok on the chain three hosts appended to",
            audit.code == 0 ? shortDescription(audit.out) : "exit \(audit.code): \(shortDescription(audit.err))")
        let final = Kills.refreshAll(ws)
        report.check(
            final.code == 0 && final.count("refreshed") == accounts,
            "PostgreSQL: the next run refreshes every account (\(final.count("refreshed"))/\(accounts))",
            final.code == 0 ? "" : "exit \(final.code): \(shortDescription(final.stderr))")
        Kills.tokensAccepted(report, "PostgreSQL", ws, sandbox, accounts: pairs.map(\.account), full: options.full)
        let tampered =
            (try? server.psql(database, "SELECT count(*) FROM audit_entry WHERE event = 'tamper-detected'")) ?? "?"
        report.check(
            tampered == "0", "PostgreSQL: no tamper-detected entry (the hosts never forked the chain)", tampered)
    }
}
