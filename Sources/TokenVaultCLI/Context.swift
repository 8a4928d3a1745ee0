import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth

/// Every side effect a command has goes through this value: output, the terminal, the clock, the environment,
/// standard input, the KDF cost. Tests build one whose unset parts fail loudly (swiftly's pattern), so no test
/// reaches a real terminal by accident.
public struct Context: Sendable {
    public var environment: [String: String]
    public var console: any Console
    /// The terminal for passphrase prompts; nil when there is none (cron, tests).
    public var terminal: (any PassphraseTerminal)?
    public var now: @Sendable () -> Date
    /// Reads all of standard input (import, --client-secret-stdin).
    public var readStandardInput: @Sendable () throws -> Data
    /// KDF cost for a new vault or a new passphrase at a given level. Production uses libsodium's levels;
    /// in-process tests pass cheap parameters here. Opening a vault always uses the parameters stored in it.
    public var kdfParameters: @Sendable (KDFParameters.Level) -> KDFParameters
    /// The HTTP transport, given the `--verbose` tracer (nil when quiet).
    public var makeTransport: @Sendable (_ tracer: HTTPTracer?) -> any HTTPTransport
    /// Waiting between retries and device-grant polls. Tests step it instead of sleeping.
    public var sleep: @Sendable (Double) async throws -> Void
    /// Randomness for `state` and PKCE verifiers.
    public var random: any RandomSource
    /// Opens a URL in the user's browser ($BROWSER, else xdg-open); false when none could be started.
    public var openBrowser: @Sendable (URL, _ environment: [String: String]) -> Bool
    /// Reads one line the user types or pastes (the terminal, else standard input); nil at end of input.
    public var readLine: @Sendable (_ prompt: String) -> String?
    /// Replaces this process with a program (execve); returns only in tests, with the program's exit status.
    public var execute:
        @Sendable (_ program: String, _ arguments: [String], _ environment: [String: String]) throws -> Int32
    /// Seconds refresh-on-use gives a provider, all attempts together, while the stored access token is still valid
    /// (about 2 s, then the stored token is handed out, so that `token` and `env` do not stall for half a minute
    /// offline). In-process tests, whose sandbox shares a loaded machine, pass more except where they test this limit.
    public var refreshOnUseBudget: TimeInterval
    /// Seconds a refresh waits for an account locked by another process before it gives up (exit 1).
    public var lockTimeout: TimeInterval

    public init(
        environment: [String: String], console: any Console, terminal: (any PassphraseTerminal)?,
        now: @escaping @Sendable () -> Date = { Date() },
        readStandardInput: @escaping @Sendable () throws -> Data,
        kdfParameters: @escaping @Sendable (KDFParameters.Level) -> KDFParameters = { KDFParameters.fresh($0) },
        makeTransport: @escaping @Sendable (HTTPTracer?) -> any HTTPTransport = {
            CurlTransport(version: TokenVault.version, timeout: 30, tracer: $0)
        },
        sleep: @escaping @Sendable (Double) async throws -> Void = { try await Task.sleep(for: .seconds($0)) },
        random: any RandomSource = SystemRandom(),
        openBrowser: @escaping @Sendable (URL, [String: String]) -> Bool = Browser.open,
        readLine: @escaping @Sendable (String) -> String? = { _ in nil },
        execute: @escaping @Sendable (String, [String], [String: String]) throws -> Int32 = ProgramRunner
            .replaceProcess,
        refreshOnUseBudget: TimeInterval = 2, lockTimeout: TimeInterval = 300
    ) {
        self.environment = environment
        self.console = console
        self.terminal = terminal
        self.now = now
        self.readStandardInput = readStandardInput
        self.kdfParameters = kdfParameters
        self.makeTransport = makeTransport
        self.sleep = sleep
        self.random = random
        self.openBrowser = openBrowser
        self.readLine = readLine
        self.execute = execute
        self.refreshOnUseBudget = refreshOnUseBudget
        self.lockTimeout = lockTimeout
    }

    /// The real process: stdout/stderr, /dev/tty, the system clock.
    public static func live() -> Context {
        Context(
            environment: ProcessInfo.processInfo.environment,
            console: StandardConsole(),
            terminal: DevTTY(),
            readStandardInput: { FileHandle.standardInput.readDataToEndOfFile() },
            readLine: DevTTY.readLine)
    }

    @TaskLocal static var current: Context?

    /// What the core needs of this context.
    var services: VaultServices {
        VaultServices(
            console: console, now: now, sleep: sleep, makeTransport: makeTransport,
            refreshOnUseBudget: refreshOnUseBudget, lockTimeout: lockTimeout,
            journalBase: RefreshJournal.base(environment: environment))
    }
}

public struct StandardConsole: Console {
    public init() {}
    public func out(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }
    public func err(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
    public var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
}
