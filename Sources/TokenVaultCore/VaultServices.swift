import Foundation
import VaultOAuth

/// Where a command's words go. stdout carries only what scripts consume (tokens, exports, JSON).
public protocol Console: Sendable {
    func out(_ text: String)
    func err(_ text: String)
    /// Whether stderr is a terminal (a live progress line is shown only then).
    var stderrIsTerminal: Bool { get }
}

extension Console {
    /// The one warning channel: `tokenvault: warning: MESSAGE` on stderr. Code below the CLI returns the message
    /// (or takes a console) and never writes the prefix itself.
    public func warn(_ message: String) {
        err("tokenvault: warning: \(message)\n")
    }
}

/// The side effects the core needs, handed in by the CLI (its `Context` holds them): the clock, waiting, the HTTP
/// transport and where warnings go.
public struct VaultServices: Sendable {
    public var console: any Console
    public var now: @Sendable () -> Date
    /// Waiting between retries. Tests step it instead of sleeping.
    public var sleep: @Sendable (Double) async throws -> Void
    /// The HTTP transport, given the `--verbose` tracer (nil when quiet).
    public var makeTransport: @Sendable (_ tracer: HTTPTracer?) -> any HTTPTransport
    /// Seconds refresh-on-use gives a provider while the stored access token is still valid.
    public var refreshOnUseBudget: TimeInterval
    /// Seconds a refresh waits for an account's lock held by another process before giving up (exit 1): 300 in
    /// production; tests of that give-up pass less.
    public var lockTimeout: TimeInterval
    /// The per-user directory of refresh journals (``RefreshJournal/base(environment:)``); nil keeps no journal
    /// and tries a failed store write once, as tokenvault did before the journal (tests without a home, and the
    /// fault suite's "before" runs).
    public var journalBase: String?
    /// Seconds a failing store is retried (with backoff) once it has failed, before a refresh gives up on it.
    public var storeWait: TimeInterval

    public init(
        console: any Console, now: @escaping @Sendable () -> Date,
        sleep: @escaping @Sendable (Double) async throws -> Void,
        makeTransport: @escaping @Sendable (HTTPTracer?) -> any HTTPTransport,
        refreshOnUseBudget: TimeInterval, lockTimeout: TimeInterval = 300,
        journalBase: String? = nil, storeWait: TimeInterval = 10
    ) {
        self.journalBase = journalBase
        self.storeWait = storeWait
        self.console = console
        self.now = now
        self.sleep = sleep
        self.makeTransport = makeTransport
        self.refreshOnUseBudget = refreshOnUseBudget
        self.lockTimeout = lockTimeout
    }
}

/// `--verbose` request traces (already redacted by the transport) on stderr.
public enum Trace {
    public static func tracer(_ console: any Console) -> HTTPTracer {
        { line in console.err("tokenvault: http: \(line)\n") }
    }
}
