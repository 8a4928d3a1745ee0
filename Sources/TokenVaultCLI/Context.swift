import Foundation
import VaultCrypto

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

    public init(environment: [String: String], console: any Console, terminal: (any PassphraseTerminal)?,
                now: @escaping @Sendable () -> Date = { Date() },
                readStandardInput: @escaping @Sendable () throws -> Data,
                kdfParameters: @escaping @Sendable (KDFParameters.Level) -> KDFParameters = { KDFParameters.fresh($0) }) {
        self.environment = environment
        self.console = console
        self.terminal = terminal
        self.now = now
        self.readStandardInput = readStandardInput
        self.kdfParameters = kdfParameters
    }

    /// The real process: stdout/stderr, /dev/tty, the system clock.
    public static func live() -> Context {
        Context(
            environment: ProcessInfo.processInfo.environment,
            console: StandardConsole(),
            terminal: DevTTY(),
            readStandardInput: { FileHandle.standardInput.readDataToEndOfFile() })
    }

    @TaskLocal static var current: Context?
}

/// Where a command's words go. stdout carries only what scripts consume (tokens, exports, JSON).
public protocol Console: Sendable {
    func out(_ text: String)
    func err(_ text: String)
    /// Whether stderr is a terminal (a live progress line is shown only then).
    var stderrIsTerminal: Bool { get }
}

public struct StandardConsole: Console {
    public init() {}
    public func out(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }
    public func err(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
    public var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
}

/// A console that keeps what was written, for tests and for the JSON of nested runs.
public final class CapturingConsole: Console, @unchecked Sendable {
    private let lock = NSLock()
    private var stdout = ""
    private var stderr = ""
    public init() {}
    public func out(_ text: String) { lock.withLock { stdout += text } }
    public func err(_ text: String) { lock.withLock { stderr += text } }
    public var stderrIsTerminal: Bool { false }
    public var output: String { lock.withLock { stdout } }
    public var errors: String { lock.withLock { stderr } }
}
