import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

// `make bench`: drives the release `tokenvault` binary against an in-process provider-sandbox, prints a table and
// rewrites the measured part of BENCHMARKS.md. BENCH_QUICK=1 shrinks every N (for working on the bench itself).

let quick = ProcessInfo.processInfo.environment["BENCH_QUICK"] == "1"
let runs = Int(ProcessInfo.processInfo.environment["BENCH_RUNS"] ?? "") ?? 5
let latency = 0.050
let concurrency = 16
let nRefresh = quick ? 200 : 1_000
let nLarge = quick ? 1_000 : 10_000
let nScale = quick ? 5_000 : 100_000
let benchStarted = Date()

func log(_ text: String) {
    print("bench: \(text)")
    fflush(nil)
}
func fmt(_ x: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", x) }
func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

let root = FileManager.default.currentDirectoryPath
guard FileManager.default.fileExists(atPath: root + "/Package.swift") else {
    fatalError("run from the repository root (make bench does)")
}
// BENCH_ONLY=reports: the --json writer's A/B alone (in process: no tokenvault binary, no sandbox), printed and not
// written to BENCHMARKS.md.
let reportRuns = quick ? 5 : 15
if ProcessInfo.processInfo.environment["BENCH_ONLY"] == "reports" {
    for figure in try reportFigures(runs: reportRuns) { print("  " + figure.detail) }
    exit(0)
}

let bench = try Bench(root: root)
defer { try? FileManager.default.removeItem(atPath: bench.work) }
log("work directory \(bench.work)")

var figures: [Figure] = []
var notes: [String] = []

let sandbox = ProviderSandbox(
    configuration: SandboxConfiguration(
        clients: [
            .init(
                clientId: bench.clientId, clientSecret: bench.clientSecret, redirectURIs: [bench.redirectURI],
                scopes: ["spark:all"])
        ],
        latency: latency))
let apiBase = try await sandbox.start()
log("sandbox at \(apiBase), latency \(Int(latency * 1000)) ms on the token endpoint")

if let baseline = ProcessInfo.processInfo.environment["BENCH_BASELINE"] {
    try await compareWithBaseline(
        baseline, bench: bench, sandbox: sandbox, apiBase: apiBase, runs: runs, nRefresh: nRefresh,
        latency: latency, concurrency: concurrency)
    await sandbox.stop()
    try? FileManager.default.removeItem(atPath: bench.work)
    exit(0)
}

// BENCH_ONLY=lending: the token endpoint's rows alone, printed and not written to BENCHMARKS.md.
if ProcessInfo.processInfo.environment["BENCH_ONLY"] == "lending" {
    for figure in try await lendingFigures(
        bench: bench, sandbox: sandbox, apiBase: apiBase, quick: quick, withAgentEnv: true)
    {
        print("  " + figure.line)
        print("    " + figure.detail)
    }
    await sandbox.stop()
    try? FileManager.default.removeItem(atPath: bench.work)
    exit(0)
}

// BENCH_ONLY=postgres: the PostgreSQL rows alone, printed and not written to BENCHMARKS.md (for working on them).
if ProcessInfo.processInfo.environment["BENCH_ONLY"] == "postgres" {
    for figure in try await postgresFigures(
        bench: bench, sandbox: sandbox, apiBase: apiBase, latency: latency,
        concurrency: concurrency, n: nRefresh, runs: runs)
    {
        log(figure.line)
        print("  " + figure.detail)
    }
    await sandbox.stop()
    try? FileManager.default.removeItem(atPath: bench.work)
    exit(0)
}

// MARK: 2. env against the KDF floor (first: it needs no sandbox traffic, and gives the KDF time for the ideal)

let floor = try bench.compileKDFFloor()
var kdfSeconds: [String: Double] = [:]
for (level, pairs) in [("interactive", quick ? 5 : 15), ("moderate", quick ? 3 : 9)] {
    let made = try bench.makeVault("env-\(level)", level: level, apiBase: apiBase)
    let pair = try await sandbox.issueTokenPair(clientId: bench.clientId, userId: SandboxConfiguration.User.sample.id)
    try check(
        bench.tokenvault(
            ["import", "alice", "--integration", "bench"], vault: made.vault,
            stdin:
                #"{"access_token":"\#(pair.accessToken)","expires_in":1209599,"refresh_token":"\#(pair.refreshToken)","refresh_token_expires_in":7776000,"token_type":"Bearer"}"#
        ),
        "tokenvault import alice")
    let floorArgs = [String(made.ops), String(made.mem)]
    // One untimed run of each (page cache, lazy binding), then interleaved pairs, alternating which goes first.
    try check(bench.tokenvault(["env", "alice"], vault: made.vault), "tokenvault env alice")
    try check(runMeasured(floor, floorArgs, environment: [:]), "kdf_floor")
    var envWalls: [Double] = []
    var floorWalls: [Double] = []
    var kdfInside: [Double] = []
    var envRSS: [Int] = []
    for i in 0..<pairs {
        func runEnv() throws {
            let m = try check(bench.tokenvault(["env", "alice"], vault: made.vault), "tokenvault env alice")
            guard m.out.contains("WEBEX_ACCESS_TOKEN=") else { throw TestFailure("env printed no export: \(m.out)") }
            envWalls.append(m.wall)
            envRSS.append(m.peakRSS)
        }
        func runFloor() throws {
            let m = try check(runMeasured(floor, floorArgs, environment: [:]), "kdf_floor")
            floorWalls.append(m.wall)
            kdfInside.append(Double(m.out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan)
        }
        if i % 2 == 0 {
            try runEnv()
            try runFloor()
        } else {
            try runFloor()
            try runEnv()
        }
    }
    let ratio = median(envWalls) / median(floorWalls)
    kdfSeconds[level] = median(kdfInside)
    let target = level == "moderate" ? 1.05 : 1.15
    figures.append(
        Figure(
            section: "env",
            name: "env alice ÷ crypto_pwhash floor, \(level) (\(made.ops) passes, \(made.mem >> 20) MiB)",
            value: "\(fmt(ratio)) (\(fmt(median(envWalls) * 1000, 1)) ms ÷ \(fmt(median(floorWalls) * 1000, 1)) ms)",
            target: "≤ \(target)", met: ratio <= target,
            detail:
                "median of \(pairs) interleaved pairs; floor's own crypto_pwhash time \(fmt(median(kdfInside) * 1000, 1)) ms; env peak RSS \(mib(envRSS.max()!))"
        ))
    log(figures.last!.line)
}

// MARK: 1 + 4. refresh-all against the network limit, side by side with the Python script

let python = try bench.pythonVenv()
let script = root + "/Tests/Bench/refresh_script.py"

struct ScriptRun {
    var wall: Double
    var cpu: Double
    var rss: Int
    var sandboxCPU: Double
}

func runScript(accounts: String, results: String, expect n: Int) throws -> ScriptRun {
    let m = try check(
        runMeasured(python, [script, accounts, results], environment: ["PATH": "/usr/bin:/bin", "HOME": bench.work]),
        "refresh_script.py")
    guard let data = m.out.data(using: .utf8),
        let summary = try JSONSerialization.jsonObject(with: data) as? [String: Any],
        summary["refreshed"] as? Int == n, summary["failed"] as? Int == 0
    else {
        throw TestFailure("refresh_script.py did not refresh all \(n) accounts: \(m.out) \(m.err.suffix(1000))")
    }
    // The results file holds every new pair.
    let stored =
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: results))) as? [String: Any]
    guard (stored?["accounts"] as? [String: Any])?.count == n else {
        throw TestFailure("refresh_script.py stored fewer than \(n) pairs")
    }
    return ScriptRun(wall: m.wall, cpu: m.cpu, rss: m.peakRSS, sandboxCPU: m.sandboxCPU)
}

