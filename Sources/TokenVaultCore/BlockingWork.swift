import Dispatch

/// Runs blocking work (a store call: SQLite waiting for its lock or syncing, a PostgreSQL round trip; a journal's
/// fsync) on a thread outside Swift's cooperative pool while the calling task suspends. That pool has one thread
/// per core (two on a small machine): a thread parked in a blocking call there stalls every other task of the
/// process, in-process servers and concurrent refreshes included.
public enum BlockingWork {
    /// Each call gets a serial queue of its own: libdispatch targets serial queues at its overcommitting root
    /// queue, which starts a thread when every thread it has is busy, so blocking work never waits behind other
    /// blocking work (the concurrent global queues keep about one thread per core, like the cooperative pool).
    /// Its threads are pooled: a call costs a queue object and a hop, tens of microseconds.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue(label: "tokenvault.blocking-work").async { continuation.resume(with: Result { try work() }) }
        }
    }
}
