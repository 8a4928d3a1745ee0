import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// SIGKILL of `refresh-all` at random moments: nothing lost, the file intact, the audit chain intact.
enum Kills {
    static func run(_ report: Report, _ options: Options) {
        let kills = options.full ? 200 : 20
        let accounts = options.full ? 48 : 16
        report.part(
            "Kills",
            "SIGKILL of `refresh-all --skip-recent 0 --concurrency 8` at \(kills) random moments per mode (3 in 4 within the refresh phase, after the run's first request; the rest anywhere, start-up and KDF included), \(accounts) accounts, sandbox latency 20 ms, sandbox clock in real time (so a 30 s grace really lapses)"
        )
        mode(
            report, "Webex mode (rotation off)", .off, kills: kills, accounts: accounts, strict: false,
            full: options.full, tokenvault: options.tokenvault)
        mode(
            report, "rotation, 30 s grace", .grace(seconds: 30), kills: kills, accounts: accounts, strict: false,
            full: options.full, tokenvault: options.tokenvault)
        // Strict rotation has three times the accounts, and stops killing while a quarter still hold a pair: a kill
        // may cost up to 8 accounts, and the verdict needs unflagged accounts left to say "none silently broken".
        mode(
            report, "strict rotation, no grace", .on, kills: options.full ? 100 : 10, accounts: accounts * 3,
            strict: true, full: options.full, tokenvault: options.tokenvault)
    }

    /// Outcome of one `refresh-all --json` run.
    struct RunReport {
        var code: Int32
        var statuses: [String: String] = [:]
        var stderr: String
        func count(_ status: String) -> Int { statuses.values.filter { $0 == status }.count }
    }

    static func refreshAll(_ ws: Workspace) -> RunReport {
        let result = ws.run(["refresh-all", "--skip-recent", "0", "--concurrency", "8", "--json"])
        var run = RunReport(code: result.code, stderr: result.err)
        if let data = result.out.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let accounts = object["accounts"] as? [[String: Any]]
        {
            for a in accounts {
                if let name = a["account"] as? String { run.statuses[name] = a["status"] as? String ?? "?" }
            }
        }
        return run
    }

