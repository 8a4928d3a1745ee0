import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn`: its standard input from /dev/null, its output discarded (or sent
/// to our standard error), chosen descriptors of ours handed on under chosen numbers, and an environment given
/// in full. Its exit is awaited without holding a thread of Swift's cooperative pool: a thread of its own blocks
/// in `waitpid`, and waiters are resumed from there.
///
/// The caller decides which of its descriptors the child must not inherit (mark them close-on-exec first).
public final class SpawnedProcess: Sendable {
    public let pid: pid_t

    /// Where the child's standard output and error go.
    public enum Output: Sendable {
        /// Both to /dev/null, so that a chatty program writes over no prompt and into no `$(…)`.
        case discarded
        /// Output to our standard error, which the child shares.
        case toStandardError
        /// Standard input, output and error all ours (`exec --serve`: the command is the user's program).
        case inherited
    }

    /// How a child ended.
    public enum Exit: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
        /// `waitpid` failed: the child is not ours to wait for (already reaped).
        case unknown

        init(status: Int32) {
            // WIFEXITED, WEXITSTATUS and WTERMSIG spelled out (the C macros are not imported).
            self = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        }

        /// The exit code when the child exited (rather than being killed by a signal).
        public var code: Int32? {
            if case .exited(let code) = self { return code }
            return nil
        }
    }

    /// `posix_spawn` failed; `code` is its errno value.
    public struct Failure: Error, CustomStringConvertible {
        public let code: Int32
        public var description: String { String(cString: strerror(code)) }
    }

    private struct State {
        var exit: Exit?
        var reaping = false
        var nextWaiter = 0
        var waiters: [Int: @Sendable (Exit?) -> Void] = [:]
    }

    private let state = Mutex(State())

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `path` with `arguments` (its argv, `argv[0]` included) and exactly `environment`.
    /// - Parameter descriptors: our descriptor `from` becomes the child's `to` (dup2, after stdio is set up).
    public static func spawn(
        _ path: String, arguments: [String], environment: [String: String],
        output: Output = .discarded,
        descriptors: [(from: Int32, to: Int32)] = []
    ) throws(Failure) -> SpawnedProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if output != .inherited { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        switch output {
        case .inherited: break
        case .discarded:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        case .toStandardError:
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        }
        for (from, to) in descriptors { posix_spawn_file_actions_adddup2(&actions, from, to) }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // A user's program (`.inherited`) starts as from a shell: no signal blocked (the async runtime's threads
        // block some) and none ignored by us (SIGPIPE).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if output == .inherited {
            var none = sigset_t()
            sigemptyset(&none)
            posix_spawnattr_setsigmask(&attributes, &none)
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for sig in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT] { sigaddset(&defaults, sig) }
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw Failure(code: result) }
        return SpawnedProcess(pid: pid)
    }

    /// Waits for the child's exit, suspending (no thread of the pool is held).
    public func exit() async -> Exit {
        await withCheckedContinuation { continuation in
            whenExited(timeout: nil) { continuation.resume(returning: $0 ?? .unknown) }
        }
    }

    /// Waits for the child's exit up to `timeout` seconds, suspending; nil when it is still running then (it is
    /// left running: the caller decides).
    public func exit(timeout: TimeInterval) async -> Exit? {
        await withCheckedContinuation { continuation in
            whenExited(timeout: timeout) { continuation.resume(returning: $0) }
        }
    }

    /// The same, blocking the calling thread: for synchronous code that is not on the cooperative pool, or waits
    /// briefly for a child that is known to be going.
    public func waitForExit(timeout: TimeInterval? = nil) -> Exit? {
        let answer = Answer()
        whenExited(timeout: timeout) { exit in
            answer.exit.withLock { $0 = exit }
            answer.given.signal()
        }
        answer.given.wait()
        return answer.exit.withLock { $0 }
    }

    private final class Answer: Sendable {
        let exit = Mutex<Exit?>(nil)
        let given = DispatchSemaphore(value: 0)
    }

    /// Calls `deliver` once: with the exit when the child exits, or with nil after `timeout`.
    private func whenExited(timeout: TimeInterval?, _ deliver: @escaping @Sendable (Exit?) -> Void) {
        let (known, id, startReaper): (Exit?, Int, Bool) = state.withLock { state in
            if let exit = state.exit { return (exit, 0, false) }
            let id = state.nextWaiter
            state.nextWaiter += 1
            state.waiters[id] = deliver
            defer { state.reaping = true }
            return (nil, id, !state.reaping)
        }
        if let known { return deliver(known) }
        if startReaper { reap() }
        if let timeout {
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [self] in
                if let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) { waiter(nil) }
            }
        }
    }

    /// One thread per child, blocked in `waitpid` until it exits.
    private func reap() {
        let thread = Thread { [self] in
            var status: Int32 = 0
            var reaped: pid_t
            repeat { reaped = waitpid(pid, &status, 0) } while reaped < 0 && errno == EINTR
            let exit = reaped == pid ? Exit(status: status) : .unknown
            let waiters = state.withLock { state in
                state.exit = exit
                defer { state.waiters = [:] }
                return Array(state.waiters.values)
            }
            for waiter in waiters { waiter(exit) }
        }
        thread.stackSize = 64 << 10
        thread.start()
    }
}
