import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// One vault with accounts of five providers (Webex, Google, Microsoft, GitHub, Slack), each against a
/// sandbox of its own shape and rotation, refreshed by one `refresh-all`; then SIGKILLed at random moments. Nothing
/// may be lost except what strict rotation makes unavoidable, and that must be proved (StrictLedger) and flagged.
enum MixedProviders {
    /// One provider of the mixed vault: its sandbox, its integration (named after the preset) and its accounts.
    final class Member {
        let preset: String
        let shape: ProviderShape
        let rotation: SandboxConfiguration.Rotation
        let sandbox: Sandbox
        var pairs: [MintedPair] = []
        /// Strict rotation only: what each run cost (see StrictLedger).
        var ledger: StrictLedger?
        var accounts: [String] { pairs.map(\.account) }
        var strict: Bool { rotation == .on }

        init(preset: String, shape: ProviderShape, scopes: [String], rotation: SandboxConfiguration.Rotation) throws {
            self.preset = preset
            self.shape = shape
            self.rotation = rotation
            var client = sandboxClient()
            client.scopes = scopes
            // Real-time clocks: the ledger tells stored answers apart by their expiry, which the vault computes from
            // its own clock; the imported pairs are minted due (five minutes left).
            sandbox = try Sandbox(
                shape: shape, client: client, rotation: rotation, latency: 0.02, realTime: true,
                accessTokenLifetime: MixedProviders.importedLifetime)
        }
    }

    /// A pair the sandbox minted for its client and sample user, with the lifetimes it gave it.
    struct MintedPair {
        var account: String
        var access: String
        var refresh: String
        var expiresIn: Int
        var refreshExpiresIn: Int
    }

    /// Access-token lifetime of the imported pairs: due, so the first run has every account to refresh.
    static let importedLifetime = 300
    static let command = ["refresh-all", "--json"]

