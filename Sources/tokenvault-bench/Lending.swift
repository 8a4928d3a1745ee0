import Foundation
import ProviderSandbox
import Synchronization
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

// The token endpoint (`tokenvault serve`): latency of GET /v1/accounts/alice/token for a token that needs no
// refresh, with 1 and 100 concurrent clients, and requests per second; beside the floor, a server in this process
// that answers the same bytes without looking anything up (accept, read the head, write, close), asked by the same
// client code. Each request is a new connection, as the endpoint closes every one.

/// One GET over a new Unix-socket connection; seconds from connect to the end of the answer, and whether it was a 200.
func timedGET(_ socket: String, _ path: String) -> (seconds: Double, ok: Bool) {
    let started = DispatchTime.now().uptimeNanoseconds
    guard let fd = connectUnixSocket(socket) else { return (0, false) }
    defer { close(fd) }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { break }
        received += chunk[0..<n]
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
    return (seconds, received.starts(with: Array("HTTP/1.1 200".utf8)))
}

/// `clients` threads (real ones, all started before any asks) asking `perClient` times each: every latency, and the
/// wall time of the whole. (DispatchQueue.concurrentPerform would run only as many at once as there are cores.)
func load(_ socket: String, _ path: String, clients: Int, perClient: Int) throws -> (latencies: [Double], wall: Double)
{
    let results = Mutex<(latencies: [Double], failures: Int)>(([], 0))
    let ready = DispatchSemaphore(value: 0)
    let go = DispatchSemaphore(value: 0)
    let done = DispatchGroup()
    for _ in 0..<clients {
        done.enter()
        let thread = Thread {
            ready.signal()
            go.wait()
            var mine: [Double] = []
            var failed = 0
            for _ in 0..<perClient {
                let (seconds, ok) = timedGET(socket, path)
                if ok { mine.append(seconds) } else { failed += 1 }
            }
            results.withLock {
                $0.latencies += mine
                $0.failures += failed
            }
            done.leave()
        }
        thread.stackSize = 256 << 10
        thread.start()
    }
    for _ in 0..<clients { ready.wait() }
    let started = Date()
    for _ in 0..<clients { go.signal() }
    done.wait()
    let wall = Date().timeIntervalSince(started)
    let (latencies, failures) = results.withLock { $0 }
    guard failures == 0 else { throw TestFailure("\(failures) requests to \(socket) failed") }
    return (latencies, wall)
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

/// The floor: answers every connection with `body` after reading its head, on a thread per connection as the
/// endpoint does, and nothing else.
final class StaticUnixServer: @unchecked Sendable {
    let path: String
    let fd: Int32
    let answer: [UInt8]

    init(path: String, body: String) throws {
        self.path = path
        answer = Array(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count + 1)\r\nConnection: close\r\n\r\n\(body)\n"
                .utf8)
        fd = try listenUnixSocket(path)
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                Thread.detachNewThread { [self] in
                    var head: [UInt8] = []
                    var chunk = [UInt8](repeating: 0, count: 2048)
                    while !head.suffix(4).elementsEqual("\r\n\r\n".utf8) {
                        let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                        guard n > 0 else { break }
                        head += chunk[0..<n]
                    }
                    _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    close(client)
                }
            }
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }
}

