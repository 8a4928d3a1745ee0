import Foundation
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// One finished child process with what the kernel counted for it (wait4's rusage).
struct Measured {
    var code: Int32
    var out: String
    var err: String
    /// Seconds from just before posix_spawn to wait4's return: process start and exit included.
    var wall: Double
    /// User + system CPU seconds of the child.
    var cpu: Double
    /// Peak resident set of the child, bytes (ru_maxrss is in KiB on Linux).
    var peakRSS: Int
    /// CPU seconds this process (the in-process sandbox) spent while the child ran.
    var sandboxCPU: Double
}

func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CPU seconds of this process so far (every thread: the sandbox's server and actor run here).
func selfCPU() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

private func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }

/// Like TokenVaultLab.runProcess, but blocks in wait4 (no polling, so the wall time is exact to the
/// microsecond) and returns the child's rusage. Called from the main thread: the in-process sandbox runs on
/// the cooperative pool, which a blocked main thread does not hold.
/// stdout goes to a pipe, or to /dev/null when `discardOutput` (a 100,000-line `list` a user would page).
func runMeasured(
    _ executable: String, _ arguments: [String], environment: [String: String], stdin: String = "",
    timeout: TimeInterval = 900, discardOutput: Bool = false
) throws -> Measured {
    let cpuBefore = selfCPU()
    let started = monotonic()
    let child = try spawnChild(executable, arguments, environment: environment, discardStdout: discardOutput)
    let pid = child.pid
    Thread { [fd = child.stdinFD] in
        writeAll(fd, stdin)
        close(fd)
    }.start()
    let outData = discardOutput ? nil : FDReader(child.stdoutFD)
    let errData = FDReader(child.stderrFD)
    // A watchdog instead of polling: kill the child if it overstays.
    let finished = ManagedAtomicFlag()
    let childPid = pid
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
        if !finished.isSet { kill(childPid, SIGKILL) }
    }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let wall = monotonic() - started
    finished.set()
    let sandboxCPU = selfCPU() - cpuBefore
    let code = exitCode(fromWaitStatus: status)
    if code == 128 + SIGKILL {
        throw TestFailure("\(executable) \(arguments.prefix(2)) did not finish within \(Int(timeout)) s")
    }
    return Measured(
        code: code, out: outData?.finish() ?? "", err: errData.finish(), wall: wall,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peakRSS: Int(usage.ru_maxrss) * 1024, sandboxCPU: sandboxCPU)
}

/// A set-once flag shared with the watchdog.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// Fails the bench with the child's words when it did not succeed.
@discardableResult
func check(_ m: Measured, _ what: String) throws -> Measured {
    guard m.code == 0 else {
        throw TestFailure("\(what) exited \(m.code):\n\(m.err.suffix(2000))")
    }
    return m
}

func median(_ values: [Double]) -> Double {
    precondition(!values.isEmpty)
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