    static func run(_ report: Report, _ options: Options) {
        let perProvider = options.full ? 60 : 20
        let kills = options.full ? 50 : 10
        report.part(
            "Mixed providers",
            "one vault, \(perProvider) accounts each of webex (rotation off), google (off), microsoft (lenient), github (strict) and slack (strict), each provider an in-process sandbox of its shape (latency 20 ms, real-time clock); imported access tokens lapsing within 5 minutes; one `\(command.joined(separator: " "))` (default --concurrency 8 and --skip-recent, pairs aged an hour before every run), then \(kills) SIGKILLs at random moments (3 in 4 after the run's first request) and a final run"
        )
        let partStart = Date()
        let ws = Workspace("mixed", tokenvault: options.tokenvault)
        defer { ws.remove() }
        var members: [Member] = []
        do {
            members = [
                try Member(preset: "webex", shape: .webex, scopes: ["spark:all", "spark:kms"], rotation: .off),
                try Member(preset: "google", shape: .google, scopes: ["openid", "email", "profile"], rotation: .off),
                try Member(
                    preset: "microsoft", shape: .microsoft,
                    scopes: ["offline_access", "openid", "profile", "email", "User.Read"], rotation: .lenient),
                try Member(preset: "github", shape: .github, scopes: [], rotation: .on),
                try Member(preset: "slack", shape: .slack, scopes: ["users:read", "chat:write"], rotation: .on),
            ]
        } catch {
            report.check(false, "mixed: five sandboxes start", "\(error)")
            return
        }
        defer { for m in members { m.sandbox.stop() } }
        if let problem = setUp(ws, members, perProvider: perProvider) {
            report.check(false, "mixed: vault set up", problem)
            return
        }
        let total = members.reduce(0) { $0 + $1.pairs.count }

        // Between runs: a strict sandbox answers each run with a lifetime an hour shorter (the ledger's marker),
        // the others with their shape's own lifetimes; and every pair is aged an hour, so that the default
        // --skip-recent 10m leaves none alone.
        var runProblems: [String] = []
        func beforeRun() {
            for m in members {
                let lifetime = m.ledger?.nextRunLifetime() ?? m.shape.defaults.accessTokenLifetime
                m.sandbox.update { $0.accessTokenLifetime = lifetime }
            }
            let aged = Python.query(ws.vault, "UPDATE account SET updated_at = updated_at - 3600")
            if aged.code != 0 { runProblems.append("pairs not aged: \(shortDescription(aged.err))") }
        }
        /// After each run: the ledgers' observations, no account of a provider without strict rotation flagged, and
        /// a kill's cost bounded by what can be in flight across all providers, not only per provider.
        func afterRun(killed: Bool, label: String) -> [String: StrictLedger.Observation] {
            guard members.allSatisfy({ $0.sandbox.settle() }) else {
                runProblems.append("\(label): a sandbox never finished its requests")
                return [:]
            }
            guard let listed = ws.listed() else {
                runProblems.append("\(label): list --json failed")
                return [:]
            }
            if listed.count != total {
                runProblems.append("\(label): list shows \(listed.count) accounts, not \(total)")
            }
            for m in members where !m.strict {
                if let bad = m.accounts.first(where: { listed[$0]?.state == "needs-reauth" }) {
                    runProblems.append("\(label): \(bad) (\(m.preset), no strict rotation) needs-reauth")
                }
            }
            var seen: [String: StrictLedger.Observation] = [:]
            for m in members where m.ledger != nil {
                seen[m.preset] = m.ledger!.observe(
                    killed: killed, chains: m.sandbox.rotationChains(m.pairs.map { ($0.account, $0.refresh) }),
                    listed: listed)
            }
            let lostNow = seen.values.reduce(0) { $0 + $1.lostNow.count }
            if lostNow > StrictLedger.concurrency {
                runProblems.append(
                    "\(label): one kill cost \(lostNow) pairs across providers, more than the \(StrictLedger.concurrency) refreshes in flight"
                )
            }
            return seen
        }
        var tokenRequests: Int { members.reduce(0) { $0 + $1.sandbox.tokenRequests } }

        // 1. One run, no kill: every account of every provider refreshed once. It also tells when a run's first
        //    request goes out and how long it takes, for the kills' timing.
        beforeRun()
        let requestsBefore = tokenRequests
        let start = Date()
        var firstRequest = 0.0
        var first = RunOutcome(code: -1, statuses: [:], stderr: "cannot spawn")
        if let child = try? ws.spawn(command) {
            while child.isRunning && tokenRequests == requestsBefore { usleep(2_000) }
            firstRequest = Date().timeIntervalSince(start)
            first = RunOutcome(child.closeStdinAndWait(timeout: 300))
        }
        let duration = max(Date().timeIntervalSince(start), 0.3)
        let refreshPhase = max(duration - firstRequest, 0.05)
        _ = afterRun(killed: false, label: "run 1")
        let perPreset = members.map { m in
            "\(m.preset) \(m.accounts.filter { first.statuses[$0] == "refreshed" }.count)/\(m.pairs.count)"
        }
        report.check(
            first.code == 0 && first.count("refreshed") == total,
            "mixed: one refresh-all refreshes all \(total) accounts (\(perPreset.joined(separator: ", "))) and exits 0 (\(String(format: "%.2f", duration)) s, first request after \(String(format: "%.2f", firstRequest)) s)",
            first.code == 0
                ? first.statuses.filter { $0.value != "refreshed" }.prefix(3).map { "\($0.key)=\($0.value)" }.joined(
                    separator: ", ")
                : "exit \(first.code): \(shortDescription(first.stderr))")
        var presented: [String] = []
        for m in members {
            let uses = m.pairs.map { m.sandbox.uses(ofRefreshToken: $0.refresh) }
            if !uses.allSatisfy({ $0 == 1 }) {
                presented.append(
                    "\(m.preset): "
                        + Dictionary(grouping: uses, by: { $0 }).sorted { $0.key < $1.key }.map {
                            "\($0.value.count)×\($0.key)"
                        }.joined(separator: ", "))
            }
        }
        report.check(
            presented.isEmpty,
            "mixed: each account's refresh token was presented exactly once at its sandbox (strict github and slack included)",
            presented.joined(separator: "; "))
        let imported = Set(members.flatMap { $0.pairs.map(\.access) })
        let firstTokens = tokensAccepted(ws, members, accounts: members.flatMap(\.accounts), stale: imported)
        report.check(
            firstTokens.isEmpty,
            "mixed: `token --min-valid 0` prints, for every one of the \(total) accounts, a new access token its provider's sandbox accepts",
            firstTokens.prefix(3).joined(separator: "; "))
        let firstAudit = ws.run(["audit", "--verify"])
        report.check(
            firstAudit.code == 0, "mixed: audit --verify ok after the first run",
            firstAudit.code == 0
                ? shortDescription(firstAudit.out) : "exit \(firstAudit.code): \(shortDescription(firstAudit.err))")

        // 2. Kills.
        var beforeRequests = 0
        var midRefresh = 0
        var finished = 0
        var made = 0
        var unexpectedExits: [String] = []
        var integrityProblems: [String] = []
        var costs: [String] = []
        for i in 0..<kills {
            // Strict rotation: a kill mid-refresh costs about what is in flight (up to 8 accounts, often 3 of a
            // strict provider). Keep a tenth of each strict provider's accounts (at least 2) unlost, so that the
            // verdict can still tell that no unflagged account was silently broken.
            if let m = members.first(where: { m in
                m.ledger.map { m.pairs.count - $0.lost.count < max(2, m.pairs.count / 10) } ?? false
            }) {
                report.note(
                    "mixed: stopped after \(i) kills: \(m.ledger!.lost.count) of \(m.pairs.count) \(m.preset) accounts lost their pair, the rest are kept for the verdict"
                )
                break
            }
            beforeRun()
            made += 1
            let requestsBefore = tokenRequests
            guard let child = try? ws.spawn(command) else {
                integrityProblems.append("kill \(i): cannot spawn")
                continue
            }
            if Double.random(in: 0..<1) < 0.75 {
                let deadline = Date().addingTimeInterval(10)
                while child.isRunning && tokenRequests == requestsBefore && Date() < deadline { usleep(2_000) }
                usleep(useconds_t(Double.random(in: 0...(refreshPhase * 1.05)) * 1_000_000))
            } else {
                usleep(useconds_t(Double.random(in: 0...duration) * 1_000_000))
            }
            child.signal(SIGKILL)
            let result = child.closeStdinAndWait()
            let killed = result.code == 128 + SIGKILL
            let seen = afterRun(killed: killed, label: "run \(i + 2)\(killed ? " (killed)" : "")")
            let cost = seen.sorted { $0.key < $1.key }.filter { !$0.value.lostNow.isEmpty }.map {
                "\($0.key) \($0.value.lostNow.count)"
            }
            if !cost.isEmpty { costs.append("kill \(i): lost \(cost.joined(separator: ", "))") }
            if !killed {
                finished += 1
                // 5: an earlier kill cost a strict account its pair, and this run found out.
                if ![0, 5].contains(result.code) {
                    unexpectedExits.append(
                        "run \(i + 2) exited \(result.code): \(shortDescription(result.err, limit: 160))")
                }
            } else if tokenRequests == requestsBefore {
                beforeRequests += 1
            } else {
                midRefresh += 1
            }
            let integrity = Python.integrityCheck(ws.vault)
            if integrity != "ok" { integrityProblems.append("kill \(i): \(integrity)") }
        }
        report.note(
            "mixed: \(midRefresh) kills landed while refreshes were in flight, \(beforeRequests) before the first request (KDF, start-up), \(finished) runs had finished"
        )
        report.check(midRefresh > 0, "mixed: kills landed mid-refresh (\(midRefresh) of \(made))")
        report.check(
            unexpectedExits.isEmpty, "mixed: every run that finished before its kill exited 0 or 5",
            unexpectedExits.prefix(3).joined(separator: "; "))
        report.check(
            integrityProblems.isEmpty,
            "mixed: PRAGMA integrity_check ok after every kill (\(made - integrityProblems.count)/\(made))",
            integrityProblems.prefix(3).joined(separator: "; "))

        // 3. A final run, and the verdict per provider.
        beforeRun()
        let final = RunOutcome(ws.run(command))
        _ = afterRun(killed: false, label: "final run")
        let states = ws.states() ?? [:]
        report.check(
            runProblems.isEmpty,
            "mixed: after every run, all \(total) accounts listed, none of webex, google or microsoft flagged needs-reauth, and no kill cost more than \(StrictLedger.concurrency) pairs across providers",
            "\(runProblems.count): " + runProblems.prefix(3).joined(separator: "; "))
        var lostAll = Set<String>()
        // An account whose answer a kill had left in the local journal is stored from it first: `fresh`.
        let replayed = final.stderr.contains("the local journal kept")
        let done = { (status: String?) in status == "refreshed" || (replayed && status == "fresh") }
        var figures: [String] = []
        for m in members {
            let flagged = Set(m.accounts.filter { states[$0] == "needs-reauth" })
            let refreshed = m.accounts.filter { done(final.statuses[$0]) }.count
            let counters = m.sandbox.counters
            let title = "mixed \(m.preset) (rotation \(m.rotation))"
            if let ledger = m.ledger {
                let lost = Set(ledger.lost.keys)
                lostAll.formUnion(lost)
                report.check(
                    ledger.problems.isEmpty,
                    "\(title): after every run, a kill cost only refreshes in flight at it (answered, not stored), a run not killed cost nothing, no refresh token sent twice",
                    "\(ledger.problems.count): " + ledger.problems.prefix(4).joined(separator: "; "))
                let others = m.accounts.filter { !lost.contains($0) && !done(final.statuses[$0]) }
                let wrongFlag = m.accounts.filter { lost.contains($0) != (final.statuses[$0] == "needs-reauth") }
                report.check(
                    flagged == lost && lost.count < m.pairs.count && others.isEmpty && wrongFlag.isEmpty,
                    "\(title): the final run refreshes \(refreshed) accounts and reports needs-reauth exactly for the \(lost.count) whose answer a kill lost (list flags \(flagged.count)); none silently broken",
                    "flagged, not lost: \(flagged.subtracting(lost).sorted().prefix(3)); lost, not flagged: \(lost.subtracting(flagged).sorted().prefix(3)); other: \(others.prefix(3).map { "\($0)=\(final.statuses[$0] ?? "missing")" })"
                )
                figures.append(
                    "\(m.preset) (strict): \(refreshed) refreshed in the final run, \(lost.count) lost by kills mid-refresh, \(flagged.count) flagged needs-reauth, \(counters.refreshGrants) refresh grants at its sandbox"
                )
            } else {
                report.check(
                    refreshed == m.pairs.count && flagged.isEmpty,
                    "\(title): the final run refreshes all \(m.pairs.count) accounts, none flagged",
                    m.accounts.filter { !done(final.statuses[$0]) }.prefix(3).map {
                        "\($0)=\(final.statuses[$0] ?? "missing")"
                    }.joined(separator: ", "))
                figures.append(
                    "\(m.preset) (rotation \(m.rotation)): \(refreshed) refreshed in the final run, 0 lost, \(flagged.count) flagged, \(counters.refreshGrants) refresh grants at its sandbox"
                        + (m.rotation == .lenient
                            ? " (\(counters.rotatedRefreshTokenReuses) of them with a replaced token, which lenient rotation accepts)"
                            : ""))
            }
        }
        report.check(
            final.code == (lostAll.isEmpty ? 0 : 5),
            "mixed: the final run exits \(lostAll.isEmpty ? 0 : 5) (\(lostAll.isEmpty ? "nothing lost" : "\(lostAll.count) accounts need re-authorization"))",
            "exit \(final.code): \(shortDescription(final.stderr))")
        let working = members.flatMap(\.accounts).filter { !lostAll.contains($0) }
        let finalTokens = tokensAccepted(ws, members, accounts: working, stale: [])
        report.check(
            finalTokens.isEmpty && !working.isEmpty,
            "mixed: `token --min-valid 0` of each of the \(working.count) accounts not lost prints an access token its provider's sandbox accepts",
            finalTokens.prefix(3).joined(separator: "; "))
        let audit = ws.run(["audit", "--verify"])
        report.check(
            audit.code == 0, "mixed: audit --verify ok at the end",
            audit.code == 0 ? shortDescription(audit.out) : "exit \(audit.code): \(shortDescription(audit.err))")
        let integrity = Python.integrityCheck(ws.vault)
        report.check(integrity == "ok", "mixed: integrity_check ok at the end", integrity)
        report.note(
            "mixed: what each costly kill cost — \(costs.isEmpty ? "none cost anything" : costs.joined(separator: "; "))"
        )
        report.note(
            "mixed: \(total) accounts (\(perProvider) per provider), \(made) kills (\(midRefresh) mid-refresh), \(made + 2) runs, \(since(partStart))"
        )
        for figure in figures { report.note("mixed \(figure)") }
    }

