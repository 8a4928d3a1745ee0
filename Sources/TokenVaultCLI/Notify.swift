import Foundation
import Spawning
import TokenVaultCore
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

/// `--notify CMD`: runs CMD (through /bin/sh) once per account that needs a person, with what happened in its
/// environment and never a token; once per account and event until it changes (recorded in the vault).
enum Notifier {
    static let timeout: TimeInterval = 30

    /// Notifies about `attention` and forgets accounts that need no one any more. Returns how many were told.
    @discardableResult
    /// `inScope`: the accounts `attention` was looked for in (`check NAME…`); the others' records are left alone.
    static func notify(
        _ command: String, attention: [Attention], database: any VaultStorage, context: Context,
        inScope: (String) -> Bool = { _ in true }
    ) async throws -> Int {
        let told = try database.notifiedEvents()
        var count = 0
        let now = context.now()
        let current = Dictionary(attention.map { ($0.account, $0) }, uniquingKeysWith: { first, _ in first })
        for item in current.values.sorted(by: { $0.account < $1.account })
        where told[item.account] != item.event.rawValue {
            var environment = ChildEnvironment.scrubbed(context.environment)
            environment["TOKENVAULT_ACCOUNT"] = item.account
            environment["TOKENVAULT_INTEGRATION"] = item.integration
            environment["TOKENVAULT_EVENT"] = item.event.rawValue
            environment["TOKENVAULT_DETAIL"] = item.detail
            let status = await run(command, environment: environment)
            if status == 0 {
                try NotificationRecord.told(item.account, event: item.event.rawValue, at: now, in: database)
                count += 1
            } else {
                // Not recorded: the next run tries again.
                context.console.warn(
                    "the notify command failed for '\(item.account)' (\(status < 0 ? "did not finish" : "exit \(status)")); it is tried again next time"
                )
            }
        }
        for account in told.keys where current[account] == nil && inScope(account) {
            try NotificationRecord.cleared(account, at: now, in: database)
        }
        return count
    }

    /// `/bin/sh -c command`, stdin from /dev/null, its output to our stderr; the exit status, -1 when it could not
    /// run, was killed by a signal, or outlived the timeout (then it is killed).
    static func run(_ command: String, environment: [String: String]) async -> Int32 {
        ChildEnvironment.closeOnExecAll()
        guard
            let child = try? SpawnedProcess.spawn(
                "/bin/sh", arguments: ["/bin/sh", "-c", command], environment: environment,
                output: .toStandardError)
        else { return -1 }
        guard let exit = await child.exit(timeout: timeout) else {
            kill(child.pid, SIGKILL)
            _ = await child.exit()
            return -1
        }
        return exit.code ?? -1
    }
}
