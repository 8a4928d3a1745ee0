import Foundation
import Synchronization
import VaultStore

/// Whether the vault's store can be written, as one command's refreshes have found it.
///
/// The first failed write starts a wait of `wait` seconds. Meanwhile writes are retried with backoff and no refresh
/// token is sent (a refresh waits in ``waitUntilWritable(now:sleep:)``): a pair the provider hands out now might
/// have nowhere to go. A write that succeeds ends the wait; once the wait is over the store counts as down for the
/// rest of the command, and every refresh not yet sent is given up without contacting the provider.
public final class StoreHealth: Sendable {
    private struct State {
        var failingSince: Date?
        var lastFailure: (any Error)?
        /// A write failed (a full disk fails writes while reads work): only a write ends the wait.
        var writeFailed = false
        var down = false
    }

    private let state = Mutex(State())
    /// Seconds a failing store is given before it counts as down.
    public let wait: TimeInterval
    /// Off: every store operation is tried once and its error passed on (no journal to fall back on).
    let enabled: Bool

    public init(wait: TimeInterval, enabled: Bool = true) {
        self.wait = wait
        self.enabled = enabled
    }

    /// Whether `error` says the store could not be reached or written (a server down or restarting, a lost
    /// connection, a full or read-only disk), as opposed to something about one account.
    public static func isStoreFailure(_ error: any Error) -> Bool {
        switch error {
        case let e as StoreError:
            switch e {
            case .postgres, .database, .fileSystem, .lockFailed: return true
            default: return false
            }
        case let e as VaultError:
            if case .storeFailed = e { return true }
            return false
        default: return false
        }
    }

    /// Whether the store has been given up on.
    public var isDown: Bool { state.withLock { $0.down } }

    /// The error that made the store count as down, in words for every refresh not tried.
    public var downError: VaultError? {
        state.withLock { s in
            guard s.down else { return nil }
            return VaultError.storeFailed(
                "the vault's store failed for \(Int(wait)) s (\(s.lastFailure?.localizedDescription ?? "unknown error")); no refresh token was sent after that",
                hint:
                    "run the command again once the store works: pairs the provider already handed out wait in the local journal and are stored first"
            )
        }
    }

    func failed(_ error: any Error, now: Date, write: Bool = true) {
        state.withLock { s in
            if s.failingSince == nil { s.failingSince = now }
            if write { s.writeFailed = true }
            s.lastFailure = error
            if let since = s.failingSince, now.timeIntervalSince(since) >= wait { s.down = true }
        }
    }

    func succeeded() {
        state.withLock { s in
            guard !s.down else { return }
            s.failingSince = nil
            s.writeFailed = false
        }
    }

    /// A read worked: the wait ends unless a write failed.
    func readSucceeded() {
        state.withLock { s in
            guard !s.down, !s.writeFailed else { return }
            s.failingSince = nil
        }
    }

    /// Seconds left of the wait (nil when the store is down; the full wait when it is not failing).
    func remaining(now: Date) -> TimeInterval? {
        state.withLock { s in
            if s.down { return nil }
            guard let since = s.failingSince else { return wait }
            let left = wait - now.timeIntervalSince(since)
            if left <= 0 {
                s.down = true
                return nil
            }
            return left
        }
    }

    /// Returns once the store is not failing; throws once it is down.
    func waitUntilWritable(now: @Sendable () -> Date, sleep: @Sendable (Double) async throws -> Void) async throws {
        guard enabled else { return }
        while true {
            let (failing, left) = state.withLock { s in (s.failingSince != nil, s.down) }
            if left, let error = downError { throw error }
            if !failing { return }
            guard remaining(now: now()) != nil else { continue }
            try await sleep(0.1)
        }
    }

    /// Runs a store operation made before anything is sent (a lock, a read); a store failure is retried with
    /// backoff while the wait allows, then thrown.
    func noting<T>(
        now: @Sendable () -> Date, sleep: @Sendable (Double) async throws -> Void,
        _ operation: () async throws -> T
    ) async throws -> T {
        guard enabled else { return try await operation() }
        var delay = 0.25
        var failedOnce = false
        while true {
            do {
                let value = try await operation()
                if failedOnce { readSucceeded() }
                return value
            } catch  where Self.isStoreFailure(error) {
                failedOnce = true
                failed(error, now: now(), write: false)
                guard let left = remaining(now: now()), left > 0 else { throw downError ?? error }
                try? await sleep(min(delay, left))
                delay = min(delay * 2, 4)
            }
        }
    }
}
