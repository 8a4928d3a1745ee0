import Foundation
import Testing
import TokenVaultTestSupport
import VaultCrypto
import VaultOAuth

@testable import TokenVaultCLI
@testable import TokenVaultCore

/// Records the waits a command asks for and returns at once: time is stepped, never slept.
final class SleepRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var waits: [Double] = []
    var onSleep: (@Sendable (Double) async -> Void)?
    var recorded: [Double] { lock.withLock { waits } }
    func sleep(_ seconds: Double) async {
        lock.withLock { waits.append(seconds) }
        await onSleep?(seconds)
    }
}

/// A terminal that answers prompts from a script and records what it was asked.
final class ScriptedTerminal: PassphraseTerminal, @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [String]
    private(set) var prompts: [String] = []
    init(_ answers: [String]) { self.answers = answers }
    var isAvailable: Bool { true }
    func readSecret(prompt: String) throws -> SecretBytes {
        try lock.withLock {
            prompts.append(prompt)
            guard !answers.isEmpty else { throw CLIError.passphraseSource("the test script ran out of answers") }
            return SecretBytes(copying: Array(answers.removeFirst().utf8))
        }
    }
}

/// Cheapest Argon2id parameters libsodium accepts: in-process tests must stay fast. The binary-level tests
/// use the real `--kdf interactive`.
let cheapKDF: @Sendable (KDFParameters.Level) -> KDFParameters = { _ in
    KDFParameters(opsLimit: 1, memLimit: 8192, salt: Random.bytes(KDFParameters.saltBytes))
}

struct RunResult {
    var code: Int32
    var out: String
    var err: String
}

/// Directories removed at the test process's exit.
enum TemporaryDirectories {
    nonisolated(unsafe) private static var paths: [String] = []
    private static let lock = NSLock()
    nonisolated(unsafe) private static var registered = false

    static func removeAtExit(_ path: String) {
        lock.withLock {
            paths.append(path)
            if !registered {
                registered = true
                atexit {
                    for path in TemporaryDirectories.drain() { try? FileManager.default.removeItem(atPath: path) }
                }
            }
        }
    }

    static func drain() -> [String] {
        lock.withLock {
            defer { paths = [] }
            return paths
        }
    }
}

/// One vault in a temporary directory and a way to run commands in-process against it.
final class Harness: @unchecked Sendable {
    let dir: String
    var vaultPath: String { dir + "/vault/vault.db" }
    var environment: [String: String]
    var now = Date(timeIntervalSince1970: 1_800_000_000)
    static let passphrase = "correct horse battery staple"

    init() {
        dir = NSTemporaryDirectory() + "tokenvault-cli-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        environment = ["HOME": dir, "TOKENVAULT_PASSPHRASE": Harness.passphrase]
        environment["TOKENVAULT_VAULT"] = vaultPath
    }

    /// Removed when the test process exits, not here: a command run in-process may leave a database connection to
    /// the vault alive a little longer (a task finishing), and SQLite tracks files by device and inode within a
    /// process. This was a first guess at the "disk I/O error" seen once in a while under full load; the cause
    /// found later was two tests closing a passphrase descriptor the command had already closed (see
    /// passphraseFromFileDescriptorWinsOverEnvironment).
    deinit { TemporaryDirectories.removeAtExit(dir) }

    let sleeps = SleepRecorder()
    /// The browser stand-in for in-process runs: gets the URL tokenvault opens.
    var browser: (@Sendable (URL) -> Bool)?
    /// Answers a paste prompt; gets the console so far (which holds the URL to open).
    var paste: (@Sendable (String) -> String?)?
    /// refresh-on-use's time limit while the token is valid: generous here (the in-process sandbox shares a loaded
    /// machine); the tests of that limit set the real 2 s.
    var refreshOnUseBudget: TimeInterval = 30
    /// How long a refresh waits for a lock another process holds (300 s in production).
    var lockTimeout: TimeInterval = 300
    /// What `exec` would have run: program, arguments, environment; returns the "exit status".
    var execute: (@Sendable (String, [String], [String: String]) throws -> Int32)?

    @discardableResult
    func run(
        _ arguments: [String], stdin: String = "", terminal: (any PassphraseTerminal)? = nil,
        environment overrides: [String: String?] = [:]
    ) async -> RunResult {
        var env = environment
        for (k, v) in overrides { env[k] = v }
        let console = CapturingConsole()
        let clock = now
        let input = Data(stdin.utf8)
        let sleeps = self.sleeps
        let browser = self.browser
        let paste = self.paste
        let execute =
            self.execute ?? { _, _, _ in
                Issue.record("exec ran without a test stand-in")
                return 127
            }
        let context = Context(
            environment: env, console: console, terminal: terminal, now: { clock },
            readStandardInput: { input }, kdfParameters: cheapKDF,
            makeTransport: { LoopbackOnlyTransport(tracer: $0) },
            sleep: { await sleeps.sleep($0) },
            openBrowser: { url, _ in browser?(url) ?? false },
            readLine: { _ in paste?(console.errors) },
            execute: execute, refreshOnUseBudget: refreshOnUseBudget, lockTimeout: lockTimeout)
        let code = await TokenVault.run(arguments: arguments, context: context)
        return RunResult(code: code, out: console.output, err: console.errors)
    }

    /// A vault with one integration ("webex1") and one account ("alice") holding a generated pair.
    static func withAccount(
        access: String = "AT_" + randomToken(), refresh: String = "RT_" + randomToken(),
        expiresIn: Int = 1_209_599
    ) async throws -> (Harness, access: String, refresh: String) {
        let h = Harness()
        try await h.expectOK(["init"])
        try await h.expectOK(
            [
                "add", "webex1", "--client-id", "Cabc", "--redirect-uri", "http://localhost:8765/callback",
                "--scopes", "spark:people_read spark:kms", "--client-secret-stdin",
                // Nothing listens there: tests that need a provider use SandboxHarness.
                "--api-base", "http://127.0.0.1:9/v1",
            ], stdin: "client-secret-" + randomToken())
        try await h.expectOK(
            ["import", "alice", "--integration", "webex1"],
            stdin: tokenJSON(access: access, refresh: refresh, expiresIn: expiresIn))
        return (h, access, refresh)
    }

    func expectOK(_ arguments: [String], stdin: String = "", sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let result = await run(arguments, stdin: stdin)
        #expect(result.code == 0, "\(arguments): \(result.err)", sourceLocation: sourceLocation)
        if result.code != 0 { throw CLIError.usage("setup step failed: \(arguments) \(result.err)") }
    }

    func vaultBytes() -> [String: Data] {
        var files: [String: Data] = [:]
        for suffix in ["", "-wal"] {
            files[suffix] = FileManager.default.contents(atPath: vaultPath + suffix)
        }
        return files
    }
}

func randomToken(_ length: Int = 40) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    return String((0..<length).map { _ in alphabet.randomElement()! })
}

extension Data {
    func contains(_ needle: String) -> Bool { range(of: Data(needle.utf8)) != nil }
}
