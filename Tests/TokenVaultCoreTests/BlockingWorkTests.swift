import Foundation
import Testing

@testable import TokenVaultCore

/// `BlockingWork` keeps blocking calls off the cooperative pool: any number of them are in progress at once, where
/// on the pool (or on libdispatch's global queues, about one thread per core) they would wait for one another.
@Suite struct BlockingWorkTests {
    /// Lets callers through only once `count` of them are waiting in it together, or tells them it timed out.
    final class Barrier: @unchecked Sendable {
        private let condition = NSCondition()
        private var arrived = 0
        let count: Int
        init(_ count: Int) { self.count = count }

        func arriveAndWait(timeout: TimeInterval) -> Bool {
            condition.lock()
            defer { condition.unlock() }
            arrived += 1
            condition.broadcast()
            let deadline = Date().addingTimeInterval(timeout)
            while arrived < count {
                if !condition.wait(until: deadline) { return false }
            }
            return true
        }
    }

    @Test func blockingCallsDoNotWaitForOneAnother() async throws {
        // 16 calls that each block until all 16 are blocked together: with a thread per core (two here) none would
        // ever return true. (On the global queues this times out; measured.)
        let barrier = Barrier(16)
        let together = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<barrier.count {
                group.addTask { try await BlockingWork.run { barrier.arriveAndWait(timeout: 20) } }
            }
            return try await group.reduce(true) { $0 && $1 }
        }
        #expect(together)
    }

    final class Captured: Sendable {}

    /// What the work captured is let go of before the caller resumes: a command's vault (and its SQLite store) must
    /// close when the command lets go of it, not when a queue's thread gets round to it after the process exited.
    @Test func theWorkIsReleasedBeforeTheCallerResumes() async throws {
        for _ in 0..<200 {
            weak var released: Captured?
            do {
                let captured = Captured()
                released = captured
                try await BlockingWork.run { _ = captured }
            }
            #expect(released == nil)
            if released != nil { break }
        }
    }

    @Test func anErrorComesBackToTheCaller() async {
        struct Failure: Error {}
        await #expect(throws: Failure.self) { try await BlockingWork.run { () throws -> Int in throw Failure() } }
    }
}
