import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

// The machinery of the fault suite: a report of checks, a workspace per vault, children we can kill, and python3
// for the few things only an SQLite client can do (integrity_check, editing sealed bytes, holding the file open).

/// Every check the suite makes, printed as it is made; the run ends with `N passed, N failed`.
final class Report: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var passed = 0
    private(set) var failed = 0
    private(set) var failures: [String] = []

    func part(_ title: String, _ tried: String) {
        print("\n== \(title) ==")
        print("   tried: \(tried)")
        fflush(nil)
    }

    /// Records one check: `ok` or `FAIL`, one line, with the evidence.
    @discardableResult
    func check(_ ok: Bool, _ what: String, _ detail: @autoclosure () -> String = "") -> Bool {
        lock.withLock {
            if ok {
                passed += 1
            } else {
                failed += 1
                failures.append(what)
            }
        }
        let extra = detail()
        print("   \(ok ? "ok  " : "FAIL") \(what)\(extra.isEmpty ? "" : " — \(extra)")")
        fflush(nil)
        return ok
    }

    func note(_ text: String) {
        print("   note: \(text)")
        fflush(nil)
    }
}

/// What a finished child left.
typealias RunResult = ProcessResult

/// Test data only: random tokens in the sandbox's alphabet, never real ones.
func generatedSecret(_ prefix: String = "", length: Int = 40) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    return prefix + String((0..<length).map { _ in alphabet.randomElement()! })
}

func shortDescription(_ text: String, limit: Int = 300) -> String {
    let oneLine = text.replacingOccurrences(of: "\n", with: " | ").trimmingCharacters(in: .whitespaces)
    return oneLine.count > limit ? String(oneLine.prefix(limit)) + "…" : oneLine
}

/// Where the binaries are: `tokenvault` next to this program unless `--tokenvault` says otherwise.
enum Binaries {
    static var selfDirectory: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let path =
            n > 0
            ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        return URL(fileURLWithPath: path).deletingLastPathComponent().path
    }
}

/// A child we may kill at any moment, read /proc of while it runs, or feed standard input later.
typealias Child = ChildProcess

extension ChildProcess {
    /// - Parameter stdin: written then closed; nil keeps the pipe open until `send`/`closeStdin`.
    convenience init(_ executable: String, _ arguments: [String], environment: [String: String], stdin: String? = "")
        throws
    {
        try self.init(executable, arguments, environment: environment, stdin: stdin, newSession: false)
    }
}

/// One vault in a temporary directory (TokenVaultLab's workspace, the vault named by `TOKENVAULT_VAULT`), and
/// the suite's ways to drive the real binary on it.
extension Workspace {
    static let passphrase = "faults passphrase " + generatedSecret(length: 8)

    convenience init(_ name: String, tokenvault: String, nested: Bool = false) {
        self.init(
            prefix: "tokenvault-faults-\(name)", tokenvault: tokenvault,
            vault: .explicit(nested ? "a/b/vault.db" : "v/vault.db"),
            environment: ["TOKENVAULT_PASSPHRASE": Workspace.passphrase])
    }

    /// Runs the binary; a child that cannot be run or overstays `timeout` is a result with code -1.
    @discardableResult
    func run(_ arguments: [String], stdin: String = "", env extra: [String: String?] = [:], timeout: TimeInterval = 300)
        -> RunResult
    {
        do {
            return try tokenvault(arguments, stdin: stdin, environment: extra, timeout: timeout)
        } catch {
            return RunResult(code: -1, out: "", err: "\(error)")
        }
    }

    func spawn(_ arguments: [String], stdin: String? = "", env extra: [String: String?] = [:], umask000: Bool = false)
        throws -> Child
    {
        if umask000 {
            return try Child(
                "/bin/sh", ["-c", "umask 000; exec \"$0\" \"$@\"", tokenvault] + arguments,
                environment: environment(adding: extra), stdin: stdin)
        }
        return try start(arguments, stdin: stdin, environment: extra)
    }

