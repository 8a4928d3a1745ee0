import Foundation
import TokenVaultCore

/// A console that keeps what was written, for in-process command tests (never in the shipped binary).
final class CapturingConsole: Console, @unchecked Sendable {
    private let lock = NSLock()
    private var stdout = ""
    private var stderr = ""
    init() {}
    func out(_ text: String) { lock.withLock { stdout += text } }
    func err(_ text: String) { lock.withLock { stderr += text } }
    var stderrIsTerminal: Bool { false }
    var output: String { lock.withLock { stdout } }
    var errors: String { lock.withLock { stderr } }
}