func lendingFigures(bench: Bench, sandbox: ProviderSandbox, apiBase: URL, quick: Bool, withAgentEnv: Bool = false)
    async throws -> [Figure]
{
    let made = try bench.makeVault("lending", level: "interactive", apiBase: apiBase)
    let pair = try await sandbox.issueTokenPair(clientId: bench.clientId, userId: SandboxConfiguration.User.sample.id)
    try check(
        bench.tokenvault(
            ["import", "alice", "--integration", "bench"], vault: made.vault,
            stdin:
                #"{"access_token":"\#(pair.accessToken)","expires_in":1209599,"refresh_token":"\#(pair.refreshToken)","token_type":"Bearer"}"#
        ),
        "tokenvault import alice")
    let socket = bench.work + "/lending/token.sock"
    let serve = try ChildProcess(
        bench.tokenvault, ["serve", "--socket", socket], environment: bench.environment(vault: made.vault),
        stdin: nil, newSession: true)
    defer {
        serve.signal(SIGTERM)
        _ = serve.waitForExit(timeout: 10)
    }
    _ = try serve.waitForStderrLine(timeout: 60) { $0.contains("lending tokens") }
    let path = "/v1/accounts/alice/token"
    guard timedGET(socket, path).ok else { throw TestFailure("serve did not answer") }
    let before = await sandbox.counters.refreshGrants

    let floorSocket = bench.work + "/lending/floor.sock"
    let body =
        #"{"access_token":"\#(pair.accessToken)","account":"alice","expires_at":"2026-12-21T00:00:00Z","expires_in":1209599,"integration":"bench","token_type":"Bearer"}"#
    let floor = try StaticUnixServer(path: floorSocket, body: body)
    defer { floor.stop() }

    var figures: [Figure] = []
    let single = quick ? 300 : 2_000
    let perClient = quick ? 5 : 20
    for (clients, each) in [(1, single), (100, perClient)] {
        // Warm-up, then the endpoint and the floor interleaved, the endpoint first.
        _ = try load(socket, path, clients: clients, perClient: max(1, each / 10))
        _ = try load(floorSocket, path, clients: clients, perClient: max(1, each / 10))
        let served = try load(socket, path, clients: clients, perClient: each)
        let floored = try load(floorSocket, path, clients: clients, perClient: each)
        let n = clients * each
        func ms(_ x: Double) -> String { fmt(x * 1000, 2) + " ms" }
        figures.append(
            Figure(
                section: "lending",
                name: "token endpoint, \(clients) client\(clients == 1 ? "" : "s"): p50 / p99",
                value: "\(ms(percentile(served.latencies, 0.5))) / \(ms(percentile(served.latencies, 0.99)))",
                target: "-", met: nil,
                detail:
                    "\(n) requests (a new connection each), \(fmt(Double(n) / served.wall, 0)) requests/s; the floor (a static answer from this process): p50 \(ms(percentile(floored.latencies, 0.5))), p99 \(ms(percentile(floored.latencies, 0.99))), \(fmt(Double(n) / floored.wall, 0)) requests/s"
            ))
        log(figures.last!.line + " — " + figures.last!.detail)
    }
    let refreshes = await sandbox.counters.refreshGrants - before
    guard refreshes == 0 else { throw TestFailure("the endpoint refreshed \(refreshes) times for a fresh token") }
    if withAgentEnv {
        figures.append(try agentEnvFigure(bench: bench, vault: made.vault, pairs: quick ? 7 : 25))
        log(figures.last!.line + " — " + figures.last!.detail)
    }
    return figures
}

/// `BENCH_ONLY=lending`: `env` through the agent ÷ `--version`, interleaved, as the full bench's startup rows
/// measure them (`make bench` has those rows already).
func agentEnvFigure(bench: Bench, vault: String, pairs: Int) throws -> Figure {
    let runtime = bench.work + "/lending-run"
    try FileManager.default.createDirectory(
        atPath: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    try check(
        runMeasured(
            bench.tokenvault, ["unlock", "--for", "1h"],
            environment: bench.environment(vault: vault).merging(["XDG_RUNTIME_DIR": runtime]) { $1 }),
        "tokenvault unlock")
    let environment = bench.workspace.environment(adding: [
        "TOKENVAULT_VAULT": vault, "XDG_RUNTIME_DIR": runtime, "TOKENVAULT_PASSPHRASE_FILE": nil,
    ])
    defer { _ = try? runMeasured(bench.tokenvault, ["lock"], environment: environment) }
    try check(runMeasured(bench.tokenvault, ["--version"], environment: environment), "--version")
    try check(runMeasured(bench.tokenvault, ["env", "alice"], environment: environment), "env through the agent")
    var versions: [Double] = []
    var envs: [Double] = []
    for i in 0..<pairs {
        func version() throws {
            versions.append(
                try check(runMeasured(bench.tokenvault, ["--version"], environment: environment), "--version").wall)
        }
        func env() throws {
            let m = try check(runMeasured(bench.tokenvault, ["env", "alice"], environment: environment), "env")
            guard m.out.contains("WEBEX_ACCESS_TOKEN=") else { throw TestFailure("env printed no export: \(m.err)") }
            envs.append(m.wall)
        }
        if i % 2 == 0 {
            try version()
            try env()
        } else {
            try env()
            try version()
        }
    }
    let ratio = median(envs) / median(versions)
    return Figure(
        section: "startup", name: "env through the agent ÷ --version",
        value: "\(fmt(ratio, 2)) (\(fmt(median(envs) * 1000, 1)) ms ÷ \(fmt(median(versions) * 1000, 1)) ms)",
        target: "≤ 1.2", met: ratio <= 1.2, detail: "median of \(pairs) interleaved pairs")
}
