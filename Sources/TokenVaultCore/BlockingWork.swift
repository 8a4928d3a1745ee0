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
        let once = Once(work)
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue(label: "tokenvault.blocking-work").async { continuation.resume(with: once.run()) }
        }
    }

    /// The work, let go of before the caller resumes: what it captured (a vault and its store) is released by the
    /// caller's own references, not later by the queue's thread. A SQLite store closed when a command's last reference
    /// goes, before the process exits, leaves no -wal and -shm files behind.
    private final class Once<T>: @unchecked Sendable {
        private var work: (() throws -> T)?
        init(_ work: @escaping () throws -> T) { self.work = work }

        /// Called once, on the queue's thread, before the continuation is resumed.
        func run() -> Result<T, any Error> {
            guard let work else { preconditionFailure("BlockingWork ran twice") }
            self.work = nil
            return Result { try work() }
        }
    }
}
