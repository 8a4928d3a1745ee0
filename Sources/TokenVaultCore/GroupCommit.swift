import Foundation
import Synchronization
import VaultStore

/// Commits the results of many concurrent refreshes together: whatever finished while the previous commit was
/// syncing goes into the next transaction. Each caller returns only once its own writes are on disk
/// (synchronous=FULL), so "the new pair is durably stored before anything else happens" still holds per account,
/// but `refresh-all` pays one fsync per batch instead of one per account.
public final class GroupCommitter: Sendable {
    public typealias Work = @Sendable (any VaultTransaction) throws -> Void

    private struct Item: Sendable {
        let work: Work
        let done: CheckedContinuation<Void, any Error>
    }

    private let database: any VaultStorage
    private struct Queue {
        var pending: [Item] = []
        var flushing = false
    }
    private let queue = Mutex(Queue())

    public init(database: any VaultStorage) {
        self.database = database
    }

    public func commit(_ work: @escaping Work) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            let startFlushing: Bool = queue.withLock { queue in
                queue.pending.append(Item(work: work, done: done))
                if queue.flushing { return false }
                queue.flushing = true
                return true
            }
            if startFlushing { Task { await self.flush() } }
        }
    }

    private func flush() async {
        while true {
            let batch: [Item] = queue.withLock { queue in
                let taken = queue.pending
                queue.pending = []
                if taken.isEmpty { queue.flushing = false }
                return taken
            }
            if batch.isEmpty { return }
            let works = batch.map(\.work)
            do {
                try await database.writeAsync { w in for work in works { try work(w) } }
                for item in batch { item.done.resume() }
            } catch {
                // One failing item rolls the batch back; the others must not fail with it.
                for item in batch {
                    do {
                        try await database.writeAsync { w in try item.work(w) }
                        item.done.resume()
                    } catch {
                        item.done.resume(throwing: error)
                    }
                }
            }
        }
    }
}
