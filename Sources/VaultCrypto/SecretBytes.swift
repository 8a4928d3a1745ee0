import CSodium
import Foundation

/// Key material or a decrypted secret, held in libsodium secure memory.
///
/// The bytes live in a `sodium_malloc` allocation: guard pages on both sides, a canary, and
/// `mlock` so they are not swapped out. `sodium_free` zeroes them when the object is released.
/// Copies taken out of it (arrays, strings) are ordinary memory; keep them short-lived.
///
/// `@unchecked Sendable`: the allocation never moves and is freed only in `deinit`. Reads from
/// several threads are safe; writing through `withUnsafeMutableBytes` while another thread reads
/// is the caller's race to avoid (in practice a value is filled once, then only read).
public final class SecretBytes: @unchecked Sendable {
    private let pointer: UnsafeMutableRawPointer
    /// Number of secret bytes.
    public let count: Int

    /// Allocates `count` zero bytes in secure memory. Traps if the allocation fails, as Swift
    /// does for any other out-of-memory condition.
    public init(count: Int) {
        precondition(count >= 0, "SecretBytes count must not be negative")
        Sodium.requireInitialized()
        guard let p = sodium_malloc(count) else {
            fatalError("sodium_malloc(\(count)) failed: out of memory")
        }
        // sodium_malloc fills with garbage (0xdb) on purpose; we promise zeroes.
        sodium_memzero(p, count)
        // sodium_malloc locks the pages but ignores a failure (RLIMIT_MEMLOCK too low, e.g. `ulimit -l 0`).
        // Locking again is harmless (locks do not stack; sodium_free unlocks once) and tells us whether it held.
        if count > 0, sodium_mlock(p, count) != 0 { MemoryLocking.recordFailure(errno: errno) }
        self.pointer = p
        self.count = count
    }

    /// Copies `bytes` into secure memory. The caller still owns, and should wipe, its own copy.
    public convenience init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count)
        let destination = UnsafeMutableRawBufferPointer(start: pointer, count: count)
        destination.copyBytes(from: bytes)
    }

    deinit {
        sodium_free(pointer)  // zeroes, then unmaps with its guard pages
    }

    /// Read access to the secret. Do not let the pointer escape `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// Write access to the secret, for filling it (KDF output, decryption). Do not let the pointer escape.
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: pointer, count: count))
    }

    /// Decodes the bytes as UTF-8, for handing a token to output. Returns nil if they are not
    /// valid UTF-8. The returned `String` is ordinary memory and cannot be wiped.
    public func copyToString() -> String? {
        withUnsafeBytes { String(bytes: $0, encoding: .utf8) }
    }
}

/// Whether locking secret memory into RAM (mlock) ever failed in this process. A failure is not fatal (the
/// secrets still live in guarded allocations), but they may then be written to swap: the CLI says so once under
/// `--verbose`.
public enum MemoryLocking {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var failure: Int32?
    nonisolated(unsafe) private static var reported = false

    static func recordFailure(errno code: Int32) {
        lock.withLock { if failure == nil { failure = code } }
    }

    /// The first failure's reason (strerror), once per process: nil when locking never failed or it was already taken.
    public static func takeUnreportedFailure() -> String? {
        lock.withLock {
            guard let failure, !reported else { return nil }
            reported = true
            return String(cString: strerror(failure))
        }
    }
}

extension SecretBytes: Equatable {
    /// Constant-time comparison (`sodium_memcmp`); lengths are not secret.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return sodium_memcmp(lhs.pointer, rhs.pointer, lhs.count) == 0
    }
}

extension SecretBytes: CustomStringConvertible, CustomDebugStringConvertible {
    // So that `print(key)` or string interpolation in a log line never shows the secret.
    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
}
