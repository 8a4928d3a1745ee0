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
}

/// Runs a program to completion with the given environment and standard input; never through a shell.
/// posix_spawn rather than Foundation's Process: the child gets fds 0-2 and nothing else, so a
/// daemon it starts (the tmux server) cannot hold another test's pipes open, and reaping is a plain waitpid.
@discardableResult
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String], stdin: String = "",
                timeout: TimeInterval = 60, discardOutput: Bool = false) throws -> ProcessResult {
    var input: [Int32] = [0, 0], output: [Int32] = [0, 0], errors: [Int32] = [0, 0]
    guard pipe(&input) == 0, pipe(&output) == 0, pipe(&errors) == 0 else { throw TestFailure("pipe failed") }
    for fd in input + output + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input[0], 0)
    if discardOutput {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    } else {
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
    }
    // Close every other descriptor this process has open (closefrom is not visible from Swift here).
    for fd in 3..<Int32(1024) where fcntl(fd, F_GETFD) != -1 && !(input + output + errors).contains(fd) {
        posix_spawn_file_actions_addclose(&actions, fd)
    }
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
    close(input[0]); close(output[1]); close(errors[1])
    guard spawned == 0 else {
        close(input[1]); close(output[0]); close(errors[0])
        throw TestFailure("cannot run \(executable): \(String(cString: strerror(spawned)))")
    }
    let writer = Thread { [bytes = Array(stdin.utf8), fd = input[1]] in
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            offset += n
        }
        close(fd)
    }
    writer.start()
    let outData = FDReader(output[0]), errData = FDReader(errors[0])
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
    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ProcessResult(code: code, out: outData.finish(), err: errData.finish())
}

/// Drains a pipe on its own thread until EOF.
public final class FDReader: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    public init(_ fd: Int32) {
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                data.append(contentsOf: buffer[0..<n])
            }
            close(fd)
            done.signal()
        }.start()
    }
    public func finish() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A failure of the test machinery itself, with words for the report.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