    /// `init`, one integration per provider (named after its preset, `--api-base` its sandbox), and each provider's
    /// pairs imported in one batch. Accounts are named `uNNN-PRESET` and share one time, so refresh-all's order
    /// (oldest pair, then name) interleaves the providers and a kill lands among refreshes of all five.
    static func setUp(_ ws: Workspace, _ members: [Member], perProvider: Int) -> String? {
        let initialised = ws.run(["init", "--kdf", "interactive"])
        if initialised.code != 0 { return "init exited \(initialised.code): \(shortDescription(initialised.err))" }
        for m in members {
            let client = m.sandbox.client
            var add = [
                "add", m.preset, "--provider", m.preset, "--client-id", client.clientId, "--redirect-uri",
                client.redirectURIs[0],
                "--api-base", m.sandbox.url, "--client-secret-stdin",
            ]
            if !client.scopes.isEmpty { add += ["--scopes", client.scopes.joined(separator: " ")] }
            let added = ws.run(add, stdin: client.clientSecret)
            if added.code != 0 { return "add \(m.preset) exited \(added.code): \(shortDescription(added.err))" }
            do {
                m.pairs = try m.sandbox.mintPairs(count: perProvider) { String(format: "u%03d-%@", $0, m.preset) }
            } catch {
                return "\(m.preset): sandbox pairs: \(error)"
            }
            if m.strict { m.ledger = StrictLedger(accounts: m.pairs.map { ($0.account, $0.refresh) }) }
            let lines = m.pairs.map { p in
                #"{"account":"\#(p.account)","access_token":"\#(p.access)","expires_in":\#(p.expiresIn),"refresh_token":"\#(p.refresh)","refresh_token_expires_in":\#(p.refreshExpiresIn),"token_type":"Bearer"}"#
            }
            let imported = ws.run(
                ["import", "--batch", "--integration", m.preset], stdin: lines.joined(separator: "\n") + "\n")
            if imported.code != 0 {
                return "import into \(m.preset) exited \(imported.code): \(shortDescription(imported.err))"
            }
        }
        // One import per integration gives each provider's pairs their own time, and refresh-all (oldest pair
        // first) would then take the providers one after another. The same time for all, as if imported at once,
        // leaves the order to the names.
        let sameTime = Python.query(ws.vault, "UPDATE account SET updated_at = (SELECT MIN(updated_at) FROM account)")
        if sameTime.code != 0 { return "pairs not given one time: \(shortDescription(sameTime.err))" }
        return nil
    }