    static func mode(
        _ report: Report, _ title: String, _ rotation: SandboxConfiguration.Rotation, kills: Int, accounts: Int,
        strict: Bool, full: Bool, tokenvault: String
    ) {
        print("  -- \(title): \(kills) kills")
        let ws = Workspace("kills", tokenvault: tokenvault)
        defer { ws.remove() }
        let sandbox: Sandbox
        do { sandbox = try Sandbox(rotation: rotation, latency: 0.02, realTime: true) } catch {
            report.check(false, "\(title): sandbox starts", "\(error)")
            return
        }
        defer { sandbox.stop() }
        if let problem = ws.setUp(apiBase: sandbox.url, client: sandbox.client) {
            report.check(false, "\(title): vault set up", problem)
            return
        }
        guard let pairs = try? sandbox.issuePairs(count: accounts, prefix: "k"), ws.importPairs(pairs).code == 0 else {
            report.check(false, "\(title): \(accounts) sandbox pairs imported")
            return
        }
        var integrityProblems: [String] = []
        var listProblems: [String] = []
        // Strict rotation: after every run, which answers the sandbox sent and which the vault stored (StrictLedger).
        var ledger = strict ? StrictLedger(accounts: pairs.map { ($0.account, $0.refresh) }) : nil
        func beforeRun() {
            guard let lifetime = ledger?.nextRunLifetime() else { return }
            sandbox.update { $0.accessTokenLifetime = lifetime }
        }
        func afterRun(killed: Bool) -> StrictLedger.Observation? {
            guard ledger != nil else { return nil }
            guard sandbox.settle() else {
                integrityProblems.append("the sandbox never finished its requests")
                return nil
            }
            guard let listed = ws.listed() else {
                listProblems.append("run \(ledger!.runs): list --json failed")
                return nil
            }
            return ledger!.observe(
                killed: killed, chains: sandbox.rotationChains(pairs.map { ($0.account, $0.refresh) }), listed: listed)
        }
        // One run without a kill tells how long a run takes and when its first request goes out, so that most kills
        // land while refreshes are in flight (the interesting part) and some anywhere, start-up and KDF included.
        let calibrationRequests = sandbox.tokenRequests
        let calibrationStart = Date()
        var firstRequest = 0.0
        var calibration = RunReport(code: -1, stderr: "cannot spawn")
        beforeRun()
        if let child = try? ws.spawn(["refresh-all", "--skip-recent", "0", "--concurrency", "8"]) {
            while child.isRunning && sandbox.tokenRequests == calibrationRequests { usleep(2_000) }
            firstRequest = Date().timeIntervalSince(calibrationStart)
            let result = child.closeStdinAndWait()
            calibration = RunReport(code: result.code, stderr: result.err)
        }
        _ = afterRun(killed: false)
        let duration = max(Date().timeIntervalSince(calibrationStart), 0.3)
        let refreshPhase = max(duration - firstRequest, 0.05)
        let refreshedInCalibration = sandbox.tokenRequests - calibrationRequests
        report.check(
            calibration.code == 0 && refreshedInCalibration == accounts,
            "\(title): an unkilled run refreshes all \(accounts) accounts (\(String(format: "%.2f", duration)) s, first request after \(String(format: "%.2f", firstRequest)) s)",
            calibration.code == 0
                ? "\(refreshedInCalibration) requests"
                : "exit \(calibration.code): \(shortDescription(calibration.stderr))")

        var beforeRequests = 0
        var midRefresh = 0
        var finished = 0
        // A run that ends before its kill must have ended as documented: 0, or 5 under strict rotation, where an
        // earlier kill may have cost an account its refresh token. A crash or exit 1/6/7 is a failure.
        var unexpectedExits: [String] = []
        let documentedExits: Set<Int32> = strict ? [0, 5] : [0]
        var made = 0  // kills attempted (strict mode may stop early)
        var costs: [String] = []  // strict: per kill that cost something, what it cost
        for i in 0..<kills {
            if let ledger, accounts - ledger.lost.count < accounts / 4 {
                report.note(
                    "\(title): stopped after \(i) kills: \(ledger.lost.count) of \(accounts) accounts lost their pair, the rest are kept for the verdict"
                )
                break
            }
            beforeRun()
            made += 1
            let requestsBefore = sandbox.tokenRequests
            guard let child = try? ws.spawn(["refresh-all", "--skip-recent", "0", "--concurrency", "8"]) else {
                integrityProblems.append("kill \(i): cannot spawn")
                continue
            }
            if Double.random(in: 0..<1) < 0.75 {
                // After this run's first request, anywhere in its refresh phase.
                let deadline = Date().addingTimeInterval(10)
                while child.isRunning && sandbox.tokenRequests == requestsBefore && Date() < deadline { usleep(2_000) }
                usleep(useconds_t(Double.random(in: 0...(refreshPhase * 1.05)) * 1_000_000))
            } else {
                usleep(useconds_t(Double.random(in: 0...duration) * 1_000_000))
            }
            child.signal(SIGKILL)
            let result = child.closeStdinAndWait()
            let killed = result.code == 128 + SIGKILL
            if let seen = afterRun(killed: killed) {
                if !seen.lostNow.isEmpty || !seen.flagged.isEmpty {
                    costs.append(
                        "kill \(i): \(seen.lostNow.count) lost of \(seen.answered) answered, \(seen.flagged.count) flagged in all"
                    )
                }
            }
            if !killed {
                finished += 1
                if !documentedExits.contains(result.code) { unexpectedExits.append("run \(i) exited \(result.code)") }
            } else if sandbox.tokenRequests == requestsBefore {
                beforeRequests += 1
            } else {
                midRefresh += 1
            }
            let integrity = Python.integrityCheck(ws.vault)
            if integrity != "ok" { integrityProblems.append("kill \(i): \(integrity)") }
            if full || i % 4 == 3 || i == kills - 1 {
                guard let states = ws.states() else {
                    listProblems.append("kill \(i): list --json failed")
                    continue
                }
                if states.count != accounts { listProblems.append("kill \(i): \(states.count) accounts listed") }
                if !strict, let bad = states.first(where: { $0.value == "needs-reauth" }) {
                    listProblems.append("kill \(i): \(bad.key) needs-reauth")
                }
            }
        }
        report.note(
            "\(title): \(midRefresh) kills landed while refreshes were in flight, \(beforeRequests) before the first request (KDF, start-up), \(finished) runs had finished"
        )
        report.check(midRefresh > 0, "\(title): kills landed mid-refresh (\(midRefresh) of \(made))")
        report.check(
            unexpectedExits.isEmpty,
            "\(title): every run that finished before its kill exited \(documentedExits.sorted().map(String.init).joined(separator: " or "))",
            unexpectedExits.prefix(5).joined(separator: "; "))
        report.check(
            integrityProblems.isEmpty,
            "\(title): PRAGMA integrity_check ok after every kill (\(made - integrityProblems.count)/\(made))",
            integrityProblems.prefix(3).joined(separator: "; "))
        report.check(
            listProblems.isEmpty,
            strict
                ? "\(title): list shows all \(accounts) accounts after kills"
                : "\(title): 0 accounts lost or flagged after any kill (list --json)",
            listProblems.prefix(3).joined(separator: "; "))
        let audit = ws.run(["audit", "--verify"])
        report.check(
            audit.code == 0, "\(title): audit --verify ok after the kills",
            audit.code == 0 ? shortDescription(audit.out) : "exit \(audit.code): \(shortDescription(audit.err))")

        beforeRun()
        let final = refreshAll(ws)
        let finalSeen = afterRun(killed: false)
        let states = ws.states() ?? [:]
        // An account whose answer a kill had left in the local journal is stored from it first: `fresh`.
        let replayed = final.stderr.contains("the local journal kept")
        if !strict {
            report.check(
                final.code == 0 && final.count("refreshed") + (replayed ? final.count("fresh") : 0) == accounts,
                "\(title): every account refreshes afterwards (\(final.count("refreshed"))/\(accounts))",
                final.code == 0 ? "" : "exit \(final.code): \(shortDescription(final.stderr))")
            tokensAccepted(report, title, ws, sandbox, accounts: pairs.map(\.account), full: full)
        } else {
            let flagged = Set(states.filter { $0.value == "needs-reauth" }.keys)
            let broken = final.statuses.filter {
                $0.value != "refreshed" && $0.value != "needs-reauth" && !(replayed && $0.value == "fresh")
            }
            let disagree = final.statuses.filter { ($0.value == "needs-reauth") != flagged.contains($0.key) }
            let lost = Set(ledger?.lost.keys.map { $0 } ?? [])
            report.note(
                "\(title): what each costly kill cost — \(costs.isEmpty ? "none cost anything" : costs.joined(separator: "; "))"
            )
            report.check(
                ledger.map { $0.problems.isEmpty } ?? false,
                "\(title): after every run, a kill cost only refreshes in flight at it (answered, not stored; at most \(StrictLedger.concurrency)), a run not killed cost nothing, and no refresh token was sent twice",
                ledger.map { "\($0.problems.count): " + $0.problems.prefix(4).joined(separator: "; ") } ?? "no ledger")
            report.check(
                finalSeen != nil && flagged == lost && lost.count < accounts,  // all flagged cannot pass
                "\(title): needs-reauth exactly for the \(lost.count) accounts whose answer a kill lost (flagged \(flagged.count)), and not for all \(accounts)",
                "flagged but not lost: \(flagged.subtracting(lost).sorted().prefix(3)); lost but not flagged: \(lost.subtracting(flagged).sorted().prefix(3))"
            )
            report.check(
                final.statuses.count == accounts && broken.isEmpty,
                "\(title): afterwards every account either refreshes or is flagged needs-reauth",
                broken.isEmpty
                    ? ""
                    : "\(broken.count) other: \(broken.prefix(3).map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) \(shortDescription(final.stderr))"
            )
            report.check(
                disagree.isEmpty, "\(title): list shows needs-reauth exactly for the accounts refresh-all reported",
                disagree.prefix(3).map(\.key).joined(separator: ", "))
            // Silently broken = not flagged, yet its stored refresh token no longer works: a second run shows it.
            beforeRun()
            let second = refreshAll(ws)
            _ = afterRun(killed: false)
            let working = pairs.map(\.account).filter { !flagged.contains($0) }
            let silent = working.filter { second.statuses[$0] != "refreshed" }
            report.check(
                second.statuses.count == accounts && silent.isEmpty && !working.isEmpty,
                "\(title): none silently broken: all \(working.count) unflagged accounts refresh again",
                silent.prefix(3).map { "\($0)=\(second.statuses[$0] ?? "missing")" }.joined(separator: ", "))
            tokensAccepted(report, title, ws, sandbox, accounts: working, full: full)
        }
        let integrity = Python.integrityCheck(ws.vault)
        report.check(integrity == "ok", "\(title): integrity_check ok at the end", integrity)
    }

    /// `token` for the accounts (a sample in --short) returns an access token the sandbox accepts.
    static func tokensAccepted(
        _ report: Report, _ title: String, _ ws: Workspace, _ sandbox: Sandbox, accounts: [String], full: Bool
    ) {
        let sample = full ? accounts : Array(accounts.shuffled().prefix(4))
        var bad: [String] = []
        for account in sample {
            let result = ws.run(["token", account])
            let token = result.out.trimmingCharacters(in: .whitespacesAndNewlines)
            if result.code != 0 || !sandbox.isAccessTokenValid(token) {
                bad.append("\(account): exit \(result.code) \(shortDescription(result.err, limit: 120))")
            }
        }
        report.check(
            bad.isEmpty,
            "\(title): `token` returns an access token the sandbox accepts (\(sample.count - bad.count)/\(sample.count) accounts\(full ? "" : ", sampled"))",
            bad.prefix(3).joined(separator: "; "))
    }
}