func runRefreshAll(vault: String, expect n: Int, extra: [String] = []) async throws -> Measured {
    let before = await sandbox.counters.successfulRefreshes
    let m = try check(
        bench.tokenvault(
            ["refresh-all", "--concurrency", String(concurrency), "--skip-recent", "0"] + extra, vault: vault),
        "tokenvault refresh-all")
    guard m.err.contains("refresh-all: \(n) refreshed, 0 already fresh, 0 need re-authorization, 0 failed") else {
        throw TestFailure("refresh-all did not refresh all \(n) accounts: \(m.err.suffix(1000))")
    }
    let done = await sandbox.counters.successfulRefreshes - before
    guard done == n else { throw TestFailure("the sandbox counted \(done) refreshes, expected \(n)") }
    return m
}

func writeAccounts(_ pairs: [(account: String, access: String, refresh: String)], to path: String) throws {
    let object: [String: Any] = [
        "token_url": apiBase.appendingPathComponent("access_token").absoluteString,
        "client_id": bench.clientId, "client_secret": bench.clientSecret, "concurrency": concurrency,
        "accounts": pairs.map { ["account": $0.account, "refresh_token": $0.refresh] },
    ]
    try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
}

let refreshVault = try bench.makeVault("refresh", level: "interactive", apiBase: apiBase)
let refreshPairs = try await bench.seedFromSandbox(sandbox, vault: refreshVault.vault, count: nRefresh, prefix: "acct")
let accountsFile = bench.work + "/accounts.json"
let resultsFile = bench.work + "/results.json"
try writeAccounts(refreshPairs, to: accountsFile)
log("seeded \(nRefresh) accounts; refresh-all and the Python script, \(runs) interleaved runs each")

