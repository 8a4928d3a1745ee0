import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// Shared by the end-to-end tests, the fault-injection suite and the benchmarks: they drive the built
// `tokenvault` binary as a user would, so they need a careful way to run child processes.

/// What a finished child process left.
public struct ProcessResult: Sendable {
    public var code: Int32
    public var out: String
    public var err: String
    public init(code: Int32, out: String, err: String) {
        self.code = code
        self.out = out
        self.err = err
    }
}

/// A child started by ``spawnChild``: its pid and our ends of its pipes (-1 where its output was discarded).
public struct SpawnedChild: Sendable {
    public let pid: pid_t
    /// Write end of the child's stdin; close it to give the child EOF.
    public let stdinFD: Int32
    public let stdoutFD: Int32
    public let stderrFD: Int32
}

/// Starts a program with pipes on its stdin, stdout and stderr (or /dev/null for discarded output) and no other
/// descriptor of ours; never through a shell. posix_spawn rather than Foundation's Process: a daemon the child
/// starts (the tmux server) cannot hold another test's pipes open, and reaping is a plain waitpid.
/// `newSession` puts it in a session of its own, without a controlling terminal.
public func spawnChild(
    _ executable: String, _ arguments: [String], environment: [String: String],
    discardStdout: Bool = false, discardStderr: Bool = false,
    newSession: Bool = false
) throws -> SpawnedChild {
    var input: [Int32] = [0, 0]
    var output: [Int32] = [0, 0]
    var errors: [Int32] = [0, 0]
    guard pipe(&input) == 0, pipe(&output) == 0, pipe(&errors) == 0 else { throw TestFailure("pipe failed") }
    for fd in input + output + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input[0], 0)
    if discardStdout {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    } else {
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
    }
    if discardStderr {
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    } else {
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
    }
    // Close every other descriptor this process has open (closefrom is not visible from Swift here), high ones
    // included: a test process holds descriptors above 1024, and a child must start with only its three.
    let open =
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) })
        ?? Array(3..<Int32(1024))
    for fd in open where fd > 2 && fcntl(fd, F_GETFD) != -1 && !(input + output + errors).contains(fd) {
        posix_spawn_file_actions_addclose(&actions, fd)
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // POSIX_SPAWN_SETSID (glibc 2.26+; not imported into Swift): a new session, no controlling terminal.
    if newSession { posix_spawnattr_setflags(&attributes, Int16(0x80)) }
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    close(input[0])
    close(output[1])
    close(errors[1])
    if discardStdout { close(output[0]) }
    if discardStderr { close(errors[0]) }
    guard spawned == 0 else {
        close(input[1])
        if !discardStdout { close(output[0]) }
        if !discardStderr { close(errors[0]) }
        throw TestFailure("cannot run \(executable): \(String(cString: strerror(spawned)))")
    }
    return SpawnedChild(
        pid: pid, stdinFD: input[1], stdoutFD: discardStdout ? -1 : output[0],
        stderrFD: discardStderr ? -1 : errors[0])
}

/// A shell-style exit code from a waitpid status: the exit status, or 128 + the signal that ended the child.
public func exitCode(fromWaitStatus status: Int32) -> Int32 {
    (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// Writes all of `text` to `fd` (stopping early if the reader went away).
public func writeAll(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        offset += n
    }
}

/// Runs a program to completion with the given environment and standard input; never through a shell.
@discardableResult
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String], stdin: String = "",
    timeout: TimeInterval = 60, discardOutput: Bool = false
) throws -> ProcessResult {
    let child = try spawnChild(
        executable, arguments, environment: environment,
        discardStdout: discardOutput, discardStderr: discardOutput)
    let pid = child.pid
    if discardOutput {
        close(child.stdinFD)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return ProcessResult(code: exitCode(fromWaitStatus: status), out: "", err: "")
    }
    Thread { [fd = child.stdinFD] in
        writeAll(fd, stdin)
        close(fd)
    }.start()
    let outData = FDReader(child.stdoutFD)
    let errData = FDReader(child.stderrFD)
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        if Date() > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            throw TestFailure("\(executable) \(arguments) did not finish within \(timeout) s")
        }
        usleep(2_000)
    }
    return ProcessResult(code: exitCode(fromWaitStatus: status), out: outData.finish(), err: errData.finish())
}

/// Drains a pipe on its own thread until EOF; what arrived so far can be read while it runs.
public final class FDReader: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    public init(_ fd: Int32) {
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                lock.withLock { data.append(contentsOf: buffer[0..<n]) }
            }
            close(fd)
            done.signal()
        }.start()
    }

    /// Everything read so far.
    public var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }

    /// Waits for EOF and returns everything; later calls return at once.
    public func finish() -> String {
        done.wait()
        done.signal()
        return text
    }
}

/// A failure of the test machinery itself, with words for the report.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