    /// init + one integration pointing at `apiBase`. Returns the first failure's words, nil when all went well.
    func setUp(apiBase: String, client: SandboxConfiguration.Client, integration: String = "w", umask000: Bool = false)
        -> String?
    {
        for (args, input) in [
            (["init", "--kdf", "interactive"], ""),
            (
                [
                    "add", integration, "--client-id", client.clientId, "--redirect-uri", client.redirectURIs[0],
                    "--scopes", client.scopes.joined(separator: " "), "--api-base", apiBase, "--client-secret-stdin",
                ], client.clientSecret
            ),
        ] {
            let result: RunResult
            if umask000 {
                guard let child = try? spawn(args, stdin: input, umask000: true) else { return "cannot spawn" }
                result = child.closeStdinAndWait()
            } else {
                result = run(args, stdin: input)
            }
            if result.code != 0 { return "\(args[0]) exited \(result.code): \(shortDescription(result.err))" }
        }
        return nil
    }

    func addIntegration(_ name: String, apiBase: String, client: SandboxConfiguration.Client) -> RunResult {
        run(
            [
                "add", name, "--client-id", client.clientId, "--redirect-uri", client.redirectURIs[0],
                "--scopes", client.scopes.joined(separator: " "), "--api-base", apiBase, "--client-secret-stdin",
            ], stdin: client.clientSecret)
    }

    /// Imports sandbox-issued pairs in one batch.
    func importPairs(_ pairs: [(account: String, access: String, refresh: String)], integration: String = "w")
        -> RunResult
    {
        let lines = pairs.map { p in
            #"{"account":"\#(p.account)","access_token":"\#(p.access)","expires_in":1209599,"refresh_token":"\#(p.refresh)","refresh_token_expires_in":7776000,"token_type":"Bearer"}"#
        }
        return run(["import", "--batch", "--integration", integration], stdin: lines.joined(separator: "\n") + "\n")
    }

    /// `list --json`: account name -> state.
    func states() -> [String: String]? {
        let result = run(["list", "--json"])
        guard result.code == 0, let data = result.out.data(using: .utf8),
            let array = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { return nil }
        var states: [String: String] = [:]
        for object in array {
            if let name = object["account"] as? String { states[name] = object["state"] as? String ?? "?" }
        }
        return states
    }

    /// `list --json`: account name -> state and stored access-token expiry.
    func listed() -> [String: (state: String, accessExpiresAt: Date?)]? {
        let result = run(["list", "--json"])
        guard result.code == 0, let data = result.out.data(using: .utf8),
            let array = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { return nil }
        let iso = ISO8601DateFormatter()
        var listed: [String: (state: String, accessExpiresAt: Date?)] = [:]
        for object in array {
            guard let name = object["account"] as? String else { continue }
            listed[name] = (
                object["state"] as? String ?? "?",
                (object["access_expires_at"] as? String).flatMap { iso.date(from: $0) }
            )
        }
        return listed
    }

    /// The files of the vault and their bytes (vault.db, -wal, -shm), whichever exist.
    func vaultFiles() -> [(String, Data)] {
        ["", "-wal", "-shm"].compactMap { suffix in
            FileManager.default.contents(atPath: vault + suffix).map { (vault + suffix, $0) }
        }
    }
}

/// python3's sqlite3 module: the SQLite client every machine has, for what tokenvault itself must not offer.
enum Python {
    static let executable = MachineTools.find("python3")

    static func run(_ script: String, _ arguments: [String], timeout: TimeInterval = 120) -> RunResult {
        guard let python = executable else { return RunResult(code: -1, out: "", err: "python3 not found on PATH") }
        do {
            return try runProcess(
                python, ["-c", script] + arguments, environment: ProcessInfo.processInfo.environment, timeout: timeout)
        } catch {
            return RunResult(code: -1, out: "", err: "\(error)")
        }
    }

    /// `PRAGMA integrity_check` of the vault as tokenvault left it (WAL recovery included, as any opener does).
    static func integrityCheck(_ path: String) -> String {
        let result = run(
            """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], timeout=30)
            print('; '.join(r[0] for r in c.execute('PRAGMA integrity_check')))
            """, [path])
        return result.code == 0
            ? result.out.trimmingCharacters(in: .whitespacesAndNewlines)
            : "python failed: \(shortDescription(result.err))"
    }

    /// Runs SQL statements (with `?` bound to the following arguments) and prints the first column of each row.
    static func query(_ path: String, _ sql: String, _ parameters: [String] = []) -> RunResult {
        run(
            """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], timeout=30)
            for row in c.execute(sys.argv[2], sys.argv[3:]):
                print(row[0])
            c.commit()
            """, [path, sql] + parameters)
    }

