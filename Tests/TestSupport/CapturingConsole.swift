import Foundation
import TokenVaultCore

/// A console that keeps what was written, for in-process tests (never in the shipped binary): stdout and stderr
/// apart, and both in the order they came. `stderrIsTerminal` makes commands draw what they draw only on a
/// terminal (refresh-all's live progress line) into the capture.
public final class CapturingConsole: Console, @unchecked Sendable {
    private let lock = NSLock()
    private var stdout = ""
    private var stderr = ""
    private var both = ""
    public let stderrIsTerminal: Bool
    public init(stderrIsTerminal: Bool = false) { self.stderrIsTerminal = stderrIsTerminal }
    public func out(_ text: String) {
        lock.withLock {
            stdout += text
            both += text
        }
    }
    public func err(_ text: String) {
        lock.withLock {
            stderr += text
            both += text
        }
    }
    public var output: String { lock.withLock { stdout } }
    public var errors: String { lock.withLock { stderr } }
    /// stdout and stderr as written, interleaved.
    public var text: String { lock.withLock { both } }
}