// Webex does not rotate refresh tokens (the sandbox's default): every run refreshes the same accounts again.
// Warm-up (page cache, lock files). The sandbox's peak of requests in flight only grows: read it after each client.
_ = try await runRefreshAll(vault: refreshVault.vault, expect: nRefresh)
let peakAfterWarmup = await sandbox.counters.peakConcurrentRequests
_ = try runScript(accounts: accountsFile, results: resultsFile, expect: nRefresh)
let peakScript = await sandbox.counters.peakConcurrentRequests
var tvRuns: [Measured] = []
var pyRuns: [ScriptRun] = []
for i in 0..<runs {
    if i % 2 == 0 {
        tvRuns.append(try await runRefreshAll(vault: refreshVault.vault, expect: nRefresh))
        pyRuns.append(try runScript(accounts: accountsFile, results: resultsFile, expect: nRefresh))
    } else {
        pyRuns.append(try runScript(accounts: accountsFile, results: resultsFile, expect: nRefresh))
        tvRuns.append(try await runRefreshAll(vault: refreshVault.vault, expect: nRefresh))
    }
}
let kdfInteractive = kdfSeconds["interactive"]!
let ideal = Double(nRefresh) * latency / Double(concurrency) + kdfInteractive
let tvWall = median(tvRuns.map(\.wall))
let pyWall = median(pyRuns.map(\.wall))
figures.append(
    Figure(
        section: "refresh",
        name: "refresh-all, N=\(nRefresh), \(Int(latency * 1000)) ms, concurrency \(concurrency): wall ÷ ideal",
        value: "\(fmt(tvWall / ideal)) (\(fmt(tvWall, 2)) s ÷ \(fmt(ideal, 2)) s)", target: "≤ 1.15",
        met: tvWall / ideal <= 1.15,
        detail:
            "ideal = \(nRefresh) × \(Int(latency * 1000)) ms ÷ \(concurrency) + one interactive KDF (\(fmt(kdfInteractive * 1000, 1)) ms, measured above); median of \(runs); runs: \(tvRuns.map { fmt($0.wall, 2) }.joined(separator: ", ")) s; most requests in flight at the sandbox during a refresh-all run: \(peakAfterWarmup) (with the script: \(peakScript))"
    ))
log(figures.last!.line)
figures.append(
    Figure(
        section: "python", name: "refresh-all ÷ authlib+httpx script, N=\(nRefresh), concurrency \(concurrency)",
        value: "\(fmt(tvWall / pyWall)) (\(fmt(tvWall, 2)) s ÷ \(fmt(pyWall, 2)) s)", target: "< 1",
        met: tvWall / pyWall < 1,
        detail:
            "interleaved, median of \(runs); script runs: \(pyRuns.map { fmt($0.wall, 2) }.joined(separator: ", ")) s; script CPU \(fmt(median(pyRuns.map(\.cpu)), 2)) s, peak RSS \(mib(pyRuns.map(\.rss).max()!)); tokenvault CPU \(fmt(median(tvRuns.map(\.cpu)), 2)) s, peak RSS \(mib(tvRuns.map(\.peakRSS).max()!))"
    ))
log(figures.last!.line)

// MARK: The sandbox's own cost: latency 0, so the sandbox and the client are all there is.