    /// Moves everything into the main file and removes the WAL, so sealed bytes sit at one offset of vault.db.
    static func checkpoint(_ path: String) -> Bool {
        run(
            """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], timeout=30)
            c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
            c.close()
            """, [path]
        ).code == 0
    }

    /// A process that keeps the vault open (so -wal and -shm stay on disk with what tokenvault wrote), until killed.
    static func holdOpen(_ path: String) throws -> Child {
        guard let python = executable else { throw TestFailure("python3 not found") }
        let child = try Child(
            python,
            [
                "-c",
                """
                import sqlite3, sys, time
                c = sqlite3.connect(sys.argv[1], timeout=30)
                c.execute('SELECT COUNT(*) FROM account').fetchall()
                print('open', flush=True)
                sys.stdin.read()
                """, path,
            ], environment: ProcessInfo.processInfo.environment, stdin: nil)
        usleep(300_000)
        return child
    }
}

func hex(_ text: String) -> [UInt8]? {
    let chars = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
    guard chars.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    var i = 0
    while i < chars.count {
        guard let b = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
        bytes.append(b)
        i += 2
    }
    return bytes
}

extension Data {
    func contains(_ needle: String) -> Bool { range(of: Data(needle.utf8)) != nil }

    /// Every offset at which `needle` occurs.
    func offsets(of needle: [UInt8]) -> [Int] {
        var found: [Int] = []
        var start = startIndex
        let pattern = Data(needle)
        while let r = range(of: pattern, in: start..<endIndex) {
            found.append(r.lowerBound - startIndex)
            start = r.lowerBound + 1
        }
        return found
    }
}

/// Polls `condition` (a state, never a time) until it holds; false if it still does not after `timeout`, which
/// only bounds a failure and is far above any wait that passes.
func waitUntil(timeout: TimeInterval = 60, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline { return false }
        usleep(2_000)
    }
    return true
}

/// Milliseconds since `start`, for the report.
func since(_ start: Date) -> String { String(format: "%.1f s", Date().timeIntervalSince(start)) }

func sandboxClient() -> SandboxConfiguration.Client {
    SandboxConfiguration.Client(
        clientId: "faults-client-" + generatedSecret(length: 8), clientSecret: generatedSecret("cs-", length: 32),
        redirectURIs: ["http://127.0.0.1:8765/callback"], scopes: ["spark:all", "spark:kms"])
}

final class ResultBox<T>: @unchecked Sendable { var result: Result<T, any Error>? }

/// Runs async work from a plain thread and waits for it. The suite's own code runs on the main thread, never on
/// the cooperative pool, so blocking waits for children can never starve the in-process sandbox's server.
func blockingWait<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await operation()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// The in-process sandbox, driven synchronously from the suite's thread.
final class Sandbox: @unchecked Sendable {
    let provider: ProviderSandbox
    let client: SandboxConfiguration.Client
    /// The base URL for `--api-base`: `…/v1` for Webex, the origin for every other shape.
    let url: String
    /// The token endpoint as the sandbox counts it (`requests(to:)`).
    let tokenEndpoint: String

    /// - Parameters:
    ///   - rotation, accessTokenLifetime: nil takes the shape's default.
    init(
        shape: ProviderShape = .webex, client: SandboxConfiguration.Client = sandboxClient(),
        rotation: SandboxConfiguration.Rotation? = nil, latency: Double = 0, realTime: Bool = false,
        accessTokenLifetime: Int? = nil
    ) throws {
        let provider = ProviderSandbox(
            configuration: SandboxConfiguration(
                shape: shape, clients: [client], accessTokenLifetime: accessTokenLifetime,
                rotation: rotation, latency: latency),
            clockFollowsRealTime: realTime)
        self.client = client
        self.provider = provider
        tokenEndpoint =
            switch shape {
            case .webex: "POST /v1/access_token"
            case .google, .oidc: "POST /token"
            case .microsoft: "POST /{tenant}/oauth2/v2.0/token"
            case .github: "POST /login/oauth/access_token"
            case .slack: "POST /api/oauth.v2.access"
            }
        url = try blockingWait { try await provider.start().absoluteString }
    }

    func stop() {
        let p = provider
        _ = try? blockingWait { await p.stop() }
    }

