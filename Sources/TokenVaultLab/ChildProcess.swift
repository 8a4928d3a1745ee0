import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child running in the background (started by ``spawnChild``): fed standard input while it runs, read in /proc,
/// signalled at a chosen moment, and waited for with a timeout. Its stdout and stderr are drained as they come.
/// A child still running when this object goes away is killed and reaped.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    /// When it was started.
    public let started = Date()
    private var stdinFD: Int32
    private let stdout: FDReader
    private let stderr: FDReader
    private var status: Int32?

    /// - Parameters:
    ///   - stdin: written then closed; nil keeps the pipe open for `send` and `closeStdin`.
    ///   - newSession: a session of its own, with no controlling terminal (`/dev/tty` cannot be opened).
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String],
        stdin: String?, newSession: Bool
    ) throws {
        let child = try spawnChild(executable, arguments, environment: environment, newSession: newSession)
        pid = child.pid
        stdinFD = child.stdinFD
        stdout = FDReader(child.stdoutFD)
        stderr = FDReader(child.stderrFD)
        if let stdin {
            send(stdin)
            closeStdin()
        }
    }

    /// What it has written to stdout and stderr so far.
    public var out: String { stdout.text }
    public var err: String { stderr.text }

    /// Writes to its standard input (nothing once that is closed).
    public func send(_ text: String) {
        guard stdinFD >= 0 else { return }
        writeAll(stdinFD, text)
    }

    /// Closes its standard input: it reads EOF.
    public func closeStdin() {
        if stdinFD >= 0 {
            close(stdinFD)
            stdinFD = -1
        }
    }

    /// Whether it still runs (reaps it once it has ended).
    public var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            status = raw
            return false
        }
        return true
    }

    /// Sends `number` while it runs.
    public func signal(_ number: Int32) { if isRunning { kill(pid, number) } }

    /// Waits until it ends; after `timeout` kills it with SIGKILL and reaps it. True if it ended by itself.
    /// Standard input stays as it is: a child that waits for more input waits the whole timeout.
    public func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() > deadline {
                kill(pid, SIGKILL)
                var raw: Int32 = 0
                while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
                status = raw
                return false
            }
            usleep(2_000)
        }
        return true
    }

    /// What an ended child left (call after `waitForExit`): exit status (128+N for a signal, as a shell reports
    /// it), all of stdout and stderr. Closes standard input.
    public func result() -> ProcessResult {
        closeStdin()
        return ProcessResult(code: exitCode(fromWaitStatus: status ?? 0), out: stdout.finish(), err: stderr.finish())
    }

    /// Waits for it to end with standard input left open; past `timeout` kills it and throws, with its stderr.
    @discardableResult
    public func wait(timeout: TimeInterval = 60) throws -> ProcessResult {
        guard waitForExit(timeout: timeout) else {
            closeStdin()
            throw TestFailure("pid \(pid) did not finish within \(timeout) s; stderr:\n\(stderr.finish())")
        }
        return result()
    }

    /// Closes standard input, waits for it to end (SIGKILL past `timeout`) and returns what it left, whatever
    /// happened: a child killed for time ends with 137.
    public func closeStdinAndWait(timeout: TimeInterval = 120) -> ProcessResult {
        closeStdin()
        _ = waitForExit(timeout: timeout)
        return result()
    }

    /// Waits until stderr holds a line matching `predicate` and returns it; throws once the child ended without
    /// one or after `timeout`.
    public func waitForStderrLine(timeout: TimeInterval = 30, where predicate: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = err.split(separator: "\n").map(String.init).first(where: predicate) { return line }
            if !isRunning { break }
            usleep(10_000)
        }
        throw TestFailure("the expected line did not appear on stderr; stderr was:\n\(err)")
    }

    /// Whether one of its threads is blocked reading a pipe (its /proc wait channel, `pipe_read` or
    /// `anon_pipe_read` by kernel version; readable even once tokenvault makes itself non-dumpable).
    public var isBlockedReadingPipe: Bool {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.contains { tid in
            let channel = FileManager.default.contents(atPath: "/proc/\(pid)/task/\(tid)/wchan").map {
                String(decoding: $0, as: UTF8.self)
            }
            return channel?.hasSuffix("pipe_read") ?? false
        }
    }

    /// Text of a file under /proc/PID (NULs shown as spaces), nil once the process is gone.
    public func proc(_ name: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/\(name)") else { return nil }
        return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            waitpid(pid, &raw, 0)
        }
        closeStdin()
    }
}
