import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

/// Ends a command with a chosen exit code after it has printed what it had to say.
struct CommandExit: Error {
    var code: ExitStatus
    /// The exact status to exit with (exec passes its command's through); defaults to `code`.
    var raw: Int32? = nil
}
