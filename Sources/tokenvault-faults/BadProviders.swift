import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// How many times tokenvault tries a refresh that fails transiently (README, refresh-all: "up to 8 attempts").
let refreshAttempts = 8

/// Providers that answer badly: clear errors, retries exactly as documented (Refresher.retryPolicy: 8 attempts for 429,
/// 5xx and network failures, Retry-After honoured; every other answer final), and the stored pair untouched.
enum BadProviders {
    struct Scenario {
        var title: String
        var account: String
        var arrange: () -> Void
        var requests: () -> Int
        var exit: Int32
        var attempts: Int
        var words: [String]
        var minimumSeconds: Double = 0
        /// At least one of these must be in the error: the words that tell a user what happened.
        var saysWhatHappened: [String] = []
    }

    static func run(_ report: Report, _ options: Options) {
        report.part(
            "Bad providers",
            "`refresh ACCOUNT` against the sandbox's HTML, 503 and 429 faults and a raw-socket fake token endpoint (500, body cut off mid-way, truncated JSON, empty body\(options.full ? ", a stall past the 30 s HTTP timeout" : "")); after each: exit code, words, attempts counted by the server, and `token` still returns the stored, valid access token"
        )
        let ws = Workspace("providers", tokenvault: options.tokenvault)
        defer { ws.remove() }
        let sandbox: Sandbox
        let fake: FakeProvider
        do {
            sandbox = try Sandbox(rotation: .off)
            fake = try FakeProvider()
        } catch {
            report.check(false, "providers start", "\(error)")
            return
        }
        defer {
            sandbox.stop()
            fake.stop()
        }
        if let problem = ws.setUp(apiBase: sandbox.url, client: sandbox.client) {
            report.check(false, "vault set up", problem)
            return
        }
        guard ws.addIntegration("fake", apiBase: fake.url, client: sandbox.client).code == 0,
            let pairs = try? sandbox.issuePairs(count: 2, prefix: "bp"),
            ws.importPairs([pairs[0]], integration: "w").code == 0,
            ws.importPairs([pairs[1]], integration: "fake").code == 0
        else {
            report.check(false, "integrations and pairs set up")
            return
        }
        let real = pairs[0].account
        let faked = pairs[1].account
        var current = [real: pairs[0].access, faked: pairs[1].access]

        /// The account's stored pair is what it was: `token` returns the same access token, the sandbox accepts it,
        /// and list does not flag it.
        func unchanged(_ account: String) -> String? {
            let token = ws.run(["token", account])
            let printed = token.out.trimmingCharacters(in: .whitespacesAndNewlines)
            if token.code != 0 { return "token exit \(token.code): \(shortDescription(token.err, limit: 160))" }
            if printed != current[account] { return "token returned a different access token" }
            if !sandbox.isAccessTokenValid(printed) { return "the sandbox refuses the stored access token" }
            if let state = ws.states()?[account], state != "ok" { return "list shows \(state)" }
            return nil
        }

        let sandboxRequests = { sandbox.tokenRequests }
        let fakeRequests = { fake.requests }
        var scenarios = [
            Scenario(
                title: "sandbox answers 200 with an HTML page", account: real,
                arrange: { sandbox.update { $0.faults = .init(htmlGarbage: true) } }, requests: sandboxRequests,
                exit: 6, attempts: 1, words: ["HTML, not JSON"]),
            Scenario(
                title: "sandbox answers 503 to every request", account: real,
                arrange: { sandbox.update { $0.faults = .init(serviceUnavailableEvery: 1) } },
                requests: sandboxRequests,
                exit: 6, attempts: refreshAttempts, words: ["HTTP 503", "trackingId SANDBOX_"]),
            Scenario(
                title: "sandbox answers one 503, then a pair", account: real,
                arrange: {
                    let next = sandbox.tokenRequests + 1
                    sandbox.update { $0.faults = .init(serviceUnavailableEvery: next) }
                },
                requests: sandboxRequests, exit: 0, attempts: 2, words: []),
            Scenario(
                title: "sandbox answers one 429 with Retry-After: 2, then a pair", account: real,
                arrange: {
                    let next = sandbox.tokenRequests + 1
                    sandbox.update { $0.faults = .init(tooManyRequestsEvery: next, retryAfterSeconds: 2) }
                },
                requests: sandboxRequests, exit: 0, attempts: 2, words: [], minimumSeconds: 2),
            Scenario(
                title: "fake endpoint answers 500 with a Webex error body", account: faked,
                arrange: { fake.mode = .serverError }, requests: fakeRequests,
                exit: 6, attempts: refreshAttempts, words: ["HTTP 500", fake.trackingId]),
            Scenario(
                title: "fake endpoint cuts the body off mid-way (Content-Length 400, 30 bytes sent, closed)",
                account: faked,
                arrange: { fake.mode = .cutOffBody }, requests: fakeRequests,
                exit: 6, attempts: refreshAttempts, words: ["127.0.0.1"],
                saysWhatHappened: ["lost", "cut off", "incomplete", "closed", "ended early"]),
            Scenario(
                title: "fake endpoint answers 200 with truncated JSON", account: faked,
                arrange: { fake.mode = .truncatedJSON }, requests: fakeRequests,
                exit: 6, attempts: 1, words: ["cut off or malformed"]),
            Scenario(
                title: "fake endpoint answers 200 with an empty body", account: faked,
                arrange: { fake.mode = .emptyBody }, requests: fakeRequests,
                exit: 6, attempts: 1, words: ["empty body"]),
        ]
        if options.full {
            scenarios.append(
                Scenario(
                    title: "fake endpoint accepts and never answers (stall past the 30 s timeout)", account: faked,
                    arrange: { fake.mode = .stall(seconds: 45) }, requests: fakeRequests,
                    exit: 6, attempts: refreshAttempts, words: ["did not answer in time"],
                    minimumSeconds: Double(refreshAttempts) * 30))
        } else {
            report.note(
                "a stall past tokenvault's fixed 30 s HTTP timeout is in --full only: with \(refreshAttempts) attempts it takes about \(refreshAttempts / 2) minutes; tokenvault has no option (such as --http-timeout) to shorten it for a test"
            )
        }

        for scenario in scenarios {
            scenario.arrange()
            let before = scenario.requests()
            let start = Date()
            let result = ws.run(["refresh", scenario.account], timeout: 400)
            let seconds = Date().timeIntervalSince(start)
            let attempts = scenario.requests() - before
            sandbox.update { $0.faults = .init() }
            let missing = scenario.words.filter { !result.err.contains($0) }
            let said = result.err.split(separator: "\n").first.map(String.init) ?? ""
            report.check(
                result.code == scenario.exit && missing.isEmpty
                    && (scenario.exit == 0 || said.hasPrefix("tokenvault: error:")),
                "\(scenario.title): exit \(scenario.exit)\(scenario.words.isEmpty ? "" : ", error says \(scenario.words.map { "\"\($0)\"" }.joined(separator: " and "))")",
                "exit \(result.code) after \(String(format: "%.1f", seconds)) s: \(shortDescription(result.err, limit: 260))"
            )
            if !scenario.saysWhatHappened.isEmpty {
                report.check(
                    scenario.saysWhatHappened.contains { result.err.contains($0) },
                    "\(scenario.title): the error says what happened (one of \(scenario.saysWhatHappened.map { "\"\($0)\"" }.joined(separator: ", ")))",
                    said)
            }
            report.check(
                attempts == scenario.attempts && seconds >= scenario.minimumSeconds,
                "\(scenario.title): \(scenario.attempts) attempt\(scenario.attempts == 1 ? "" : "s")\(scenario.attempts == 1 ? " (not retried)" : "")\(scenario.minimumSeconds > 0 ? ", ≥ \(Int(scenario.minimumSeconds)) s" : "")",
                "\(attempts) attempts in \(String(format: "%.1f", seconds)) s")
            if scenario.exit == 0 {
                let token = ws.run(["token", scenario.account]).out.trimmingCharacters(in: .whitespacesAndNewlines)
                report.check(
                    token != current[scenario.account] && sandbox.isAccessTokenValid(token),
                    "\(scenario.title): the new pair is stored and works")
                current[scenario.account] = token
            } else {
                let problem = unchanged(scenario.account)
                report.check(
                    problem == nil, "\(scenario.title): nothing lost (same stored access token, accepted, state ok)",
                    problem ?? "")
            }
        }

        // After all that, the accounts still refresh against a healthy provider and the history is intact.
        let healthy = ws.run(["refresh", real])
        report.check(
            healthy.code == 0, "'\(real)' refreshes once the provider is healthy again",
            shortDescription(healthy.err, limit: 160))
        let audit = ws.run(["audit", "--verify"])
        report.check(
            audit.code == 0, "audit --verify ok after the failed attempts",
            shortDescription(audit.code == 0 ? audit.out : audit.err))
        let failedEntries = ws.run(["audit", "--json"]).out.components(separatedBy: "\"refresh-failed\"").count - 1
        let failing = scenarios.filter { $0.exit != 0 }.count
        report.check(
            failedEntries == failing,
            "each failed refresh is in the audit log (\(failedEntries) refresh-failed entries for \(failing) failures)")
    }
}
