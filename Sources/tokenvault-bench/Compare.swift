import Foundation
import ProviderSandbox
import TokenVaultLab

/// `BENCH_BASELINE=/path/to/other/tokenvault make bench`: the start-up figures (`--version`, `env` through the agent,
/// refresh-all's CPU per account at latency 0 and its wall ÷ ideal at 50 ms) of the release binary and of another
/// build, side by side in one run against one sandbox: interleaved, alternating which goes first, the same vaults and
/// the same agent. Prints a table and leaves BENCHMARKS.md alone: the A/B is for comparing builds on a noisy
/// machine, where figures from separate runs do not compare.
func compareWithBaseline(
    _ baseline: String, bench: Bench, sandbox: ProviderSandbox, apiBase: URL, runs: Int, nRefresh: Int,
    latency: Double, concurrency: Int
) async throws {
    let binaries = [("this build", bench.tokenvault), ("baseline", baseline)]
    log("A/B: \(bench.tokenvault) against \(baseline)")

    // The KDF's own time, for the ideal.
    let vault = try bench.makeVault("ab", level: "interactive", apiBase: apiBase)
    let floor = try bench.compileKDFFloor()
    let kdf = median(
        try (0..<5).map { _ in
            Double(
                try check(runMeasured(floor, [String(vault.ops), String(vault.mem)], environment: [:]), "kdf_floor").out
                    .trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan
        })
    _ = try await bench.seedFromSandbox(sandbox, vault: vault.vault, count: nRefresh, prefix: "acct")

    var results: [String: [String: [Double]]] = [:]
    func record(_ who: String, _ what: String, _ value: Double) {
        results[who, default: [:]][what, default: []].append(value)
    }
    /// Runs `body` for each binary, `rounds` times, alternating which goes first.
    func interleave(_ rounds: Int, _ body: (String, String) async throws -> Void) async throws {
        for i in 0..<rounds {
            for (who, binary) in i % 2 == 0 ? binaries : binaries.reversed() { try await body(who, binary) }
        }
    }

    // refresh-all with the KDF, at the sandbox's latency (one warm-up run each first).
    func refreshAll(_ binary: String, _ environment: [String: String]) async throws -> Measured {
        let before = await sandbox.counters.successfulRefreshes
        let m = try check(
            runMeasured(
                binary, ["refresh-all", "--concurrency", String(concurrency), "--skip-recent", "0"],
                environment: environment),
            "\(binary) refresh-all")
        let done = await sandbox.counters.successfulRefreshes - before
        guard done == nRefresh else { throw TestFailure("\(binary) refreshed \(done) of \(nRefresh)") }
        return m
    }
    let plain = bench.environment(vault: vault.vault)
    try await interleave(1) { _, binary in _ = try await refreshAll(binary, plain) }
    try await interleave(max(3, runs)) { who, binary in
        record(
            who, "refresh-all wall ÷ ideal, latency \(Int(latency * 1000)) ms", try await refreshAll(binary, plain).wall
        )
    }

    // Through one agent (started by this build): no KDF in the clients.
    let runtimeDir = bench.work + "/ab-run"
    try FileManager.default.createDirectory(
        atPath: runtimeDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    try check(
        runMeasured(
            bench.tokenvault, ["unlock", "--for", "2h"],
            environment: plain.merging(["XDG_RUNTIME_DIR": runtimeDir]) { $1 }),
        "tokenvault unlock")
    let agent = bench.workspace.environment(adding: [
        "TOKENVAULT_VAULT": vault.vault, "XDG_RUNTIME_DIR": runtimeDir, "TOKENVAULT_PASSPHRASE_FILE": nil,
    ])
    try await interleave(2) { _, binary in
        try check(runMeasured(binary, ["--version"], environment: agent), "--version")
        try check(runMeasured(binary, ["env", "acct-000000"], environment: agent), "env")
    }
    try await interleave(25) { who, binary in
        let v = try check(runMeasured(binary, ["--version"], environment: agent), "--version")
        record(who, "--version (ms)", v.wall * 1000)
        record(who, "--version CPU (ms)", v.cpu * 1000)
        let e = try check(runMeasured(binary, ["env", "acct-000000"], environment: agent), "env through the agent")
        guard e.out.contains("WEBEX_ACCESS_TOKEN=") else { throw TestFailure("env printed no export: \(e.err)") }
        record(who, "env through the agent (ms)", e.wall * 1000)
        record(who, "env through the agent CPU (ms)", e.cpu * 1000)
    }
    await sandbox.updateConfiguration { $0.latency = 0 }
    try await interleave(max(3, runs)) { who, binary in
        let m = try await refreshAll(binary, agent)
        record(who, "refresh-all CPU per account, latency 0 (ms)", m.cpu / Double(nRefresh) * 1000)
    }
    await sandbox.updateConfiguration { $0.latency = latency }
    try check(runMeasured(bench.tokenvault, ["lock"], environment: agent), "tokenvault lock")

    let ideal = Double(nRefresh) * latency / Double(concurrency) + kdf
    print(
        "\nA/B, medians (N=\(nRefresh), concurrency \(concurrency), ideal \(fmt(ideal, 2)) s with a \(fmt(kdf * 1000, 1)) ms KDF):"
    )
    print("| figure | this build | baseline | this ÷ baseline | runs each |\n|---|---|---|---|---|")
    for what in results["this build"]!.keys.sorted() {
        let a = results["this build"]![what]!
        let b = results["baseline"]![what]!
        var (ma, mb) = (median(a), median(b))
        if what.hasPrefix("refresh-all wall") { (ma, mb) = (ma / ideal, mb / ideal) }
        print("| \(what) | \(fmt(ma, 3)) | \(fmt(mb, 3)) | \(fmt(ma / mb, 3)) | \(a.count) |")
    }
}