await sandbox.updateConfiguration { $0.latency = 0 }
var tv0: [Measured] = []
var py0: [ScriptRun] = []
for _ in 0..<max(3, runs / 2) {
    tv0.append(try await runRefreshAll(vault: refreshVault.vault, expect: nRefresh))
    py0.append(try runScript(accounts: accountsFile, results: resultsFile, expect: nRefresh))
}
await sandbox.updateConfiguration { $0.latency = latency }
let sandboxCPUPerRequest = median(tv0.map(\.sandboxCPU) + py0.map(\.sandboxCPU)) / Double(nRefresh)
// The share at 50 ms is measured in the 50 ms runs themselves (the bench's own CPU during each refresh-all), not
// extrapolated from the latency-0 cost per request.
let sandboxShare = median(tvRuns.map { $0.sandboxCPU / $0.wall })
figures.append(
    Figure(
        section: "sandbox", name: "sandbox overhead (latency 0): CPU per token request",
        value: "\(fmt(sandboxCPUPerRequest * 1e6, 0)) µs", target: "not the bottleneck", met: sandboxShare < 0.5,
        detail:
            "at latency 0: refresh-all \(fmt(median(tv0.map(\.wall)), 2)) s (\(fmt(Double(nRefresh) / median(tv0.map(\.wall)), 0)) refreshes/s), script \(fmt(median(py0.map(\.wall)), 2)) s (\(fmt(Double(nRefresh) / median(py0.map(\.wall)), 0))/s); during the \(Int(latency * 1000)) ms refresh-all runs above the sandbox was busy \(fmt(sandboxShare * 100, 1)) % of one core (median of \(runs), its own CPU ÷ the run's wall)"
    ))
log(figures.last!.line)

// MARK: 5. Start fast, refresh cheaply: --version, env through the agent, CPU per refresh

