#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Keeps key material out of core dumps and away from debuggers run by the same user.
public enum ProcessHardening {
    /// Sets `RLIMIT_CORE` to 0 (soft and hard), and on Linux `prctl(PR_SET_DUMPABLE, 0)`, which
    /// also stops same-user `ptrace` and makes `/proc/self/mem` unreadable to other processes.
    /// Best effort: a failure leaves the process as it was; `coreDumpsDisabled` reports the outcome.
    public static func disableCoreDumps() {
        var limit = rlimit(rlim_cur: 0, rlim_max: 0)
        #if os(Linux)
            _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit)
            _ = prctl(PR_SET_DUMPABLE, 0)
        #else
            _ = setrlimit(RLIMIT_CORE, &limit)
        #endif
    }

    /// True when the soft core-size limit is 0, as read from `getrlimit`.
    public static var coreDumpsDisabled: Bool {
        var limit = rlimit()
        #if os(Linux)
            guard getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit) == 0 else { return false }
        #else
            guard getrlimit(RLIMIT_CORE, &limit) == 0 else { return false }
        #endif
        return limit.rlim_cur == 0
    }

    #if os(Linux)
        /// `prctl(PR_GET_DUMPABLE)`: 1 if the process may be dumped or ptraced, 0 if not; -1 if unknown.
        static var isDumpable: Int32 { prctl(PR_GET_DUMPABLE, 0) }

        // prctl(2) is variadic in C, and Swift cannot call C variadic functions. Look it up and call
        // it through a fixed five-argument signature: on the Linux ABIs we build for (x86_64 SysV,
        // AArch64 AAPCS64) integer variadic arguments travel in the same registers as fixed ones,
        // which is exactly how glibc's own prctl wrapper passes them on to the syscall.
        private typealias PrctlFunction = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        private static let prctlFunction: PrctlFunction? = {
            // dlopen(NULL) is the running program; dlsym on it searches libc too.
            guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "prctl") else { return nil }
            return unsafeBitCast(symbol, to: PrctlFunction.self)
        }()

        private static func prctl(_ option: Int32, _ argument: UInt) -> Int32 {
            guard let function = prctlFunction else { return -1 }
            return function(option, argument, 0, 0, 0)
        }

        private static let PR_GET_DUMPABLE: Int32 = 3  // <linux/prctl.h>
        private static let PR_SET_DUMPABLE: Int32 = 4
    #endif
}