    /// Requests that reached the token endpoint (faulted ones included).
    var tokenRequests: Int {
        let p = provider
        let endpoint = tokenEndpoint
        return (try? blockingWait { await p.requests(to: endpoint) }) ?? -1
    }
    var counters: SandboxCounters {
        let p = provider
        return (try? blockingWait { await p.counters }) ?? SandboxCounters()
    }

    func isAccessTokenValid(_ token: String) -> Bool {
        let p = provider
        return (try? blockingWait { await p.isAccessTokenValid(token) }) ?? false
    }

    func uses(ofRefreshToken token: String) -> Int {
        let p = provider
        return (try? blockingWait { await p.uses(ofRefreshToken: token) }) ?? -1
    }

    /// Each account's rotation chain, from the refresh token it was imported with.
    func rotationChains(_ accounts: [(name: String, refresh: String)]) -> [String: [RefreshTokenLink]] {
        let p = provider
        let firsts = accounts.map { [$0.name, $0.refresh] }
        return
            (try? blockingWait {
                var chains: [String: [RefreshTokenLink]] = [:]
                for a in firsts { chains[a[0]] = await p.rotationChain(from: a[1]) }
                return chains
            }) ?? [:]
    }

    /// Waits until the sandbox has answered every request it received (a killed client's included), so what it
    /// counts afterwards no longer changes. False if that takes over `timeout` (the latency is milliseconds).
    func settle(timeout: TimeInterval = 30) -> Bool {
        let p = provider
        let deadline = Date().addingTimeInterval(timeout)
        while ((try? blockingWait { await p.requestsInFlight }) ?? 0) > 0 {
            if Date() > deadline { return false }
            usleep(1_000)
        }
        return true
    }

    /// Holds every request until `openGate()` (see ProviderSandbox.closeGate).
    func closeGate() {
        let p = provider
        _ = try? blockingWait { await p.closeGate() }
    }
    func openGate() {
        let p = provider
        _ = try? blockingWait { await p.openGate() }
    }
    var requestsInFlight: Int {
        let p = provider
        return (try? blockingWait { await p.requestsInFlight }) ?? -1
    }

    func update(_ change: @escaping @Sendable (inout SandboxConfiguration) -> Void) {
        let p = provider
        _ = try? blockingWait { await p.updateConfiguration(change) }
    }

    /// Pairs issued by the sandbox for `count` accounts named `prefix-NNN`.
    func issuePairs(count: Int, prefix: String) throws -> [(account: String, access: String, refresh: String)] {
        let p = provider
        let clientId = client.clientId
        let issued = try blockingWait {
            var pairs: [[String]] = []
            for _ in 0..<count {
                let pair = try await p.issueTokenPair(clientId: clientId, userId: SandboxConfiguration.User.sample.id)
                pairs.append([pair.accessToken, pair.refreshToken])
            }
            return pairs
        }
        return issued.enumerated().map { (String(format: "%@-%03d", prefix, $0.offset), $0.element[0], $0.element[1]) }
    }
}

/// Whether process `pid` holds an established TCP connection to loopback port `port` (its sockets in
/// /proc/PID/fd matched against /proc/net/tcp and tcp6). A refresh-all process connects to the provider when its
/// first refresh goes out and keeps the connection while it refreshes, so this tells "this process is refreshing"
/// apart from "some process is", which the provider's request count cannot.
func isConnected(pid: pid_t, toPort port: Int) -> Bool {
    guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return false }
    var inodes: Set<Substring> = []
    for fd in fds {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
            target.hasPrefix("socket:[")
        else { continue }
        inodes.insert(target.dropFirst("socket:[".count).dropLast())
    }
    guard !inodes.isEmpty else { return false }
    let remote = ":" + String(format: "%04X", port)
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // Read to the end: procfs files report a size of 0, which String(contentsOfFile:) takes at its word.
        guard let data = try? FileHandle(forReadingFrom: URL(fileURLWithPath: table)).readToEnd(),
            let text = String(data: data, encoding: .utf8)
        else { continue }
        for line in text.split(separator: "\n").dropFirst() {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, fields[3] == "01", fields[2].hasSuffix(remote), inodes.contains(fields[9]) else {
                continue
            }
            return true
        }
    }
    return false
}
