import VaultCrypto

/// `--verbose`: one line when secret memory could not be locked into RAM (for example under `ulimit -l 0`).
enum MemoryLockReport {
    static func print(context: Context, verbose: Bool) {
        guard verbose, let reason = MemoryLocking.takeUnreportedFailure() else { return }
        context.console.warn(
            "could not lock secret memory into RAM (mlock: \(reason)); keys and tokens may be written to swap. Raise the limit ('ulimit -l') to keep them out"
        )
    }
}
