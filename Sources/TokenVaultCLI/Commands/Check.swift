import ArgumentParser
import Foundation
import TokenVaultCore

extension TokenVault {
    struct Check: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Exit 0 when no account needs a person, 5 when some do, one line each (no passphrase needed).",
            discussion: """
                An account needs a person when it needs re-authorization, when its refresh token lapses within 14 days \
                (refreshing has not extended it), when refreshing has failed for more than 24 hours, or when it has \
                no refresh token and its access token lapses within 14 days. For monitoring: 'list --format prometheus'.
                """)

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        @Option(help: ArgumentHelp("Also run this command (through /bin/sh) once per account and event, as refresh-all --notify does.", valueName: "cmd"))
        var notify: String?

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let journal = RefreshJournal.of(database, services: context.services)
            let found = try Attention.find(in: database, now: context.now(), waiting: journal?.waitingPairs().values.map { $0 } ?? [],
                                           interrupted: await journal?.interruptedRefreshes(in: database) ?? [])
            if json {
                let objects: [[String: Any]] = found.map {
                    ["account": $0.account, "integration": $0.integration, "event": $0.event.rawValue, "detail": $0.detail]
                }
                context.console.out(Format.json(objects) + "\n")
            } else if found.isEmpty {
                context.console.err("No account needs anyone.\n")
            } else {
                for item in found {
                    context.console.out("\(item.account) (\(item.integration)): \(item.event.rawValue): \(item.detail)\n")
                }
            }
            if let notify { try Notifier.notify(notify, attention: found, database: database, context: context) }
            if !found.isEmpty { throw CommandExit(code: .needsReauthorization) }
        }
    }
}