// The agent of the refresh vault, in a private runtime directory; its commands get no passphrase at all.
let runtimeDir = bench.work + "/run"
try FileManager.default.createDirectory(
    atPath: runtimeDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
func agentEnvironment(_ vault: String) -> [String: String] {
    bench.workspace.environment(adding: [
        "TOKENVAULT_VAULT": vault, "XDG_RUNTIME_DIR": runtimeDir, "TOKENVAULT_PASSPHRASE_FILE": nil,
    ])
}
try check(
    runMeasured(
        bench.tokenvault, ["unlock", "--for", "2h"],
        environment: bench.environment(vault: refreshVault.vault).merging(["XDG_RUNTIME_DIR": runtimeDir]) { $1 }),
    "tokenvault unlock")
let agentEnv = agentEnvironment(refreshVault.vault)
let startupPairs = quick ? 7 : 25
try check(runMeasured(bench.tokenvault, ["--version"], environment: agentEnv), "tokenvault --version")
try check(runMeasured(bench.tokenvault, ["env", "acct-000000"], environment: agentEnv), "tokenvault env (agent)")
var versionWalls: [Double] = []
var agentEnvWalls: [Double] = []
for i in 0..<startupPairs {
    func version() throws {
        versionWalls.append(
            try check(runMeasured(bench.tokenvault, ["--version"], environment: agentEnv), "--version").wall)
    }
    func env() throws {
        let m = try check(
            runMeasured(bench.tokenvault, ["env", "acct-000000"], environment: agentEnv), "env through the agent")
        guard m.out.contains("WEBEX_ACCESS_TOKEN=") else {
            throw TestFailure("env printed no export: \(m.out) \(m.err)")
        }
        agentEnvWalls.append(m.wall)
    }
    if i % 2 == 0 {
        try version()
        try env()
    } else {
        try env()
        try version()
    }
}
let versionMedian = median(versionWalls)
let agentEnvMedian = median(agentEnvWalls)
figures.append(
    Figure(
        section: "startup", name: "tokenvault --version",
        value: "\(fmt(versionMedian * 1000, 1)) ms", target: "≤ 8 ms", met: versionMedian <= 0.008,
        detail:
            "median of \(startupPairs), interleaved with the row below; release build linked with --static-swift-stdlib"
    ))
log(figures.last!.line)
figures.append(
    Figure(
        section: "startup", name: "env through the agent (no passphrase, no KDF)",
        value: "\(fmt(agentEnvMedian * 1000, 1)) ms = \(fmt(agentEnvMedian / versionMedian, 2)) × --version",
        target: "≤ 10 ms and ≤ 1.5 × --version", met: agentEnvMedian <= 0.010 && agentEnvMedian / versionMedian <= 1.5,
        detail: "median of \(startupPairs) interleaved pairs"))
log(figures.last!.line)

// refresh-all at latency 0 through the agent: no KDF in the process, so its CPU is all refresh work.
await sandbox.updateConfiguration { $0.latency = 0 }
var cpuPerAccount: [Double] = []
for _ in 0..<max(3, runs / 2) {
    let before = await sandbox.counters.successfulRefreshes
    let m = try check(
        runMeasured(
            bench.tokenvault, ["refresh-all", "--concurrency", String(concurrency), "--skip-recent", "0"],
            environment: agentEnv),
        "refresh-all through the agent")
    let done = await sandbox.counters.successfulRefreshes - before
    guard done == nRefresh else {
        throw TestFailure("refresh-all through the agent refreshed \(done) of \(nRefresh): \(m.err.suffix(500))")
    }
    cpuPerAccount.append(m.cpu / Double(nRefresh))
}
try check(runMeasured(bench.tokenvault, ["lock"], environment: agentEnv), "tokenvault lock")
// The same runs the way cron runs them: the passphrase from a file, the key in the process (no agent round trips),
// and the one key derivation's CPU (the floor program's crypto_pwhash time, measured above) taken off.
var cpuPerAccountInProcess: [Double] = []
for _ in 0..<max(3, runs / 2) {
    let m = try await runRefreshAll(vault: refreshVault.vault, expect: nRefresh)
    cpuPerAccountInProcess.append((m.cpu - kdfInteractive) / Double(nRefresh))
}
await sandbox.updateConfiguration { $0.latency = latency }
figures.append(
    Figure(
        section: "refresh",
        name: "refresh-all CPU per account, latency 0, N=\(nRefresh) (KDF excluded: through the agent)",
        value: "\(fmt(median(cpuPerAccount) * 1000, 2)) ms", target: "≤ 0.5 ms", met: median(cpuPerAccount) <= 0.0005,
        detail:
            "user+system of the refresh-all process ÷ accounts, median of \(cpuPerAccount.count); the agent's own CPU is not in it"
    ))
log(figures.last!.line)
figures.append(
    Figure(
        section: "refresh",
        name:
            "refresh-all CPU per account, latency 0, N=\(nRefresh) (KDF excluded: passphrase file, its KDF's CPU subtracted)",
        value: "\(fmt(median(cpuPerAccountInProcess) * 1000, 2)) ms", target: "≤ 0.5 ms",
        met: median(cpuPerAccountInProcess) <= 0.0005,
        detail:
            "(user+system of the refresh-all process − the interactive KDF's \(fmt(kdfInteractive * 1000, 1)) ms) ÷ accounts, median of \(cpuPerAccountInProcess.count); the key held in the process, as under cron"
    ))
log(figures.last!.line)

// MARK: 1b. N=10,000: memory and CPU per account

let largeVault = try bench.makeVault("large", level: "interactive", apiBase: apiBase)
_ = try await bench.seedFromSandbox(sandbox, vault: largeVault.vault, count: nLarge, prefix: "big")
log("seeded \(nLarge) accounts; one refresh-all run")
let large = try await runRefreshAll(vault: largeVault.vault, expect: nLarge)
// A budget on the peak, not a claim about what the peak holds: the KDF's buffer is freed once the key is derived,
// so whether it is live at the moment of the peak is not known from ru_maxrss.
let rssBudget = largeVault.mem + 64 << 20
let idealLarge = Double(nLarge) * latency / Double(concurrency) + kdfInteractive
figures.append(
    Figure(
        section: "refresh", name: "refresh-all, N=\(nLarge): peak RSS",
        value: "\(mib(large.peakRSS))",
        target: "≤ KDF memlimit (interactive, \(largeVault.mem >> 20) MiB) + 64 MiB = \(mib(rssBudget))",
        met: large.peakRSS <= rssBudget,
        detail:
            "one run; wall \(fmt(large.wall, 1)) s = \(fmt(large.wall / idealLarge)) × ideal \(fmt(idealLarge, 1)) s"))
log(figures.last!.line)
figures.append(
    Figure(
        section: "refresh", name: "refresh-all, N=\(nLarge): CPU time per account",
        value: "\(fmt(large.cpu / Double(nLarge) * 1000, 2)) ms", target: "(reported)", met: nil,
        detail: "user+system \(fmt(large.cpu, 2)) s of the tokenvault process, KDF included"))
log(figures.last!.line)

// MARK: 6. A shared vault on PostgreSQL: one refresh-all on SQLite and on PostgreSQL, three hosts at once

for figure in try await postgresFigures(
    bench: bench, sandbox: sandbox, apiBase: apiBase, latency: latency,
    concurrency: concurrency, n: nRefresh, runs: runs)
{
    figures.append(figure)
    log(figure.line)
}

// MARK: 3. Scale: 100,000 accounts

let scaleVault = try bench.makeVault("scale", level: "interactive", apiBase: apiBase)
func fakeToken(_ length: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    return String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
}
// Generated lookalikes of Webex tokens (<64 chars>_<cluster>_<org uuid>), never real ones.
let org = "0a1b2c3d-0000-4000-8000-\(fakeToken(12).lowercased())"
let scalePairs = (0..<nScale).map { i in
    (
        account: String(format: "user-%06d", i), access: fakeToken(64) + "_P0A1_" + org,
        refresh: fakeToken(64) + "_P0A1_" + org
    )
}
let imported = try check(
    bench.tokenvault(
        ["import", "--batch", "--integration", "bench"], vault: scaleVault.vault,
        stdin: Bench.jsonl(scalePairs)), "tokenvault import --batch (scale)")
log("imported \(nScale) accounts in \(fmt(imported.wall, 1)) s (one KDF, one transaction)")
var listWalls: [Double] = []
var dueWalls: [Double] = []
var listRSS = 0
for _ in 0..<runs {
    let l = try check(bench.tokenvault(["list"], vault: scaleVault.vault, discardOutput: true), "tokenvault list")
    listWalls.append(l.wall)
    listRSS = max(listRSS, l.peakRSS)
    let d = try check(
        bench.tokenvault(["refresh-all", "--due-within", "1d"], vault: scaleVault.vault), "refresh-all --due-within 1d")
    guard d.err.contains("nothing to refresh") else {
        throw TestFailure("refresh-all --due-within 1d found accounts due: \(d.err.suffix(500))")
    }
    dueWalls.append(d.wall)
}
figures.append(
    Figure(
        section: "scale", name: "list, \(nScale) accounts (no passphrase)",
        value: "\(fmt(median(listWalls), 3)) s", target: "≤ 0.5 s", met: median(listWalls) <= 0.5,
        detail: "median of \(runs), stdout to /dev/null; peak RSS \(mib(listRSS))"))
log(figures.last!.line)
// This path reads plain metadata and never derives the key: no KDF in its target.
let dueLimit = 0.5
figures.append(
    Figure(
        section: "scale", name: "refresh-all --due-within 1d, \(nScale) accounts, none due",
        value: "\(fmt(median(dueWalls), 3)) s", target: "≤ 0.5 s (no KDF on this path)",
        met: median(dueWalls) <= dueLimit,
        detail: "median of \(runs)"))
log(figures.last!.line)
figures.append(
    Figure(
        section: "scale", name: "import --batch, \(nScale) accounts",
        value: "\(fmt(imported.wall, 1)) s", target: "≤ 10 s", met: imported.wall <= 10,
        detail: "one run (one KDF, one transaction); peak RSS \(mib(imported.peakRSS))"))
log(figures.last!.line)
let dbBytes = fileSize(scaleVault.vault)
let walBytes = fileSize(scaleVault.vault + "-wal")
figures.append(
    Figure(
        section: "scale", name: "vault file size per account",
        value: "\(fmt(Double(dbBytes) / Double(nScale), 0)) bytes", target: "(reported)", met: nil,
        detail:
            "vault.db \(mib(dbBytes)) for \(nScale) accounts (one audit entry each; -wal \(mib(walBytes)) after the import); import --batch took \(fmt(imported.wall, 1)) s, peak RSS \(mib(imported.peakRSS))"
    ))
log(figures.last!.line)

// MARK: 7. The token endpoint (`serve`): latency at 1 and 100 clients beside a static floor

figures += try await lendingFigures(bench: bench, sandbox: sandbox, apiBase: apiBase, quick: quick)

// MARK: 6. --json reports: JSONEncoder against the hand-written writer it replaced (in process)

figures += try reportFigures(runs: reportRuns)

await sandbox.stop()

// MARK: Report

let machine = Machine.read()
let command = quick ? "BENCH_QUICK=1 make bench" : "make bench"
let elapsed = Date().timeIntervalSince(benchStarted)
print("")
print(Report.table(figures))
print("machine: \(machine.summary); bench took \(fmt(elapsed / 60, 1)) min")
try Report.update(
    path: root + "/BENCHMARKS.md", figures: figures, machine: machine, command: command, runs: runs, elapsed: elapsed)
log("BENCHMARKS.md updated")