    /// `token ACCOUNT --min-valid 0` (what refresh-all stored, never refreshed by `token` itself) for each account,
    /// two at a time; returns what went wrong: a failed run, a token its sandbox refuses, or one of `stale`.
    static func tokensAccepted(_ ws: Workspace, _ members: [Member], accounts: [String], stale: Set<String>) -> [String]
    {
        let sandboxOf = Dictionary(uniqueKeysWithValues: members.flatMap { m in m.accounts.map { ($0, m.sandbox) } })
        final class Work: @unchecked Sendable {
            let lock = NSLock()
            var queue: [String]
            var bad: [String] = []
            init(_ queue: [String]) { self.queue = queue }
        }
        let work = Work(accounts)
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            Thread {
                while let account = work.lock.withLock({ work.queue.popLast() }) {
                    let result = ws.run(["token", account, "--min-valid", "0"])
                    let token = result.out.trimmingCharacters(in: .whitespacesAndNewlines)
                    let problem: String? =
                        result.code != 0
                        ? "\(account): exit \(result.code) \(shortDescription(result.err, limit: 120))"
                        : stale.contains(token)
                            ? "\(account): still the imported access token"
                            : sandboxOf[account]?.isAccessTokenValid(token) != true
                                ? "\(account): refused by its sandbox" : nil
                    if let problem { work.lock.withLock { work.bad.append(problem) } }
                }
                group.leave()
            }.start()
        }
        group.wait()
        return work.bad.sorted()
    }

    /// What one `refresh-all --json` run ended with.
    struct RunOutcome {
        var code: Int32
        var statuses: [String: String]
        var stderr: String

        init(code: Int32, statuses: [String: String], stderr: String) {
            self.code = code
            self.statuses = statuses
            self.stderr = stderr
        }

        init(_ result: RunResult) {
            self.init(code: result.code, statuses: [:], stderr: result.err)
            if let data = result.out.data(using: .utf8),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let accounts = object["accounts"] as? [[String: Any]]
            {
                for a in accounts {
                    if let name = a["account"] as? String { statuses[name] = a["status"] as? String ?? "?" }
                }
            }
        }

        func count(_ status: String) -> Int { statuses.values.filter { $0 == status }.count }
    }
}

extension Sandbox {
    /// Pairs minted for this sandbox's client and sample user, one per account name, with the lifetimes the
    /// sandbox gave them (Microsoft's vary from token to token), for `import`.
    func mintPairs(count: Int, name: (Int) -> String) throws -> [MixedProviders.MintedPair] {
        let p = provider
        let clientId = client.clientId
        let minted = try blockingWait {
            var pairs: [[String]] = []
            let now = await p.now
            for _ in 0..<count {
                let pair = try await p.issueTokenPair(clientId: clientId, userId: SandboxConfiguration.User.sample.id)
                let access = await p.accessTokenExpiry(pair.accessToken) ?? now
                let refresh = await p.refreshTokenExpiry(pair.refreshToken) ?? now
                pairs.append([
                    pair.accessToken, pair.refreshToken, "\(Int(access.timeIntervalSince(now)))",
                    "\(Int(refresh.timeIntervalSince(now)))",
                ])
            }
            return pairs
        }
        return minted.enumerated().map { i, pair in
            MixedProviders.MintedPair(
                account: name(i + 1), access: pair[0], refresh: pair[1], expiresIn: Int(pair[2]) ?? 0,
                refreshExpiresIn: Int(pair[3]) ?? 0)
        }
    }
}
